"""A simulated fleet for the rollout machine: the machine's assignment becomes the world.

Pods created on a tick become ready on the next one (if online), unless their version
is scripted to fail verification or to never get ready. The simulator also keeps the
ground truth the properties are checked against: which nodes the rollout took down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from edgeml.rollout import (
    AnalysisObservation,
    AnalysisStep,
    AnalysisTemplate,
    MetricLimit,
    MetricObservation,
    NodeObservation,
    NodesStep,
    PauseStep,
    Pod,
    RolloutDecision,
    RolloutStrategy,
    Version,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
V1 = Version(1, "1" * 64)
V2 = Version(2, "2" * 64)
V3 = Version(3, "3" * 64)

Behaviour = Literal["good", "unverified", "never-ready"]

TEMPLATE = AnalysisTemplate(
    metrics=(MetricLimit("error-rate", 0.01), MetricLimit("prediction-shift", 0.2)),
    interval=timedelta(seconds=30),
    failure_limit=1,
    min_samples=50,
)


def canary(*steps: NodesStep | AnalysisStep | PauseStep, **options: object) -> RolloutStrategy:
    """A canary strategy with the default analysis template."""
    options.setdefault("analysis", TEMPLATE)
    return RolloutStrategy(steps=tuple(steps), **options)  # type: ignore[arg-type]


def nodes(count: int, zones: int = 1, on: Version | None = V1) -> list[NodeObservation]:
    """`count` online nodes n00.. spread over zones z0.., serving `on` (no pod if None)."""
    return [
        NodeObservation(
            f"n{i:02d}",
            f"z{i % zones}",
            pod=Pod(on, ready=True, verified=True) if on else None,
        )
        for i in range(count)
    ]


def window(
    error_rate: float = 0.001, shift: float = 0.05, samples: int = 1000
) -> AnalysisObservation:
    """An analysis window with these canary values."""
    return AnalysisObservation(
        (
            MetricObservation("error-rate", error_rate, 0.001, samples),
            MetricObservation("prediction-shift", shift, 0.0, samples),
        )
    )


@dataclass
class SimNode:
    name: str
    zone: str
    online: bool = True
    pod: Pod | None = None
    born: int = -1  # tick the pod (re)started; it matures on a later tick


@dataclass
class Sim:
    """The world the machine rolls out to."""

    fleet: dict[str, SimNode]
    behaviour: dict[Version, Behaviour] = field(default_factory=dict)
    tick: int = 0
    disrupted: set[str] = field(default_factory=set)  # moved while serving, not back yet

    @classmethod
    def of(cls, observed: list[NodeObservation], **kw: object) -> Sim:
        fleet = {n.name: SimNode(n.name, n.zone, n.online, n.pod) for n in observed}
        return cls(fleet, **kw)  # type: ignore[arg-type]

    def observe(self) -> list[NodeObservation]:
        return [NodeObservation(n.name, n.zone, n.online, n.pod) for n in self.fleet.values()]

    def apply(self, decision: RolloutDecision) -> None:
        """Realise the assignment: a changed version is a new, unready pod."""
        assert set(decision.assignments) == set(self.fleet)
        for name, want in decision.assignments.items():
            node = self.fleet[name]
            current = node.pod.version if node.pod else None
            if want == current:
                continue
            assert node.online, f"{name} was moved while offline"
            if node.pod is not None and node.pod.serving:
                self.disrupted.add(name)
            node.pod = Pod(want, ready=False, verified=None) if want else None
            node.born = self.tick

    def advance(self) -> None:
        """Next tick: pods started before now become ready (as their version allows)."""
        self.tick += 1
        for node in self.fleet.values():
            pod = node.pod
            if not node.online or pod is None or pod.serving or node.born >= self.tick:
                continue
            behaviour = self.behaviour.get(pod.version, "good")
            if behaviour == "good":
                node.pod = Pod(pod.version, ready=True, verified=True)
            elif behaviour == "unverified":
                node.pod = Pod(pod.version, ready=False, verified=False)
            else:
                node.pod = Pod(pod.version, ready=False, verified=True)
            if node.pod.serving:
                self.disrupted.discard(node.name)

    def set_online(self, name: str, online: bool) -> None:
        node = self.fleet[name]
        if node.online == online:
            return
        node.online = online
        if node.pod is not None:
            node.pod = Pod(node.pod.version, ready=False, verified=node.pod.verified)
            node.born = self.tick  # restarts after the node returns
        # A node that went offline is the outage's doing, not the rollout's.
        self.disrupted.discard(name)

    def serving(self, version: Version | None) -> list[str]:
        """Online nodes serving `version`."""
        return sorted(
            n.name
            for n in self.fleet.values()
            if n.online and n.pod and n.pod.version == version and n.pod.serving
        )

    def online(self) -> list[str]:
        return sorted(n.name for n in self.fleet.values() if n.online)


def start(at: int = 0, seconds: float = 0) -> datetime:
    """T0 plus some time."""
    return T0 + timedelta(seconds=seconds + at)
