"""The plain data the rollout machine reads and returns: no pydantic, no I/O, all frozen.

The controller builds these from the EdgeDeployment, the nodes and pods it observed and
the persisted status; `decide_rollout` returns a `RolloutDecision` it realises and writes
back. Keeping them apart from the API models lets the machine be tested (and searched by
hypothesis) without building Kubernetes objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from edgeml.api.events import Event as Event  # one Event type for every kind's plan

# --- the spec, as the machine needs it ----------------------------------------------------


@dataclass(frozen=True, order=True)
class Version:
    """A registry version and the sha256 its pods must verify before serving."""

    version: int
    sha256: str = ""

    def __str__(self) -> str:
        return f"version {self.version}"


@dataclass(frozen=True)
class NodesStep:
    """After this step, this many targeted nodes in total run the new version."""

    nodes: int | str  # a count, or a percentage of the targeted nodes ("25%")


@dataclass(frozen=True)
class AnalysisStep:
    """Measure the canary every interval for `duration`."""

    duration: timedelta


@dataclass(frozen=True)
class PauseStep:
    """Wait for `duration`, or until resumed when it is None."""

    duration: timedelta | None = None


Step = NodesStep | AnalysisStep | PauseStep


@dataclass(frozen=True)
class MetricLimit:
    """The canary fails `name` above `max`."""

    name: str
    max: float


@dataclass(frozen=True)
class AnalysisTemplate:
    """How analysis steps judge the canary."""

    metrics: tuple[MetricLimit, ...]
    interval: timedelta = timedelta(seconds=30)
    failure_limit: int = 1
    min_samples: int = 50


@dataclass(frozen=True)
class RolloutStrategy:
    """The strategy of the spec; `steps` None means no canary (every node at once)."""

    steps: tuple[Step, ...] | None = None
    analysis: AnalysisTemplate | None = None
    max_unavailable: int | str = 1
    progress_deadline: timedelta = timedelta(minutes=10)
    paused: bool = False


# --- the world ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """The inference pod on a node: the version it is assigned, and whether it serves it.

    `verified` is None while the artifact is not checked yet, False when its sha256 did
    not match the registry's (a pod in that state never serves, whatever it says).
    """

    version: Version
    ready: bool = False
    verified: bool | None = None

    @property
    def serving(self) -> bool:
        """Ready and verified: the only way a version counts as served on a node."""
        return self.ready and self.verified is True


@dataclass(frozen=True)
class NodeObservation:
    """A targeted node: its zone, whether it is Ready, and its inference pod (if any)."""

    name: str
    zone: str = ""
    online: bool = True
    pod: Pod | None = None

    @property
    def assigned(self) -> Version | None:
        """The version the node is assigned now (its pod's), None if it has no pod."""
        return self.pod.version if self.pod else None

    def serves(self, version: Version | None) -> bool:
        """Whether this node is online and serving `version` (None: has no pod)."""
        if version is None:
            return self.pod is None
        return (
            self.online
            and self.pod is not None
            and self.pod.version == version
            and (self.pod.serving)
        )


@dataclass(frozen=True)
class MetricObservation:
    """One metric over the current analysis window, computed from the pods' metrics."""

    name: str
    canary: float | None
    stable: float | None = None
    samples: int = 0
    applicable: bool = True  # False: nothing to compare with (prediction shift, no stable)


@dataclass(frozen=True)
class AnalysisObservation:
    """The metrics of the current window; `metric(name)` finds one."""

    metrics: tuple[MetricObservation, ...] = ()

    def metric(self, name: str) -> MetricObservation | None:
        """The observation of `name`, if it was measured."""
        return next((m for m in self.metrics if m.name == name), None)


@dataclass(frozen=True)
class Commands:
    """Manual commands seen in this reconcile (each one-shot)."""

    promote: bool = False
    abort: bool = False
    pause: bool = False
    resume: bool = False


# --- persisted state ----------------------------------------------------------------------


@dataclass(frozen=True)
class MetricResult:
    """One metric of one measurement."""

    metric: str
    canary: float | None
    stable: float | None
    max: float
    passed: bool
    samples: int


@dataclass(frozen=True)
class Measurement:
    """One analysis measurement; `counted` is False when samples were too few."""

    at: datetime
    counted: bool
    passed: bool
    results: tuple[MetricResult, ...] = ()


MAX_MEASUREMENTS = 10  # kept in status; counters hold the totals


@dataclass(frozen=True)
class RolloutState:
    """What the machine persists between reconciles (in the EdgeDeployment's status)."""

    stable: Version | None = None
    canary: Version | None = None  # the version being rolled out (or rolled back)
    step: int = 0
    step_started_at: datetime | None = None
    progressed_at: datetime | None = None  # last move, or last node becoming ready
    pending: int = 0  # online nodes not yet where the current step wants them
    measurements: tuple[Measurement, ...] = ()  # of the current analysis step, newest last
    measured: int = 0  # counted measurements in the current analysis step
    failures: int = 0  # failed measurements in the current analysis step
    last_measured_at: datetime | None = None
    paused: bool = False  # by the pause command, until resume
    paused_since: datetime | None = None  # while held by spec or command: timers freeze
    promoted: bool = False  # skip the remaining steps
    rolling_back: bool = False
    reason: str = ""  # why the last rollback (or hold) happened, for messages
    rejected: tuple[int, ...] = ()


# --- the decision -------------------------------------------------------------------------


class Phase(StrEnum):
    """The one-word summary of the rollout."""

    PROGRESSING = "Progressing"
    ANALYZING = "Analyzing"
    PAUSED = "Paused"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


@dataclass(frozen=True)
class NodeReport:
    """Where one node is and what it serves (only ready, verified pods serve)."""

    name: str
    zone: str
    online: bool
    assigned: Version | None  # what the controller should run there
    serving: Version | None  # what it verifiably serves now
    note: str = ""  # Offline, Blocked (by maxUnavailable), Unverified...


@dataclass(frozen=True)
class VersionCount:
    """Nodes assigned a version, and how many of them serve it."""

    version: Version | None
    nodes: int = 0
    ready: int = 0


@dataclass(frozen=True)
class ZoneCount:
    """Per-zone summary."""

    zone: str
    nodes: int = 0
    canary: int = 0
    ready: int = 0


@dataclass(frozen=True)
class RolloutDecision:
    """What should exist, what status should say, and when to look again."""

    assignments: dict[str, Version | None]  # node → version to run (None: no pod)
    state: RolloutState
    phase: Phase
    reason: str  # CamelCase, for conditions
    message: str  # a sentence a person can act on
    events: tuple[Event, ...] = ()
    requeue_at: datetime | None = None  # the next time a timer needs a reconcile
    held: bool = False  # waits for a person (resume, promote, abort, or a new target)
    nodes: tuple[NodeReport, ...] = ()
    stable: VersionCount = field(default_factory=lambda: VersionCount(None))
    canary: VersionCount | None = None
    zones: tuple[ZoneCount, ...] = ()

    @property
    def done(self) -> bool:
        """Whether the machine has nothing left to do until the world or spec changes."""
        return self.held or self.phase in (Phase.HEALTHY, Phase.ROLLED_BACK)
