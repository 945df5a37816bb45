"""When a DriftPolicy retrains: its triggers, the governor, and what became of each run.

Pure: the controller hands in the policy, the TrainingRuns carrying the policy's label,
the EdgeModel's status and the EdgeDeployment; out come the governor's status, the
TrainingRun to create (if any), the Retraining condition and Events.

Triggers:
- **Drift**: the policy is in a drift episode and its action is Retrain or
  RetrainAndDeploy. One run per episode and champion: the key is (policy uid, episode,
  champion version), so a run that makes a new champion may be followed by another if
  drift outlasts the cooldown, and never by two for the same reason.
- **Schedule**: the newest tick of the cron at or before now, later than the last tick
  handled (or the policy's creation). A tick older than startingDeadline is skipped; of
  several missed ticks only the newest is caught up, once. A tick the governor refuses
  (cooldown, in flight, limit, paused) is consumed and says why: a schedule asks for a
  run at a time, not for a run eventually.
- **NewData** and **CodeChange** (plans.triggers): the data a retrain reads, or its
  training template, differs from the champion's and from the baseline. One run per data
  version or template digest; a change the governor refuses stays wanted until it may
  run (the data does not go away), and the baseline moves on once a run exists for it.

The governor, in order: paused (too many rejected or rolled-back versions in a row), one
run in flight (training, awaiting the promotion decision, or rolling out), the cooldown
since the last run, the daily limit, and the backoff after failed runs. Each refusal is
in status with the time it ends.

Names come from the de-duplication key (objects.training_run), so whatever the
operator's state, one reason gives one TrainingRun.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cronsim import CronSim

from edgeml.api.common import cron_fields, parse_duration
from edgeml.api.driftpolicy import (
    DriftPolicySpec,
    RetrainingState,
    RetrainingStatus,
    RunOutcome,
    TriggeredRun,
)
from edgeml.api.events import Event
from edgeml.api.notify import Episode
from edgeml.api.trainingrun import Trigger
from edgeml.objects.training_run import build_training_run, run_name, trigger_id
from edgeml.plans.common import ConditionSpec
from edgeml.plans.triggers import ChangeFacts

RETRAINING = "Retraining"
RESUME_ANNOTATION = "edgeml.io/resume-retraining"
MAX_RECORDS = 10
DAY = timedelta(days=1)
FINAL: frozenset[RunOutcome] = frozenset({"Failed", "Rejected", "RolledOut", "RolledBack"})
"""Outcomes that never change again (kept as recorded, whatever the model does later)."""
IN_FLIGHT: frozenset[RunOutcome] = frozenset({"Training", "Evaluating", "RollingOut"})
DECIDED: frozenset[RunOutcome] = FINAL | {"AwaitingApproval", "Promoted", "Superseded"}
"""Outcomes that end a retrain's notification: the loop has done what it does by itself."""
"""A run in one of these blocks the next: at most one retrain in flight."""
STICKY: frozenset[RunOutcome] = frozenset({"AwaitingApproval", "Promoted", "Superseded"})
"""Decided outcomes that never fall back to Evaluating (the model's status moved on, or
its version left the listed history)."""
_OUTCOME_EVENTS: dict[RunOutcome, tuple[str, str]] = {
    "Failed": ("Warning", "RetrainFailed"),
    "Rejected": ("Warning", "RetrainRejected"),
    "AwaitingApproval": ("Normal", "RetrainAwaitingApproval"),
    "Promoted": ("Normal", "RetrainPromoted"),
    "RolledOut": ("Normal", "RetrainRolledOut"),
    "RolledBack": ("Warning", "RetrainRolledBack"),
    "Superseded": ("Normal", "RetrainSuperseded"),
}


@dataclass(frozen=True)
class CreateRun:
    """Create this TrainingRun (its name is its de-duplication key)."""

    manifest: dict[str, Any]


@dataclass(frozen=True)
class RunFacts:
    """A TrainingRun carrying the policy's label, as the controller read it."""

    name: str
    trigger: Trigger
    trigger_id: str
    created: datetime
    phase: str | None = None
    version: int | None = None
    completed: datetime | None = None
    failure: str | None = None
    tick: datetime | None = None
    """The schedule tick it was created for (from its edgeml.io/schedule-tick annotation)."""


@dataclass(frozen=True)
class VersionFacts:
    """What the EdgeModel's status says of one version."""

    promotion: str | None = None
    """Promoted or Rejected, as recorded on the registered version."""
    message: str = ""
    awaiting_approval: bool = False


@dataclass(frozen=True)
class ModelFacts:
    """The EdgeModel, as far as retraining needs it."""

    champion: int | None = None
    versions: Mapping[int, VersionFacts] = field(default_factory=dict)
    latest: int | None = None
    """The newest registered version."""

    @staticmethod
    def from_object(model: Mapping[str, Any] | None) -> ModelFacts:
        """From the EdgeModel object (None when it does not exist)."""
        status = (model or {}).get("status") or {}
        candidate = status.get("candidate") or {}
        versions: dict[int, VersionFacts] = {}
        for v in status.get("versions") or []:
            number = v.get("version")
            if not isinstance(number, int):
                continue
            awaiting = candidate.get("version") == number and (
                candidate.get("outcome") == "AwaitingApproval"
            )
            message = v.get("promotionMessage") or (
                candidate.get("message", "") if candidate.get("version") == number else ""
            )
            versions[number] = VersionFacts(v.get("promotion"), message, awaiting)
        champion = (status.get("champion") or {}).get("version")
        latest = status.get("latestVersion")
        return ModelFacts(
            champion if isinstance(champion, int) else None,
            versions,
            latest if isinstance(latest, int) else None,
        )


@dataclass(frozen=True)
class DeploymentFacts:
    """The EdgeDeployment, as far as retraining needs it."""

    name: str = ""
    pinned: int | None = None
    """spec.modelRef.version, when it pins one (a new champion never rolls out there)."""
    phase: str | None = None
    target: int | None = None
    stable: int | None = None
    rolled_back: tuple[int, ...] = ()
    reason: str = ""

    @staticmethod
    def from_object(deployment: Mapping[str, Any] | None) -> DeploymentFacts:
        """From the EdgeDeployment object."""
        body = deployment or {}
        ref = (body.get("spec") or {}).get("modelRef") or {}
        status = body.get("status") or {}
        return DeploymentFacts(
            name=(body.get("metadata") or {}).get("name", ""),
            pinned=ref.get("version") if isinstance(ref.get("version"), int) else None,
            phase=status.get("phase"),
            target=(status.get("target") or {}).get("version"),
            stable=(status.get("stable") or {}).get("version"),
            rolled_back=tuple(
                v for v in status.get("rejectedVersions") or [] if isinstance(v, int)
            ),
            reason=(status.get("rollout") or {}).get("reason", "") or status.get("message") or "",
        )


@dataclass(frozen=True)
class PolicyFacts:
    """The policy itself: identity, spec, annotations, and its drift decision."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    created: datetime | None
    annotations: Mapping[str, str]
    spec: DriftPolicySpec
    model: str
    """The EdgeModel its deployment serves."""
    drifted: bool = False
    episode: Episode | None = None
    data: ChangeFacts | None = None
    """The NewData comparison (plans.triggers), when the policy watches its data."""
    code: ChangeFacts | None = None
    """The CodeChange comparison, when the policy opted in."""


@dataclass(frozen=True)
class RetrainPlan:
    """The governor's decision for one reconcile."""

    status: RetrainingStatus
    records: list[TriggeredRun]
    condition: ConditionSpec | None
    events: list[Event] = field(default_factory=list)
    create: dict[str, Any] | None = None
    """The TrainingRun to create now."""
    last_retrain: datetime | None = None
    requeue_at: datetime | None = None
    data_baseline: str | None = None
    """The data version NewData no longer retrains for (retrained for, or first seen)."""
    code_baseline: str | None = None
    """The template digest CodeChange no longer retrains for."""


@dataclass(frozen=True)
class _Want:
    trigger: Trigger
    key: tuple[str, ...]
    reason: str
    tick: datetime | None = None
    change: str | None = None
    """The data version or template digest this run is for (NewData, CodeChange)."""


def _change_want(
    uid: str, trigger: Trigger, facts: ChangeFacts | None
) -> tuple[_Want | None, str | None]:
    """A NewData/CodeChange run wanted now, and the baseline as it stands: a value that is
    the champion's, or the first one seen when the champion records none, asks for
    nothing and becomes the baseline."""
    if facts is None:
        return None, None
    if facts.current == facts.champion or (facts.champion is None and facts.baseline is None):
        return None, facts.current
    if facts.current == facts.baseline:
        return None, facts.baseline
    key = (uid, trigger, facts.current)
    return _Want(trigger, key, facts.reason[:1000], change=facts.current), facts.baseline


def outcome_of(
    run: RunFacts, model: ModelFacts, deployment: DeploymentFacts
) -> tuple[RunOutcome, str]:
    """What became of one run: trained, decided, rolled out or back, and why."""
    if run.phase == "Failed":
        return "Failed", run.failure or "the TrainingRun failed"
    if run.phase != "Succeeded":
        return "Training", f"TrainingRun {run.name} is {(run.phase or 'pending').lower()}"
    v = run.version
    if v is None:
        return "Evaluating", f"TrainingRun {run.name} succeeded; its version is not known yet"
    facts = model.versions.get(v, VersionFacts())
    if v in deployment.rolled_back:
        return (
            "RolledBack",
            f"version {v} was rolled back: {deployment.reason or 'analysis failed'}",
        )
    if facts.promotion == "Rejected":
        return "Rejected", facts.message or f"version {v} failed the promotion gates"
    if facts.promotion == "Promoted" or model.champion == v:
        if deployment.pinned is not None:
            return "Promoted", (
                f"version {v} is champion; EdgeDeployment {deployment.name} pins version "
                f"{deployment.pinned}, so it is not rolled out there"
            )
        if model.champion != v:
            return "Promoted", f"version {v} was champion, and has been succeeded"
        if deployment.stable == v and deployment.target == v and deployment.phase == "Healthy":
            return "RolledOut", f"every node of EdgeDeployment {deployment.name} serves version {v}"
        return "RollingOut", f"EdgeDeployment {deployment.name} is rolling out version {v}"
    if facts.awaiting_approval:
        return "AwaitingApproval", facts.message or f"version {v} waits for approval"
    if model.latest is not None and v < model.latest:
        # Promotion decides the newest version only: this one never will be.
        return "Superseded", (
            f"version {model.latest} was registered before version {v} was decided; "
            f"approve it with `edgeml promote <model> --version {v}` to use it"
        )
    return "Evaluating", f"version {v} is registered; promotion has not decided yet"


def track_runs(
    old: Sequence[TriggeredRun],
    runs: Sequence[RunFacts],
    model: ModelFacts,
    deployment: DeploymentFacts,
    now: datetime,
) -> tuple[list[TriggeredRun], list[Event]]:
    """Every run's record, newest first (status keeps the first MAX_RECORDS; the governor
    counts them all), and an Event per outcome reached.

    A final outcome (Failed, Rejected, RolledOut, RolledBack) is kept as recorded, and a
    decided one never falls back to Evaluating. Runs deleted from the cluster stay listed
    until newer ones push them out."""
    before = {r.name: r for r in old}
    records: list[TriggeredRun] = []
    changed: dict[str, Event] = {}
    for run in sorted(runs, key=lambda r: (r.created, r.name), reverse=True):
        prior = before.pop(run.name, None)
        if prior is not None and prior.outcome in FINAL:
            records.append(prior)
            continue
        outcome, message = outcome_of(run, model, deployment)
        if prior is not None and prior.outcome in STICKY and outcome == "Evaluating":
            outcome, message = prior.outcome, prior.message
        decided = prior.decided if prior is not None else None
        records.append(
            TriggeredRun(
                name=run.name,
                trigger=run.trigger,
                trigger_id=run.trigger_id,
                created=run.created,
                finished=run.completed,
                decided=decided or (now if outcome in DECIDED else None),
                tick=run.tick,
                version=run.version,
                outcome=outcome,
                message=message,
            )
        )
        if (prior is None or prior.outcome != outcome) and outcome in _OUTCOME_EVENTS:
            kind, reason = _OUTCOME_EVENTS[outcome]
            what = f" (version {run.version})" if run.version is not None else ""
            changed[run.name] = Event(kind, reason, f"TrainingRun {run.name}{what}: {message}.")  # type: ignore[arg-type]
    records += before.values()  # deleted from the cluster: kept until pushed out
    records.sort(key=_newest_first, reverse=True)
    # Runs beyond the records kept have no prior to compare with: no Events for them, or
    # each reconcile would announce their outcome again.
    kept = {r.name for r in records[:MAX_RECORDS]}
    return records, [e for name, e in changed.items() if name in kept]


def _newest_first(r: TriggeredRun) -> tuple[bool, datetime]:
    return (r.created is not None, r.created or datetime.min.replace(tzinfo=UTC))


def rejections_in_a_row(records: Sequence[TriggeredRun], since: datetime | None) -> int:
    """Retrained versions in a row, newest first, that were rejected or rolled back;
    failed and undecided runs neither count nor break the row."""
    count = 0
    for r in records:
        if since is not None and (r.created is None or r.created < since):
            break
        if r.outcome in ("Rejected", "RolledBack"):
            count += 1
        elif r.outcome in ("Promoted", "RolledOut"):
            break
    return count


def failures_in_a_row(records: Sequence[TriggeredRun]) -> int:
    """Runs in a row, newest first, that failed."""
    count = 0
    for r in records:
        if r.outcome != "Failed":
            break
        count += 1
    return count


def latest_tick(schedule: str, now: datetime) -> datetime | None:
    """The newest tick of the cron at or before now (UTC)."""
    # cronsim counts back from strictly before its start: start a second later, so a
    # reconcile that wakes exactly at a tick (the loop sleeps until it) sees that tick.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    try:
        return next(CronSim(cron_fields(schedule), start, reverse=True))
    except StopIteration:
        return None


def next_tick(schedule: str, now: datetime) -> datetime | None:
    """The first tick of the cron after now (UTC)."""
    try:
        return next(CronSim(cron_fields(schedule), now.replace(microsecond=0)))
    except StopIteration:
        return None


def _fmt_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _governor(
    spec: DriftPolicySpec,
    records: Sequence[TriggeredRun],
    last_retrain: datetime | None,
    rejections: int,
    now: datetime,
) -> tuple[RetrainingState, datetime | None, str]:
    """Whether a retrain may start now; if not, why and until when."""
    retraining = spec.retraining
    if rejections >= retraining.pause_after_rejections:
        return (
            "Paused",
            None,
            (
                f"Retraining is paused: the last {rejections} retrained versions were rejected "
                "or rolled back. Resume with `edgeml retrain <model> --resume` (or the "
                f"{RESUME_ANNOTATION} annotation), or change the policy's spec."
            ),
        )
    busy = next((r for r in records if r.outcome in IN_FLIGHT), None)
    if busy is not None:
        return "Training", None, f"TrainingRun {busy.name} ({busy.trigger}): {busy.message}."
    # A scheduled run counts from its tick, not from when the operator got to it: a
    # schedule whose period equals the cooldown must not skip every other tick.
    starts = [r.tick or r.created for r in records if (r.tick or r.created) is not None]
    newest = max(starts, default=last_retrain)  # type: ignore[type-var]
    cooldown = parse_duration(spec.cooldown)
    if newest is not None and now < newest + cooldown:
        until = newest + cooldown
        return (
            "Cooldown",
            until,
            (
                f"The last retrain started at {_fmt_time(newest)}; the next may start at "
                f"{_fmt_time(until)} (cooldown {spec.cooldown})."
            ),
        )
    recent = sorted(r.created for r in records if r.created is not None and r.created > now - DAY)
    if len(recent) >= retraining.max_per_day:
        until = recent[len(recent) - retraining.max_per_day] + DAY
        return (
            "DailyLimit",
            until,
            (
                f"{len(recent)} retrains in the last 24 hours, the most maxPerDay allows; the "
                f"next may start at {_fmt_time(until)}."
            ),
        )
    failed = failures_in_a_row(records)
    if failed:
        last = records[0]
        base = parse_duration(retraining.failure_backoff)
        wait = min(base * (2 ** min(failed - 1, 16)), DAY)
        until = (last.finished or last.created or now) + wait
        if now < until:
            return (
                "Backoff",
                until,
                (
                    f"{failed} retrain(s) in a row failed (last: {last.name}: {last.message}); "
                    f"the next may start at {_fmt_time(until)}."
                ),
            )
    return "Idle", None, "A retrain may start when one is due."


def plan_retraining(
    policy: PolicyFacts,
    old: RetrainingStatus | None,
    old_records: Sequence[TriggeredRun],
    old_last_retrain: datetime | None,
    runs: Sequence[RunFacts],
    model: ModelFacts,
    deployment: DeploymentFacts,
    now: datetime,
) -> RetrainPlan:
    """The governor's status and decision, and the TrainingRun to create, if one is due."""
    spec = policy.spec
    base = old or RetrainingStatus()
    records, events = track_runs(old_records, runs, model, deployment, now)
    wants_drift = spec.action != "Alert"
    if not wants_drift and spec.schedule is None and spec.new_data is None and not spec.code_change:
        # Counters and ticks are kept: switching back resumes them (a spec change still
        # starts a new rejection count, by the generation check).
        status = base.model_copy(
            update={"state": "Disabled", "until": None,
                    "message": "Action Alert and no schedule, newData or codeChange: nothing "
                    "is retrained."}
        )  # fmt: skip
        return RetrainPlan(
            status, records[:MAX_RECORDS], None, events, last_retrain=old_last_retrain,
            data_baseline=policy.data.baseline if policy.data else None,
            code_baseline=policy.code.baseline if policy.code else None,
        )  # fmt: skip

    update: dict[str, Any] = {}
    since = base.counting_since or policy.created
    if base.counted_generation != policy.generation:
        if base.counted_generation is not None:
            since = now  # a changed spec starts a new count
        update["counted_generation"] = policy.generation
    resume = policy.annotations.get(RESUME_ANNOTATION, "").strip()
    if resume and resume != base.resumed:
        since = now
        update["resumed"] = resume
        if base.state == "Paused":
            events.append(Event("Normal", "RetrainingResumed", f"Resumed by request {resume}."))
    update["counting_since"] = since
    rejections = rejections_in_a_row(records, since)
    update["rejections_in_a_row"] = rejections

    # Paused is announced by its condition's transition (a Warning Event).
    state, until, message = _governor(spec, records, old_last_retrain, rejections, now)

    wants: list[_Want] = []
    existing = {r.trigger_id for r in records} | {r.trigger_id for r in runs}
    if (
        wants_drift
        and policy.drifted
        and policy.episode is not None
        and policy.episode.ended is None
    ):
        champion = str(model.champion) if model.champion is not None else "none"
        key: tuple[str, ...] = (policy.uid, "Drift", policy.episode.fingerprint, champion)
        wants.append(
            _Want("Drift", key, f"Drift detected: {policy.episode.message}".strip()[:1000])
        )
    tick_note = ""
    last_tick = base.last_tick
    if spec.schedule is not None:
        tick = latest_tick(spec.schedule, now)
        handled = last_tick or policy.created
        if tick is not None and (handled is None or tick > handled):
            deadline = parse_duration(spec.retraining.starting_deadline)
            if now - tick > deadline:
                last_tick = tick
                tick_note = (
                    f" The tick at {_fmt_time(tick)} was missed by more than "
                    f"startingDeadline {spec.retraining.starting_deadline} and skipped."
                )
                events.append(Event("Normal", "ScheduledRetrainSkipped", tick_note.strip()))
            else:
                key = (policy.uid, "Schedule", _fmt_time(tick))
                wants.append(
                    _Want(
                        "Schedule",
                        key,
                        f"Scheduled retrain ({spec.schedule}) for the tick at {_fmt_time(tick)}.",
                        tick,
                    )
                )
        update["next_tick"] = next_tick(spec.schedule, now)

    baselines: dict[str, str | None] = {}
    changes: tuple[tuple[Trigger, ChangeFacts | None], ...] = (
        ("NewData", policy.data),
        ("CodeChange", policy.code),
    )
    for trigger, facts in changes:
        want, baselines[trigger] = _change_want(policy.uid, trigger, facts)
        if want is not None:
            wants.append(want)

    create: dict[str, Any] | None = None
    last_retrain = old_last_retrain
    for want in wants:
        tid = trigger_id(*want.key)
        if tid in existing:
            if want.tick is not None:
                last_tick = want.tick
            if want.change is not None:
                baselines[want.trigger] = want.change  # retrained for already
            continue
        if state != "Idle" or create is not None:
            if want.tick is not None:
                last_tick = want.tick
                note = f"The tick at {_fmt_time(want.tick)} was skipped: {message}"
                tick_note += " " + note
                events.append(Event("Normal", "ScheduledRetrainSkipped", note))
            continue
        name = run_name(policy.name, want.trigger, tid)
        create = build_training_run(
            namespace=policy.namespace,
            name=name,
            model=policy.model,
            trigger=want.trigger,
            tid=tid,
            reason=want.reason,
            require_approval=spec.action != "RetrainAndDeploy",
            policy=policy.name,
            overrides=spec.retraining.overrides,
            tick=want.tick,
        )
        if want.tick is not None:
            last_tick = want.tick
        if want.change is not None:
            baselines[want.trigger] = want.change
        last_retrain = now
        approval = (
            "its version will wait for approval"
            if spec.action != "RetrainAndDeploy"
            else "its version faces the EdgeModel's promotion rules"
        )
        events.append(
            Event(
                "Normal",
                "RetrainTriggered",
                f"Created TrainingRun {name}: {want.reason} ({approval})",
            )
        )
        records.insert(
            0,
            TriggeredRun(
                name=name,
                trigger=want.trigger,
                trigger_id=tid,
                created=now,
                tick=want.tick,
                outcome="Training",
                message=f"TrainingRun {name} was created",
            ),
        )
        state, until = "Training", None
        message = f"TrainingRun {name} ({want.trigger}) was created: {want.reason}"
    update["last_tick"] = last_tick
    if deployment.pinned is not None and spec.action == "RetrainAndDeploy":
        message += (
            f" EdgeDeployment {deployment.name} pins version {deployment.pinned}: a new "
            "champion is not rolled out there (the operator never edits a spec)."
        )
    message = (message + tick_note).strip()
    status = base.model_copy(update={**update, "state": state, "until": until, "message": message})
    condition = _condition(state, message, deployment, spec)
    requeue = [t for t in (until, update.get("next_tick")) if t is not None]
    return RetrainPlan(
        status,
        records[:MAX_RECORDS],
        condition,
        events,
        create,
        last_retrain,
        requeue_at=min(requeue) if requeue else None,
        data_baseline=baselines.get("NewData"),
        code_baseline=baselines.get("CodeChange"),
    )


def retrain_episode(record: TriggeredRun, paused: bool) -> Episode:
    """A retrain as one notification: firing from its creation, resolved once the loop
    is done with it, with the outcome as its reason (and the pause, when it caused one)."""
    message = record.message + (
        "; retraining is now paused (too many rejected versions in a row)" if paused else ""
    )
    return Episode(
        fingerprint=record.trigger_id,
        started=record.created or record.decided or datetime(1970, 1, 1, tzinfo=UTC),
        ended=record.decided if record.outcome in DECIDED else None,
        reason=record.outcome,
        message=f"TrainingRun {record.name} ({record.trigger}): {message}.",
    )


_REASONS: dict[RetrainingState, str] = {
    "Idle": "Idle",
    "Training": "Training",
    "Cooldown": "Cooldown",
    "DailyLimit": "DailyLimit",
    "Backoff": "Backoff",
    "Paused": "RetrainingPaused",
    "Disabled": "AlertOnly",
}


def _condition(
    state: RetrainingState, message: str, deployment: DeploymentFacts, spec: DriftPolicySpec
) -> ConditionSpec:
    reason = _REASONS[state]
    if state == "Idle" and deployment.pinned is not None and spec.action == "RetrainAndDeploy":
        reason = "DeploymentPinned"
    return ConditionSpec(RETRAINING, "True" if state == "Training" else "False", reason, message)
