"""The rollout machine, rule by rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from edgeml.rollout import (
    AnalysisStep,
    Commands,
    NodeObservation,
    NodesStep,
    PauseStep,
    Phase,
    Pod,
    RolloutDecision,
    RolloutState,
    RolloutStrategy,
    Version,
    decide_rollout,
)
from unit.edgeml.rollout.world import T0, V1, V2, V3, Sim, canary, nodes, window

S = timedelta(seconds=1)


def on(decision: RolloutDecision, version: Version | None) -> list[str]:
    return sorted(n for n, v in decision.assignments.items() if v == version)


def run(
    sim: Sim,
    strategy: RolloutStrategy,
    state: RolloutState,
    *,
    ticks: int,
    target: Version = V2,
    dt: timedelta = 10 * S,
    start: int = 0,
    **kw: object,
) -> tuple[RolloutDecision, RolloutState]:
    """Tick the machine against the simulated world; the last decision and state."""
    decision = None
    for tick in range(start, start + ticks):
        decision = decide_rollout(
            strategy,
            target,
            sim.observe(),
            state,
            now=T0 + dt * tick,
            **kw,  # type: ignore[arg-type]
        )
        state = decision.state
        sim.apply(decision)
        sim.advance()
    assert decision is not None
    return decision, state


# --- starting, waves, zones ------------------------------------------------------------------


def test_first_deploy_without_canary_places_every_node_at_once() -> None:
    d = decide_rollout(RolloutStrategy(), V2, nodes(5, on=None), RolloutState(), now=T0)
    assert on(d, V2) == [f"n{i:02d}" for i in range(5)]
    assert d.phase == Phase.PROGRESSING
    assert [e.reason for e in d.events] == ["RolloutStarted"]


def test_without_canary_serving_nodes_move_max_unavailable_at_a_time() -> None:
    strategy = RolloutStrategy(max_unavailable=2)
    sim = Sim.of(nodes(5))
    d = decide_rollout(strategy, V2, sim.observe(), RolloutState(stable=V1), now=T0)
    assert len(on(d, V2)) == 2
    assert d.canary is not None
    assert (d.canary.nodes, d.canary.ready) == (2, 0)
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=10)
    assert d.phase == Phase.HEALTHY
    assert state.stable == V2
    assert state.canary is None


@pytest.mark.parametrize(("step", "expected"), [(NodesStep("10%"), 2), (NodesStep(3), 3)])
def test_a_nodes_step_moves_its_share_spread_over_zones(step: NodesStep, expected: int) -> None:
    fleet = nodes(20, zones=4)
    strategy = canary(step, PauseStep(), max_unavailable=5)
    d = decide_rollout(strategy, V2, fleet, RolloutState(stable=V1), now=T0)
    moved = on(d, V2)
    assert len(moved) == expected
    zones = {n.name: n.zone for n in fleet}
    assert len({zones[n] for n in moved}) == expected  # one per zone while zones remain


def test_waves_are_deterministic_and_salted_by_version() -> None:
    strategy = canary(NodesStep(4), PauseStep(), max_unavailable=4)
    a = decide_rollout(strategy, V2, nodes(30, 3), RolloutState(stable=V1), now=T0)
    b = decide_rollout(strategy, V2, nodes(30, 3)[::-1], RolloutState(stable=V1), now=T0)
    c = decide_rollout(strategy, V3, nodes(30, 3), RolloutState(stable=V1), now=T0)
    assert a == b
    assert on(a, V2) != on(c, V3)


def test_max_unavailable_splits_a_wave_into_sub_steps() -> None:
    strategy = canary(NodesStep(5), PauseStep(), max_unavailable=3)
    sim = Sim.of(nodes(10))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=1)
    assert len(on(d, V2)) == 3
    assert {r.note for r in d.nodes if r.note} == {"Moving", "Blocked"}
    d, state = run(sim, strategy, state, ticks=1, start=1)  # the 3 are ready: 2 more
    assert len(on(d, V2)) == 5
    d, state = run(sim, strategy, state, ticks=1, start=2)
    assert d.phase == Phase.PAUSED
    assert d.held
    assert state.step == 1


def test_unready_nodes_count_against_max_unavailable() -> None:
    fleet = nodes(4)
    fleet[3] = replace(fleet[3], pod=Pod(V1, ready=False, verified=True))
    d = decide_rollout(
        canary(NodesStep(2), max_unavailable=1), V2, fleet, RolloutState(stable=V1), now=T0
    )
    # n03 is down already, so no serving node may be taken down now.
    assert on(d, V2) == []
    assert d.phase == Phase.PROGRESSING


def test_a_node_that_serves_nothing_moves_without_spending_budget() -> None:
    fleet = nodes(4)
    fleet[0] = replace(fleet[0], pod=None)
    strategy = RolloutStrategy(max_unavailable=1)
    d = decide_rollout(strategy, V2, fleet, RolloutState(stable=V1), now=T0)
    assert "n00" in on(d, V2)
    assert len(on(d, V2)) == 1  # n00 counted as down, so no other node moves yet


def test_a_first_rollout_retargeted_midway_finishes_on_the_new_target() -> None:
    """5 of 9 nodes got V1 before V2 replaced it as the target, with nothing stable: the
    pod-less nodes are not "down", V1 keeps serving until V2's waves reach it, and V2
    completes (this deadlocked once: 4 pod-less nodes over a limit of 1)."""
    fleet = nodes(5, zones=3) + nodes(9, zones=3, on=None)[5:]
    strategy = canary(
        NodesStep(1), PauseStep(timedelta(seconds=5)), NodesStep("50%"), NodesStep("100%"),
        analysis=None, max_unavailable=1,
    )  # fmt: skip
    sim = Sim.of(fleet)
    state = RolloutState(canary=V1, step=2, step_started_at=T0, progressed_at=T0)
    d, state = run(sim, strategy, state, ticks=1)
    assert sorted(sim.serving(V1)) == [
        f"n{i:02d}" for i in range(5) if f"n{i:02d}" not in on(d, V2)
    ]
    d, state = run(sim, strategy, state, ticks=30, start=1)
    assert d.phase == Phase.HEALTHY
    assert state.stable == V2
    assert sorted(sim.serving(V2)) == [f"n{i:02d}" for i in range(9)]


# --- offline nodes -----------------------------------------------------------------------------


def test_offline_nodes_are_skipped_recorded_and_caught_up() -> None:
    strategy = canary(NodesStep("50%"), PauseStep(timedelta(seconds=30)), max_unavailable=10)
    sim = Sim.of(nodes(6))
    d, _ = run(sim, strategy, RolloutState(stable=V1), ticks=1)
    wave = on(d, V2)
    sim2 = Sim.of(nodes(6))
    sim2.set_online(wave[0], False)
    d, state = run(sim2, strategy, RolloutState(stable=V1), ticks=1)
    assert wave[0] not in on(d, V2)  # not moved while offline...
    assert next(r for r in d.nodes if r.name == wave[0]).note == "Offline"
    assert len(on(d, V2)) == 3  # ...its slot in the wave went to an online node...
    d, state = run(sim2, strategy, state, ticks=2, start=1)  # ...and the wave completed
    assert state.step >= 1
    sim2.set_online(wave[0], True)
    d, state = run(sim2, strategy, state, ticks=10, start=3)
    assert d.phase == Phase.HEALTHY
    assert state.stable == V2
    assert wave[0] in on(d, V2)  # caught up with the last wave


def test_a_wave_is_filled_with_online_nodes_when_the_first_in_order_is_offline() -> None:
    strategy = canary(NodesStep(1), PauseStep(None))
    d, _ = run(Sim.of(nodes(4)), strategy, RolloutState(stable=V1), ticks=1)
    first = on(d, V2)[0]
    sim = Sim.of(nodes(4))
    sim.set_online(first, False)
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=3)
    moved = on(d, V2)
    assert len(moved) == 1
    assert moved[0] != first
    assert state.step == 1  # held at the pause with a canary that really serves
    assert sim.serving(V2) == moved


def test_a_node_offline_through_the_rollout_catches_up_to_the_new_stable() -> None:
    sim = Sim.of(nodes(4))
    sim.set_online("n00", False)
    d, state = run(sim, RolloutStrategy(), RolloutState(stable=V1), ticks=8)
    assert state.stable == V2
    assert d.assignments["n00"] == V1
    sim.set_online("n00", True)
    d, state = run(sim, RolloutStrategy(), state, ticks=1, start=8)
    assert d.assignments["n00"] == V2
    assert d.reason == "CatchingUp"
    d, state = run(sim, RolloutStrategy(), state, ticks=3, start=9)
    assert d.phase == Phase.HEALTHY
    assert sim.serving(V2) == sim.online()


def test_offline_nodes_do_not_count_against_the_progress_deadline() -> None:
    strategy = canary(NodesStep("100%"), max_unavailable=10, progress_deadline=30 * S)
    sim = Sim.of(nodes(3))
    sim.set_online("n01", False)
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=10)
    assert d.phase == Phase.HEALTHY
    assert state.stable == V2
    assert d.assignments["n01"] == V1


def test_a_fleet_all_offline_waits_rather_than_completing_unseen() -> None:
    sim = Sim.of(nodes(2))
    for name in ("n00", "n01"):
        sim.set_online(name, False)
    d, state = run(sim, RolloutStrategy(), RolloutState(stable=V1), ticks=3)
    assert d.reason == "NoOnlineNodes"
    assert state.stable == V1


# --- verification and deadlines ----------------------------------------------------------------


def test_an_unverified_pod_never_serves_and_rolls_back_at_once() -> None:
    sim = Sim.of(nodes(4), behaviour={V2: "unverified"})
    d, state = run(sim, canary(NodesStep(1), PauseStep()), RolloutState(stable=V1), ticks=2)
    assert all(r.serving != V2 for r in d.nodes)
    assert d.phase == Phase.ROLLING_BACK
    assert any(e.reason == "ArtifactVerificationFailed" for e in d.events)
    assert state.rejected == (2,)
    d, state = run(sim, canary(NodesStep(1)), state, ticks=3, start=2)
    assert d.phase == Phase.ROLLED_BACK
    assert sim.serving(V1) == sim.online()


def test_a_canary_not_ready_by_the_progress_deadline_rolls_back() -> None:
    strategy = canary(NodesStep(2), PauseStep(), max_unavailable=2, progress_deadline=60 * S)
    sim = Sim.of(nodes(4), behaviour={V2: "never-ready"})
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=6)  # up to 50 s
    assert d.phase == Phase.PROGRESSING
    assert d.requeue_at == T0 + 60 * S
    d, state = run(sim, strategy, state, ticks=1, start=6)
    assert d.phase == Phase.ROLLING_BACK
    assert "ProgressDeadlineExceeded" in state.reason
    d, state = run(sim, strategy, state, ticks=4, start=7)
    assert d.phase == Phase.ROLLED_BACK
    assert on(d, V1) == sim.online()


def test_progress_resets_the_deadline() -> None:
    strategy = canary(NodesStep(6), PauseStep(), max_unavailable=1, progress_deadline=25 * S)
    sim = Sim.of(nodes(6))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=13)  # 130 s, one at a time
    assert d.phase == Phase.PAUSED
    assert state.step == 1
    assert not state.rejected


# --- analysis ----------------------------------------------------------------------------------


ANALYSED = canary(NodesStep(1), AnalysisStep(timedelta(seconds=90)), max_unavailable=1)


def test_a_passing_analysis_measures_every_interval_then_moves_on() -> None:
    sim = Sim.of(nodes(4))
    d, state = run(sim, ANALYSED, RolloutState(stable=V1), ticks=3, observation=window())
    assert d.phase == Phase.ANALYZING
    assert state.step == 1
    assert d.requeue_at is not None
    d, state = run(sim, ANALYSED, state, ticks=10, start=3, observation=window())
    assert state.stable == V2 or state.step == 2
    d, state = run(sim, ANALYSED, state, ticks=10, start=13, observation=window())
    assert d.phase == Phase.HEALTHY
    assert state.stable == V2


def test_failures_within_the_limit_alone_do_not_pass_the_step() -> None:
    """Every window fails, but fewer times than failureLimit: the step must not end as if
    the canary had passed; it is held, as when nothing could be measured."""
    assert ANALYSED.analysis is not None
    strategy = replace(ANALYSED, analysis=replace(ANALYSED.analysis, failure_limit=10))
    sim = Sim.of(nodes(4))
    bad = window(error_rate=0.5)
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=2)
    d, state = run(sim, strategy, state, ticks=20, start=2, observation=bad)
    assert state.failures > 0
    assert state.step == 1
    assert (d.phase, d.reason) == (Phase.PAUSED, "AnalysisInconclusive")
    assert state.stable == V1


def test_a_wave_node_whose_pod_is_gone_holds_the_budget_of_a_first_rollout() -> None:
    """No stable version; a node in the wave lost its pod (a create that failed after the
    delete): it counts as down, so no other serving node is taken meanwhile."""
    fleet = nodes(4, on=V3)
    fleet[0] = replace(fleet[0], pod=None)
    strategy = canary(NodesStep("100%"), analysis=None, max_unavailable=1)
    d = decide_rollout(strategy, V2, fleet, RolloutState(canary=V2), now=T0)
    assert on(d, V2) == ["n00"]  # the pod-less node moves for free; nobody else yet


@pytest.mark.parametrize(("failure_limit", "rolled_back"), [(0, True), (1, True), (2, False)])
def test_more_failures_than_the_limit_roll_back(failure_limit: int, rolled_back: bool) -> None:
    assert ANALYSED.analysis is not None
    strategy = replace(ANALYSED, analysis=replace(ANALYSED.analysis, failure_limit=failure_limit))
    sim = Sim.of(nodes(4))
    # 90 s of analysis at 30 s intervals: three failing measurements at most... two here.
    bad = window(error_rate=0.5)
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=2)
    d, state = run(sim, strategy, state, ticks=7, start=2, dt=10 * S, observation=bad)
    assert (2 in state.rejected) == rolled_back
    if rolled_back:
        assert (
            any(e.reason == "AnalysisFailed" for e in d.events) or "AnalysisFailed" in state.reason
        )
        d, state = run(sim, strategy, state, ticks=3, start=9)
        assert d.phase == Phase.ROLLED_BACK
        assert sim.serving(V1) == sim.online()


def test_windows_with_too_few_samples_do_not_count_and_end_inconclusive() -> None:
    sim = Sim.of(nodes(4))
    quiet = window(error_rate=0.5, samples=3)
    d, state = run(sim, ANALYSED, RolloutState(stable=V1), ticks=15, observation=quiet)
    assert (d.phase, d.reason, d.held) == (Phase.PAUSED, "AnalysisInconclusive", True)
    assert state.failures == 0
    assert state.measured == 0
    assert state.measurements
    assert not state.measurements[-1].counted
    d, state = run(sim, ANALYSED, state, ticks=1, start=15, commands=Commands(resume=True))
    assert state.step == 2


# --- pauses, commands --------------------------------------------------------------------------


def test_a_timed_pause_waits_then_continues() -> None:
    strategy = canary(NodesStep(1), PauseStep(timedelta(seconds=45)))
    sim = Sim.of(nodes(3))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=2)
    assert d.phase == Phase.PAUSED
    assert not d.held
    assert d.requeue_at == state.step_started_at + 45 * S  # type: ignore[operator]
    d, state = run(sim, strategy, state, ticks=5, start=2)
    assert state.step == 2


def test_an_untimed_pause_holds_until_resume() -> None:
    strategy = canary(NodesStep(1), PauseStep())
    sim = Sim.of(nodes(3))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=20)
    assert (d.phase, d.held, state.step) == (Phase.PAUSED, True, 1)
    d, state = run(sim, strategy, state, ticks=1, start=20, commands=Commands(resume=True))
    assert state.step == 2


def test_spec_paused_holds_and_freezes_timers() -> None:
    strategy = canary(NodesStep(1), PauseStep(timedelta(seconds=60)))
    sim = Sim.of(nodes(3))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=2)  # at the pause, 10 s in
    paused = replace(strategy, paused=True)
    d, state = run(sim, paused, state, ticks=20, start=2)
    assert (d.phase, d.reason, d.held) == (Phase.PAUSED, "PausedBySpec", True)
    assert all(r.note != "Moving" for r in d.nodes)
    d, state = run(sim, strategy, state, ticks=1, start=22)
    assert state.step == 1  # the 200 s held did not count toward the 60 s pause
    d, state = run(sim, strategy, state, ticks=6, start=23)
    assert state.step == 2 or state.stable == V2


def test_pause_and_resume_commands() -> None:
    strategy = canary(NodesStep(1), NodesStep(2), max_unavailable=1)
    sim = Sim.of(nodes(4))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=1, commands=Commands(pause=True))
    assert (d.phase, d.reason) == (Phase.PAUSED, "PausedByUser")
    assert on(d, V2) == []
    d, state = run(sim, strategy, state, ticks=3, start=1)
    assert d.phase == Phase.PAUSED
    assert on(d, V2) == []
    d, state = run(sim, strategy, state, ticks=1, start=4, commands=Commands(resume=True))
    assert d.phase == Phase.PROGRESSING
    assert len(on(d, V2)) == 1


def test_promote_skips_to_the_end() -> None:
    strategy = canary(NodesStep(1), PauseStep(), max_unavailable=10)
    sim = Sim.of(nodes(5))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=3)
    assert d.held
    d, state = run(sim, strategy, state, ticks=1, start=3, commands=Commands(promote=True))
    assert len(on(d, V2)) == 5
    assert state.promoted
    d, state = run(sim, strategy, state, ticks=2, start=4)
    assert d.phase == Phase.HEALTHY
    assert state.stable == V2


def test_abort_rolls_back_and_rejects() -> None:
    strategy = canary(NodesStep(2), PauseStep(), max_unavailable=10)
    sim = Sim.of(nodes(5))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=3)
    d, state = run(sim, strategy, state, ticks=1, start=3, commands=Commands(abort=True))
    assert d.phase == Phase.ROLLING_BACK
    assert on(d, V1) == sorted(sim.fleet)
    assert [e.reason for e in d.events] == ["Aborted"]
    d, state = run(sim, strategy, state, ticks=3, start=4)
    assert d.phase == Phase.ROLLED_BACK
    assert state.rejected == (2,)
    assert [e.reason for e in run(Sim.of(nodes(5)), strategy, state, ticks=1)[0].events] == []


def test_abort_on_a_first_deploy_holds_degraded() -> None:
    strategy = canary(NodesStep(1), PauseStep())
    sim = Sim.of(nodes(3, on=None))
    d, state = run(sim, strategy, RolloutState(), ticks=2)
    d, state = run(sim, strategy, state, ticks=1, start=2, commands=Commands(abort=True))
    assert (d.phase, d.reason, d.held) == (Phase.DEGRADED, "NoStableVersion", True)
    assert len(on(d, V2)) == 1  # nothing to go back to: held as it is


def test_a_rejected_target_is_not_retried_until_promoted() -> None:
    state = RolloutState(stable=V1, rejected=(2,))
    d = decide_rollout(canary(NodesStep(1)), V2, nodes(3), state, now=T0)
    assert d.phase == Phase.ROLLED_BACK
    assert on(d, V2) == []
    d = decide_rollout(
        canary(NodesStep(1)), V2, nodes(3), state, commands=Commands(promote=True), now=T0
    )
    assert d.state.rejected == ()
    assert d.state.promoted
    assert on(d, V2)


def test_rollback_returns_nodes_that_come_back_online_to_stable() -> None:
    sim = Sim.of(nodes(3))
    sim.fleet["n00"].pod = Pod(V2, ready=True, verified=True)
    sim.set_online("n00", False)
    state = RolloutState(stable=V1, canary=V2, rejected=(2,), rolling_back=True)
    d, state = run(sim, canary(NodesStep(1)), state, ticks=1)
    assert d.phase == Phase.ROLLED_BACK
    assert d.assignments["n00"] == V2
    sim.set_online("n00", True)
    d, state = run(sim, canary(NodesStep(1)), state, ticks=3, start=1)
    assert d.assignments["n00"] == V1
    assert sim.serving(V1) == sim.online()


# --- target changes ----------------------------------------------------------------------------


def test_a_target_change_restarts_from_stable() -> None:
    strategy = canary(NodesStep(2), PauseStep(), max_unavailable=4)
    sim = Sim.of(nodes(8))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=3)
    assert state.step == 1
    assert len(on(d, V2)) == 2
    d, state = run(sim, strategy, state, ticks=1, start=3, target=V3)
    assert state.canary == V3
    assert state.step == 0
    assert [e.reason for e in d.events][:2] == ["TargetChanged", "RolloutStarted"]
    d, state = run(sim, strategy, state, ticks=4, start=4, target=V3)
    assert on(d, V2) == []
    assert len(on(d, V3)) == 2
    assert state.step == 1


def test_a_target_back_to_stable_abandons_the_canary_without_rejecting() -> None:
    strategy = canary(NodesStep(2), PauseStep(), max_unavailable=4)
    sim = Sim.of(nodes(6))
    d, state = run(sim, strategy, RolloutState(stable=V1), ticks=3)
    d, state = run(sim, strategy, state, ticks=3, start=3, target=V1)
    assert d.phase == Phase.HEALTHY
    assert state.canary is None
    assert state.rejected == ()
    assert sim.serving(V1) == sim.online()


def test_completion_makes_the_target_stable() -> None:
    sim = Sim.of(nodes(3))
    d, state = run(sim, canary(NodesStep(1), max_unavailable=3), RolloutState(stable=V1), ticks=4)
    assert any(e.reason == "RolloutCompleted" for e in d.events) or d.reason == "Stable"
    assert state == RolloutState(stable=V2)
    assert d.stable.version == V2
    assert (d.stable.nodes, d.stable.ready) == (3, 3)
    assert d.canary is None


def test_zone_summary_counts_canary_and_ready_nodes() -> None:
    fleet: list[NodeObservation] = nodes(6, zones=2)
    d = decide_rollout(
        canary(NodesStep(2), PauseStep(), max_unavailable=2),
        V2,
        fleet,
        RolloutState(stable=V1),
        now=T0,
    )
    assert [(z.zone, z.nodes, z.canary, z.ready) for z in d.zones] == [
        ("z0", 3, 1, 2),
        ("z1", 3, 1, 2),
    ]
