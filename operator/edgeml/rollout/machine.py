"""The rollout state machine: one pure decision per reconcile.

Every reconcile hands `decide_rollout` the strategy, the target, the nodes as observed,
the persisted state, the analysis window, manual commands and `now`; it returns which
version each node should run, the new state, the phase and when to look again. It keeps
no memory of its own, so an operator restart at any instant resumes where it was.

Modes, by what the target is relative to the persisted state:
- target == stable: steady; catch up nodes that are behind (new or back from offline);
- target rejected: roll back (or, with no stable to return to, hold Degraded);
- otherwise: walk the canary steps toward the target, then make it stable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from edgeml.rollout.analysis import describe, measure
from edgeml.rollout.model import (
    MAX_MEASUREMENTS,
    AnalysisObservation,
    AnalysisStep,
    AnalysisTemplate,
    Commands,
    Event,
    NodeObservation,
    NodeReport,
    NodesStep,
    PauseStep,
    Phase,
    RolloutDecision,
    RolloutState,
    RolloutStrategy,
    Version,
    VersionCount,
    ZoneCount,
)
from edgeml.rollout.waves import max_unavailable, order_nodes, wave_size

MAX_REJECTED = 20  # rejected versions remembered in status

Desired = Mapping[str, Version | None]


@dataclass(frozen=True)
class _Moves:
    """The assignment after applying the maxUnavailable budget to the desired one."""

    assignments: dict[str, Version | None]
    notes: dict[str, str]
    moved: int


def decide_rollout(
    strategy: RolloutStrategy,
    target: Version,
    nodes: Sequence[NodeObservation],
    state: RolloutState,
    *,
    observation: AnalysisObservation | None = None,
    commands: Commands = Commands(),  # noqa: B008 - frozen, so a shared default is safe
    now: datetime,
) -> RolloutDecision:
    """Decide where every targeted node should be, and the rollout's next state."""
    fleet = sorted(nodes, key=lambda n: n.name)  # input order must not matter
    events: list[Event] = []
    st = state
    if commands.promote and target.version in st.rejected:
        # A person promoting a rejected version overrides the rejection.
        st = replace(st, rejected=tuple(v for v in st.rejected if v != target.version))
        events.append(Event("Normal", "RejectionOverridden", f"{target} is retried on promote."))
    if st.canary is not None and st.canary != target:
        events.append(
            Event(
                "Normal",
                "TargetChanged",
                f"The target moved from {st.canary} to {target}; the rollout restarts "
                f"from the stable {st.stable or 'nothing'}.",
            )
        )
        st = _restart(st)
    if target == st.stable:
        return _steady(strategy, fleet, st, events)
    if target.version in st.rejected:
        return _rolled_back(strategy, target, fleet, st, events)
    if st.canary is None:
        st = replace(_restart(st), canary=target, step_started_at=now, progressed_at=now)
        events.append(
            Event("Normal", "RolloutStarted", f"Rolling out {target} (stable: {st.stable}).")
        )
    if commands.abort:
        return _start_rollback(
            strategy, target, fleet, st, events, "Aborted", "The rollout was aborted by a person."
        )
    return _forward(strategy, target, fleet, st, observation, commands, now, events)


# --- modes ----------------------------------------------------------------------------------


def _steady(
    strategy: RolloutStrategy,
    fleet: Sequence[NodeObservation],
    st: RolloutState,
    events: list[Event],
) -> RolloutDecision:
    """Target is stable: keep every node on it, catching up the ones that are behind."""
    stable = st.stable
    st = replace(_restart(st), canary=None)
    desired = {n.name: stable for n in fleet}
    salt = f"steady:{stable}"
    if strategy.paused:
        moves = _hold(fleet)
    else:
        moves = _realise(fleet, desired, _limit(strategy, fleet), _ranker(fleet, salt), stable)
    behind = [n for n in fleet if n.online and moves.assignments[n.name] != stable]
    if moves.moved or behind:
        phase, reason = Phase.PROGRESSING, "CatchingUp"
        message = f"{moves.moved + len(behind)} online nodes are being moved to {stable}."
        if strategy.paused:
            phase, reason = Phase.PAUSED, "PausedBySpec"
            message = f"spec.paused holds {len(behind)} online nodes off {stable}."
    else:
        phase, reason = Phase.HEALTHY, "Stable"
        message = f"Every online node is assigned {stable}."
    return _decision(fleet, moves, st, phase, reason, message, events, held=strategy.paused)


def _rolled_back(
    strategy: RolloutStrategy,
    target: Version,
    fleet: Sequence[NodeObservation],
    st: RolloutState,
    events: list[Event],
) -> RolloutDecision:
    """The target was rejected: every node returns to stable; hold if there is none."""
    stable = st.stable
    if stable is None:
        message = (
            f"{target} failed ({st.reason or 'rejected'}) and there is no stable version to "
            "roll back to; nodes are held as they are until the target changes."
        )
        return _decision(
            fleet, _hold(fleet), st, Phase.DEGRADED, "NoStableVersion", message, events, held=True
        )
    # Rollbacks go on under spec.paused: holding a bad version in place is never safer.
    desired = {n.name: stable for n in fleet}
    ranker = _ranker(fleet, f"back:{target}")
    moves = _realise(fleet, desired, _limit(strategy, fleet), ranker, stable)
    if all(n.serves(stable) for n in fleet if n.online):
        if st.rolling_back:
            events.append(
                Event("Normal", "RolledBack", f"Every online node serves {stable} again.")
            )
        st = replace(st, rolling_back=False)
        message = f"{target} was rolled back ({st.reason}); every online node serves {stable}."
        return _decision(fleet, moves, st, Phase.ROLLED_BACK, "RolledBack", message, events)
    behind = sum(1 for n in fleet if n.online and not n.serves(stable))
    message = f"Rolling back {target} ({st.reason}): {behind} online nodes not yet on {stable}."
    return _decision(fleet, moves, st, Phase.ROLLING_BACK, "RollingBack", message, events)


def _start_rollback(
    strategy: RolloutStrategy,
    target: Version,
    fleet: Sequence[NodeObservation],
    st: RolloutState,
    events: list[Event],
    reason: str,
    message: str,
) -> RolloutDecision:
    """Reject the target and send every node back to stable (or hold, on a first deploy)."""
    rejected = (*[v for v in st.rejected if v != target.version], target.version)[-MAX_REJECTED:]
    st = replace(
        st, rejected=rejected, rolling_back=st.stable is not None, reason=f"{reason}: {message}"
    )
    what = f"rolling back to {st.stable}" if st.stable else "no stable version to return to"
    events.append(Event("Warning", reason, f"{message} {target} is rejected; {what}."))
    return _rolled_back(strategy, target, fleet, st, events)


def _forward(
    strategy: RolloutStrategy,
    target: Version,
    fleet: Sequence[NodeObservation],
    st: RolloutState,
    observation: AnalysisObservation | None,
    commands: Commands,
    now: datetime,
    events: list[Event],
) -> RolloutDecision:
    """Walk the steps toward `target` as far as the world allows this reconcile."""
    resume = commands.resume
    if commands.promote and not st.promoted:
        st = replace(st, promoted=True, paused=False)
        events.append(Event("Normal", "Promoted", f"{target} skips the remaining steps."))
    if commands.pause and not st.paused:
        st = replace(st, paused=True)
        events.append(Event("Normal", "Paused", "The rollout was paused by a person."))
    elif resume and st.paused:
        st = replace(st, paused=False)
        resume = False  # it released the pause; it does not also skip a step
        events.append(Event("Normal", "Resumed", "The rollout was resumed."))
    if strategy.paused or st.paused:
        st = replace(st, paused_since=st.paused_since or now)
        reason = "PausedBySpec" if strategy.paused else "PausedByUser"
        how = "set spec.paused to false" if strategy.paused else "resume it"
        message = f"The rollout of {target} is held at step {st.step}; {how} to continue."
        return _decision(fleet, _hold(fleet), st, Phase.PAUSED, reason, message, events, held=True)
    if st.paused_since is not None:
        st = _thaw(st, now - st.paused_since)

    unverified = sorted(
        n.name
        for n in fleet
        if n.online and n.pod and n.pod.version == target and n.pod.verified is False
    )
    if unverified:
        message = f"the model's sha256 did not verify on {', '.join(unverified[:5])}."
        return _start_rollback(
            strategy, target, fleet, st, events, "ArtifactVerificationFailed", message.capitalize()
        )

    steps = () if strategy.steps is None or st.promoted else strategy.steps
    total = len(fleet)
    order = _wave_order(fleet, target)
    index = min(st.step, len(steps))
    advanced = False
    held_reason = ""
    while index < len(steps):
        canary = set(order[: wave_size(steps, index, total)])
        step = steps[index]
        started = st.step_started_at or now
        if isinstance(step, NodesStep):
            if _pending(fleet, canary, target, st.stable):
                break
        elif isinstance(step, AnalysisStep):
            template = strategy.analysis
            if template is not None:
                st = _maybe_measure(template, st, started, observation, now, events)
                if st.failures > template.failure_limit:
                    last = st.measurements[-1]
                    message = (
                        f"Analysis failed {st.failures} times (limit {template.failure_limit}); "
                        f"last: {describe(last)}."
                    )
                    return _start_rollback(
                        strategy, target, fleet, st, events, "AnalysisFailed", message
                    )
            if now < started + step.duration:
                break
            # A step ends on a pass: failures within failureLimit do not carry it alone.
            if template is not None and st.measured - st.failures == 0:
                if not resume:
                    held_reason = "AnalysisInconclusive"
                    break
                resume = False
        elif isinstance(step, PauseStep):
            if step.duration is not None and now >= started + step.duration:
                pass
            elif resume:
                resume = False
            else:
                break
        index += 1
        advanced = True
        st = replace(
            st,
            step=index,
            step_started_at=now,
            measurements=(),
            measured=0,
            failures=0,
            last_measured_at=None,
        )
        events.append(Event("Normal", "StepStarted", _step_text(steps, index, total)))

    canary = set(order[: wave_size(steps, index, total)])
    pending = _pending(fleet, canary, target, st.stable)
    # Completing needs one node that verifiably serves the target: a fleet that is all
    # offline proves nothing, and the version would become stable unseen.
    seen = any(n.serves(target) for n in fleet) or not fleet
    if index >= len(steps) and not pending and seen:
        events.append(
            Event("Normal", "RolloutCompleted", f"Every online node serves {target}; it is stable.")
        )
        st = replace(_restart(st), stable=target, canary=None)
        message = f"{target} is rolled out to every online node and is now stable."
        moves = _Moves(assignments={n.name: n.assigned for n in fleet}, notes={}, moved=0)
        return _decision(fleet, moves, st, Phase.HEALTHY, "RolloutCompleted", message, events)

    progressed_at = st.progressed_at or now
    if advanced or pending < st.pending:
        progressed_at = now
    deadline = progressed_at + strategy.progress_deadline
    if pending and now >= deadline:
        message = (
            f"{pending} online nodes were not serving {target} "
            f"{_span(strategy.progress_deadline)} after the last progress (progressDeadline)."
        )
        return _start_rollback(
            strategy, target, fleet, st, events, "ProgressDeadlineExceeded", message
        )
    # Outside the wave a node goes back to stable; before anything is stable it keeps
    # what it has (an earlier, unfinished target serves better than nothing).
    desired = {n.name: target if n.name in canary else (st.stable or n.assigned) for n in fleet}
    rank = {name: i for i, name in enumerate(order)}
    moves = _realise(fleet, desired, _limit(strategy, fleet), rank.__getitem__, st.stable)
    if moves.moved:
        progressed_at = now
    st = replace(st, progressed_at=progressed_at, pending=pending)

    timers = [progressed_at + strategy.progress_deadline] if pending else []
    step_now = steps[index] if index < len(steps) else None
    started = st.step_started_at or now
    held = False
    on_track = f"{len(canary)} of {total} nodes assigned {target}"
    if held_reason:
        phase, reason, held = Phase.PAUSED, held_reason, True
        message = (
            f"Analysis at step {index} counted no passing measurement ({st.measured} "
            f"counted, {st.failures} failed, too few samples in the rest); "
            "resume to continue, promote, or abort."
        )
    elif isinstance(step_now, AnalysisStep):
        phase, reason = Phase.ANALYZING, "Analyzing"
        message = f"Analysing {target} at step {index} ({on_track}, {st.failures} failures)."
        if strategy.analysis is not None:
            timers.append((st.last_measured_at or started) + strategy.analysis.interval)
        timers.append(started + step_now.duration)
    elif isinstance(step_now, PauseStep):
        phase, reason = Phase.PAUSED, "PauseStep"
        if step_now.duration is None:
            held = not pending
            message = f"Paused at step {index} ({on_track}) until resumed."
        else:
            timers.append(started + step_now.duration)
            message = f"Paused at step {index} ({on_track}) for {_span(step_now.duration)}."
    elif not any(n.online for n in fleet):
        phase, reason = Phase.PROGRESSING, "NoOnlineNodes"
        message = f"Rolling out {target}: every targeted node is offline; waiting for one."
    else:
        phase, reason = Phase.PROGRESSING, "WaveProgressing"
        message = f"Rolling out {target}: {on_track}, {pending} not there yet."
    requeue = min(timers) if timers else None
    return _decision(
        fleet, moves, st, phase, reason, message, events, held=held, requeue_at=requeue
    )


# --- pieces -----------------------------------------------------------------------------------


def _restart(st: RolloutState) -> RolloutState:
    """The state with no rollout under way (stable, rejections and reason kept)."""
    return RolloutState(stable=st.stable, rejected=st.rejected, reason=st.reason)


def _thaw(st: RolloutState, frozen: timedelta) -> RolloutState:
    """Shift the timers by the time spent paused, so a pause does not eat a step's time."""

    def shift(t: datetime | None) -> datetime | None:
        return t + frozen if t is not None else None

    return replace(
        st,
        paused_since=None,
        step_started_at=shift(st.step_started_at),
        progressed_at=shift(st.progressed_at),
        last_measured_at=shift(st.last_measured_at),
    )


def _maybe_measure(
    template: AnalysisTemplate,
    st: RolloutState,
    started: datetime,
    observation: AnalysisObservation | None,
    now: datetime,
    events: list[Event],
) -> RolloutState:
    """Take a measurement when one is due (one per reconcile: the window is the current one)."""
    if now < (st.last_measured_at or started) + template.interval:
        return st
    m = measure(template, observation, now)
    st = replace(
        st,
        measurements=(*st.measurements, m)[-MAX_MEASUREMENTS:],
        last_measured_at=now,
        measured=st.measured + m.counted,
        failures=st.failures + (m.counted and not m.passed),
    )
    if m.counted and not m.passed:
        events.append(Event("Warning", "AnalysisFailed", f"Canary measurement: {describe(m)}."))
    return st


def _wave_order(fleet: Sequence[NodeObservation], target: Version) -> list[str]:
    """Wave order for `target`: nodes already on it first, so waves never reshuffle; then
    online nodes; offline ones last, so a wave is never filled by nodes that cannot move
    (a canary of offline nodes would pass its step and leave analysis nothing to read)."""
    base = order_nodes(((n.name, n.zone) for n in fleet), f"{target.version}:{target.sha256}")
    on_target = {n.name for n in fleet if n.assigned == target}
    online = {n.name for n in fleet if n.online}
    return (
        [n for n in base if n in on_target]
        + [n for n in base if n not in on_target and n in online]
        + [n for n in base if n not in on_target and n not in online]
    )


def _pending(
    fleet: Sequence[NodeObservation], canary: set[str], target: Version, stable: Version | None
) -> int:
    """Online nodes not yet where the step wants them.

    Canary nodes must serve the target; the others need only be assigned stable, so a
    stable pod failing for its own reasons does not stall (or roll back) the rollout.
    Before anything is stable, the others are wherever they are.
    """
    return sum(
        1
        for n in fleet
        if n.online
        and (
            not n.serves(target)
            if n.name in canary
            else stable is not None and n.assigned != stable
        )
    )


def _limit(strategy: RolloutStrategy, fleet: Sequence[NodeObservation]) -> int:
    return max_unavailable(strategy.max_unavailable, len(fleet))


def _ranker(fleet: Sequence[NodeObservation], salt: str) -> Callable[[str], int]:
    rank = {name: i for i, name in enumerate(order_nodes(((n.name, n.zone) for n in fleet), salt))}
    return rank.__getitem__


def _realise(
    fleet: Sequence[NodeObservation],
    desired: Desired,
    limit: int,
    rank: Callable[[str], int],
    stable: Version | None,
) -> _Moves:
    """Move nodes toward `desired` without taking more than `limit` online nodes down.

    Every online node that serves nothing counts against the limit, whatever the cause
    (no pod, starting, unverified): being conservative is what makes the bound provable.
    The one exception is a node without a pod that is to stay without one (no version is
    stable and no wave has reached it): nothing was taken from it, since nodes keep
    their pods until a wave moves them (counting those deadlocked a first rollout
    retargeted before it finished, with more pod-less nodes than the limit). A pod-less
    node a wave wants counts, so a pod that failed to come back still holds the budget.
    Moving a node that serves nothing takes nothing down, so it is free; offline nodes
    are never moved and keep their assignment until they return.
    """
    down = sum(
        1
        for n in fleet
        if n.online
        and not (n.pod and n.pod.serving)
        and (n.pod is not None or stable is not None or desired[n.name] is not None)
    )
    budget = max(0, limit - down)
    assignments: dict[str, Version | None] = {}
    notes: dict[str, str] = {}
    moved = 0
    for node in sorted(fleet, key=lambda n: rank(n.name)):
        want, current = desired[node.name], node.assigned
        if want == current:
            assignments[node.name] = current
            continue
        if not node.online:
            assignments[node.name] = current
            notes[node.name] = "Offline"
            continue
        if node.pod is not None and node.pod.serving:
            if budget == 0:
                assignments[node.name] = current
                notes[node.name] = "Blocked"
                continue
            budget -= 1
        assignments[node.name] = want
        notes[node.name] = "Moving"
        moved += 1
    return _Moves(assignments, notes, moved)


def _hold(fleet: Sequence[NodeObservation]) -> _Moves:
    return _Moves({n.name: n.assigned for n in fleet}, {}, 0)


def _decision(
    fleet: Sequence[NodeObservation],
    moves: _Moves,
    st: RolloutState,
    phase: Phase,
    reason: str,
    message: str,
    events: list[Event],
    *,
    held: bool = False,
    requeue_at: datetime | None = None,
) -> RolloutDecision:
    """The decision, with per-node reports and the counts status shows."""
    reports = []
    for n in fleet:
        assigned = moves.assignments[n.name]
        serving = n.pod.version if n.online and n.pod and n.pod.serving else None
        note = moves.notes.get(n.name, "")
        if n.pod is not None and n.pod.verified is False:
            note = "Unverified"
        elif not n.online:
            note = "Offline"
        reports.append(NodeReport(n.name, n.zone, n.online, assigned, serving, note))

    def count(version: Version | None) -> VersionCount:
        mine = [r for r in reports if r.assigned == version]
        return VersionCount(version, len(mine), sum(1 for r in mine if r.serving == version))

    zones = []
    for zone in sorted({r.zone for r in reports}):
        mine = [r for r in reports if r.zone == zone]
        zones.append(
            ZoneCount(
                zone,
                nodes=len(mine),
                canary=sum(1 for r in mine if st.canary and r.assigned == st.canary),
                ready=sum(1 for r in mine if r.serving is not None and r.serving == r.assigned),
            )
        )
    return RolloutDecision(
        assignments=moves.assignments,
        state=st,
        phase=phase,
        reason=reason,
        message=message,
        events=tuple(events),
        requeue_at=requeue_at,
        held=held,
        nodes=tuple(reports),
        stable=count(st.stable),
        canary=count(st.canary) if st.canary is not None else None,
        zones=tuple(zones),
    )


def _step_text(steps: Sequence[object], index: int, total: int) -> str:
    if index >= len(steps):
        return f"Last step done; moving all {total} nodes."
    step = steps[index]
    if isinstance(step, NodesStep):
        return f"Step {index}: move nodes to {step.nodes} of {total}."
    if isinstance(step, AnalysisStep):
        return f"Step {index}: analyse for {_span(step.duration)}."
    if isinstance(step, PauseStep) and step.duration is not None:
        return f"Step {index}: pause for {_span(step.duration)}."
    return f"Step {index}: pause until resumed."


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 60 or seconds < 60:
        return f"{delta.total_seconds():g}s"
    return f"{seconds // 60}m"
