"""Properties of the rollout machine over generated fleets, strategies and failures.

Each example simulates a rollout to its end, feeding the machine's assignment back as
the world, with nodes dropping off and returning, and checks at every tick: the rollout
never takes more than maxUnavailable online nodes down, no node counts as serving an
unverified model, a rollback lands every online node on the last stable version, the
machine terminates, and it decides the same way given the same inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeml.rollout import (
    AnalysisStep,
    AnalysisTemplate,
    Commands,
    MetricLimit,
    NodeObservation,
    NodesStep,
    PauseStep,
    Phase,
    Pod,
    RolloutState,
    RolloutStrategy,
    Version,
    decide_rollout,
)
from edgeml.rollout.waves import max_unavailable
from unit.edgeml.rollout.world import T0, V1, V2, V3, Behaviour, Sim, window

MAX_TICKS = 3000
FLIPS_UNTIL = 40  # nodes stop flapping after this tick, so a rollout can finish


@dataclass(frozen=True)
class Scenario:
    zones: list[int]  # zone of each node
    offline: list[bool]  # offline at the start
    first_deploy: bool
    strategy: RolloutStrategy
    behaviour: Behaviour
    metrics: list[bool]  # per analysis window: the canary passes?
    quiet: bool  # too few samples in every window
    flips: list[tuple[int, int]]  # (tick, node index): toggle online
    commands: list[tuple[int, str]]
    retarget_at: int | None  # tick the target moves from V2 to V3
    dt: int  # seconds per tick


def step_strategy() -> st.SearchStrategy[list[NodesStep | AnalysisStep | PauseStep]]:
    size = st.one_of(st.integers(0, 70), st.integers(0, 100).map(lambda p: f"{p}%")).map(NodesStep)
    other = st.one_of(
        st.integers(30, 300).map(lambda s: AnalysisStep(timedelta(seconds=s))),
        st.one_of(st.none(), st.integers(0, 300)).map(
            lambda s: PauseStep(None if s is None else timedelta(seconds=s))
        ),
    )
    return st.lists(st.one_of(size, other), min_size=1, max_size=7)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(1, 60))
    zone_count = draw(st.integers(1, 4))
    canary = draw(st.booleans())
    limit = draw(st.one_of(st.integers(0, 6), st.integers(0, 50).map(lambda p: f"{p}%")))
    if canary:
        strategy = RolloutStrategy(
            steps=tuple(draw(step_strategy())),
            analysis=AnalysisTemplate(
                metrics=(MetricLimit("error-rate", 0.01), MetricLimit("prediction-shift", 0.2)),
                interval=timedelta(seconds=draw(st.integers(10, 60))),
                failure_limit=draw(st.integers(0, 3)),
                min_samples=50,
            ),
            max_unavailable=limit,
            progress_deadline=timedelta(seconds=draw(st.integers(60, 600))),
        )
    else:
        strategy = RolloutStrategy(max_unavailable=limit)
    return Scenario(
        zones=draw(st.lists(st.integers(0, zone_count - 1), min_size=n, max_size=n)),
        offline=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        first_deploy=draw(st.booleans()),
        strategy=strategy,
        behaviour=draw(st.sampled_from(["good", "good", "unverified", "never-ready"])),
        metrics=draw(st.lists(st.booleans(), min_size=1, max_size=6)),
        quiet=draw(st.booleans()) and draw(st.booleans()),
        flips=draw(
            st.lists(st.tuples(st.integers(0, FLIPS_UNTIL), st.integers(0, n - 1)), max_size=12)
        ),
        commands=draw(
            st.lists(
                st.tuples(
                    st.integers(0, 60), st.sampled_from(["pause", "resume", "promote", "abort"])
                ),
                max_size=2,
            )
        ),
        retarget_at=draw(st.one_of(st.none(), st.integers(1, 40))),
        dt=draw(st.integers(5, 60)),
    )


def build(s: Scenario) -> Sim:
    on = None if s.first_deploy else V1
    fleet = [
        NodeObservation(
            f"node-{i}",
            f"zone-{z}",
            online=True,
            pod=Pod(on, ready=True, verified=True) if on else None,
        )
        for i, z in enumerate(s.zones)
    ]
    sim = Sim.of(fleet, behaviour={V2: s.behaviour, V3: "good", V1: "good"})
    for i, off in enumerate(s.offline):
        if off and i % 3 == 0:  # a third of the drawn ones, so most of the fleet is up
            sim.set_online(f"node-{i}", False)
    return sim


def check_determinism(
    s: Scenario, target: Version, world: list[NodeObservation], state: RolloutState, **kw: object
) -> None:
    first = decide_rollout(s.strategy, target, world, state, **kw)  # type: ignore[arg-type]
    shuffled = list(world)
    random.Random(len(world)).shuffle(shuffled)
    again = decide_rollout(s.strategy, target, shuffled, state, **kw)  # type: ignore[arg-type]
    assert first == again


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_rollout_properties_hold_on_any_fleet(s: Scenario) -> None:
    sim = build(s)
    limit = max_unavailable(s.strategy.max_unavailable, len(s.zones))
    state = RolloutState(stable=None if s.first_deploy else V1)
    target = V2
    stable_at_start = {V2: state.stable}
    flips: dict[int, list[int]] = {}
    for tick, index in s.flips:
        flips.setdefault(tick, []).append(index)
    commands = dict(s.commands)
    resume_next = False
    measured = 0
    for tick in range(MAX_TICKS):
        now = T0 + timedelta(seconds=s.dt * tick)
        for index in flips.get(tick, []):
            node = sim.fleet[f"node-{index}"]
            sim.set_online(node.name, not node.online)
        if tick == FLIPS_UNTIL and not sim.online():
            sim.set_online("node-0", True)  # a fleet all offline waits; one comes back
        if s.retarget_at == tick:
            target = V3
            stable_at_start.setdefault(V3, state.stable)
        # (1) the rollout never has more than maxUnavailable online nodes down.
        assert len(sim.disrupted) <= limit, (tick, sorted(sim.disrupted), limit)
        command = commands.get(tick, "")
        cmd = Commands(
            promote=command == "promote",
            abort=command == "abort",
            pause=command == "pause",
            resume=command == "resume" or resume_next,
        )
        passing = s.metrics[measured % len(s.metrics)]
        observation = window(error_rate=0.001 if passing else 0.5, samples=10 if s.quiet else 1000)
        world = sim.observe()
        kw = {"observation": observation, "commands": cmd, "now": now}
        decision = decide_rollout(s.strategy, target, world, state, **kw)  # type: ignore[arg-type]
        # (5) same inputs, same decision, whatever order the nodes come in.
        check_determinism(s, target, world, state, **kw)
        if decision.state.last_measured_at == now:
            measured += 1
        # (2) a node serves a version only with a ready, verified pod.
        for report in decision.nodes:
            if report.serving is not None:
                pod = sim.fleet[report.name].pod
                assert pod is not None
                assert pod.verified is True
                assert pod.ready
                assert report.online
                assert pod.version == report.serving
        state = decision.state
        # Play the person: an untimed pause or an inconclusive analysis gets resumed.
        resume_next = decision.held and decision.phase == Phase.PAUSED
        if decision.phase == Phase.ROLLED_BACK:
            # (3) a rollback lands every online node on the stable version it started from.
            assert state.stable == stable_at_start[target]
            assert target.version in state.rejected
            assert sim.serving(state.stable) == sim.online()
        if decision.phase == Phase.HEALTHY and state.canary is None:
            assert state.stable == target
        terminal = decision.phase in (Phase.HEALTHY, Phase.ROLLED_BACK) or (
            decision.phase == Phase.DEGRADED and decision.held
        )
        settled = tick > max(FLIPS_UNTIL, s.retarget_at or 0, max(commands, default=0))
        if terminal and settled:
            break
        sim.apply(decision)
        sim.advance()
    else:
        raise AssertionError(f"no end after {MAX_TICKS} ticks: {decision.phase} {decision.message}")
    # (4) it ended in one of the three ends, with the world to match.
    if decision.phase == Phase.DEGRADED:
        assert state.stable is None
    if decision.phase == Phase.HEALTHY:
        assert state.stable == target
        assert all(a == target for a in (decision.assignments[n] for n in sim.online()))
