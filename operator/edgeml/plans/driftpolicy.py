"""The DriftPolicy's status: when to evaluate, what the evaluation found, what it decided.

Pure: the controller reads the world (the EdgeDeployment, its pods' window counts, each
served version's baseline) when `evaluation_due` says so, and hands it here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, overload

from pydantic import ValidationError

from edgeml.api.common import check_cron, parse_duration
from edgeml.api.driftpolicy import (
    ConceptStatus,
    DriftPolicySpec,
    DriftPolicyStatus,
    EvaluationStatus,
    FeatureDrift,
    NewDataStatus,
    WorstFeature,
    ZoneDrift,
)
from edgeml.api.driftpolicy import Streak as StreakStatus
from edgeml.api.edgedeployment import MetricsSource
from edgeml.api.edgemodel import EdgeModelSpec
from edgeml.api.events import Event
from edgeml.api.kinds import DriftPolicy
from edgeml.api.notify import Episode, Receiver
from edgeml.drift.baseline import Baseline
from edgeml.drift.decision import Streak, decide, signal_of
from edgeml.drift.evaluation import (
    ConceptSettings,
    DriftSettings,
    Evaluation,
    GroupEvaluation,
    evaluate,
    unknown_features,
)
from edgeml.drift.windows import WindowCounts
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.notifications import (
    Send,
    Target,
    alert_of,
    notified_condition,
    open_episode,
    retrain_alert_of,
    sends_due,
)
from edgeml.plans.parsing import Parsed
from edgeml.plans.retraining import (
    RETRAINING,
    CreateRun,
    DeploymentFacts,
    ModelFacts,
    PolicyFacts,
    RetrainPlan,
    RunFacts,
    plan_retraining,
    retrain_episode,
)
from edgeml.plans.triggers import (
    DATASET_READABLE,
    DataLook,
    code_change,
    data_change,
    dataset_condition,
    new_data_status,
    next_look,
    watch_problem,
    watched_dataset,
)

DRIFTED = "Drifted"
NOTIFIED = "Notified"
MIN_INTERVAL = timedelta(seconds=10)
MAX_WAIT = timedelta(days=366)
MAX_FEATURES = 20
MAX_ZONES = 50
TOP_PER_ZONE = 3
REASON_ORDER = ("DataDrift", "PredictionDrift", "ConceptDrift")


def check_drift_policy(spec: DriftPolicySpec) -> str | None:
    """What the schema cannot catch: a cron schedule that never fires, durations too long
    to wait for."""
    if spec.schedule is not None:
        problem = check_cron(spec.schedule)
        if problem is not None:
            return f"spec.schedule: {problem}"
    for where, text in (
        ("spec.cooldown", spec.cooldown),
        ("spec.retraining.startingDeadline", spec.retraining.starting_deadline),
    ):
        try:
            too_long = parse_duration(text) > MAX_WAIT
        except ValueError as err:
            return f"{where}: {err}"
        if too_long:
            return f"{where}: {text} is longer than a year"
    return None


def window_of(spec: DriftPolicySpec) -> timedelta:
    """The span of live data each evaluation compares."""
    return parse_duration(spec.data_drift.window if spec.data_drift else "15m")


def interval_of(spec: DriftPolicySpec) -> timedelta:
    """Time between evaluations: spec.evaluation.interval, else a fifth of the window."""
    if spec.evaluation.interval is not None:
        return parse_duration(spec.evaluation.interval)
    return max(MIN_INTERVAL, window_of(spec) / 5)


def source_of(spec: DriftPolicySpec, deployment: Mapping[str, Any] | None) -> MetricsSource:
    """Where counts are read: the policy's source, else its deployment's analysis source."""
    if spec.source is not None:
        return spec.source
    canary = ((deployment or {}).get("spec") or {}).get("strategy", {}).get("canary") or {}
    raw = (canary.get("analysis") or {}).get("source")
    return MetricsSource.model_validate(raw) if raw else MetricsSource()


def settings_of(spec: DriftPolicySpec) -> DriftSettings:
    """The evaluation's settings from the spec."""
    data, concept = spec.data_drift, spec.concept_drift
    return DriftSettings(
        method=data.method if data else "psi",
        threshold=data.threshold if data else 0.2,
        prediction_threshold=data.prediction_threshold if data else None,
        min_samples=data.min_samples if data else 0,
        features=tuple(data.features) if data and data.features is not None else None,
        data=data is not None,
        concept=(
            ConceptSettings(concept.metric, concept.minimum, concept.maximum, concept.min_samples)
            if concept
            else None
        ),
    )


def evaluation_due(parsed: Parsed[DriftPolicy, DriftPolicyStatus], now: datetime) -> bool:
    """Whether drift should be evaluated now (never yet, the spec changed, or the interval
    since the last evaluation has passed)."""
    if parsed.obj is None or (
        parsed.obj.spec.data_drift is None and not parsed.obj.spec.concept_drift
    ):
        return False
    status = parsed.status
    if status is None or status.last_evaluated is None:
        return True
    if status.observed_generation != parsed.metadata.generation:
        return True
    return now >= status.last_evaluated + interval_of(parsed.obj.spec)


@dataclass(frozen=True)
class DriftWorld:
    """What the controller read for one reconcile."""

    deployment: dict[str, Any] | None = None
    evaluated: bool = False
    """Whether the pods' windows were read (an evaluation was due)."""
    windows: Mapping[str, Mapping[str, WindowCounts]] = field(default_factory=dict)
    """groups[group][version]: the fleet ("") and each zone, summed per version."""
    pods_total: int = 0
    pods_read: int = 0
    baselines: Mapping[str, Baseline] = field(default_factory=dict)
    missing_baselines: Mapping[str, str] = field(default_factory=dict)
    """version → why its baseline could not be read."""
    source: str = "PodIP"
    source_error: str | None = None
    """Why no pod's counts could be read (Prometheus down, every pod unreachable)."""
    targets: Mapping[str, Target | str] = field(default_factory=dict)
    """Each receiver's address from its Secret, or why it cannot be used."""
    receivers: tuple[Receiver, ...] = ()
    """The receivers in effect: spec.notify, else the operator-wide ones."""
    model: dict[str, Any] | None = None
    """The EdgeModel the deployment serves (its champion and versions)."""
    runs: tuple[RunFacts, ...] = ()
    """The TrainingRuns carrying this policy's label."""
    data_look: DataLook | None = None
    """This pass's look at the watched dataset (newData), when one was due."""
    image: str = ""
    """The training image (`EDGEML_TRAINING_IMAGE`): part of the CodeChange digest."""


@overload
def _r(x: float) -> float: ...
@overload
def _r(x: None) -> None: ...
def _r(x: float | None) -> float | None:
    """A score as status keeps it: four significant digits (the decision used all)."""
    return None if x is None else float(f"{x:.4g}")


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _feature_list(features: Sequence[FeatureDrift | Any], limit: int = 3) -> str:
    return ", ".join(f"{f.name} {_fmt(f.score)}" for f in features[:limit])


def _drift_message(evaluation: Evaluation, settings: DriftSettings) -> str:
    """Which groups drifted and why, worst first, in one sentence a person can act on."""
    parts = []
    rule = f"{settings.method} > {_fmt(settings.threshold)}"
    for g in evaluation.groups:
        if g.verdict != "Drifted":
            continue
        where = "the fleet" if g.group == "" else f"zone {g.group}"
        what = []
        if "DataDrift" in g.reasons:
            what.append(f"inputs {_feature_list(g.drifted_features)} ({rule})")
        if "PredictionDrift" in g.reasons and g.prediction is not None:
            what.append(f"predictions {_fmt(g.prediction)}")
        if "ConceptDrift" in g.reasons and g.concept and g.concept.value is not None:
            what.append(f"{g.concept.metric} {_fmt(g.concept.value)} from feedback")
        parts.append(f"{where} (version {g.version}, {int(g.rows)} rows): {'; '.join(what)}")
    return "Drift in " + "; ".join(parts) + "." if parts else ""


def _reason_of(evaluation: Evaluation) -> str:
    found = {r for gs in evaluation.versions.values() for g in gs for r in g.reasons}
    return next((r for r in REASON_ORDER if r in found), "DataDrift")


def _status_of_group(g: GroupEvaluation) -> ZoneDrift:
    return ZoneDrift(
        zone=g.group,
        drifted=g.verdict == "Drifted",
        samples=int(g.rows),
        reasons=list(g.reasons),
        top=[
            FeatureDrift(name=f.name, score=_r(f.score), drifted=f.drifted, q_value=_r(f.q_value))
            for f in g.features[:TOP_PER_ZONE]
        ],
        prediction_score=_r(g.prediction),
    )


def _evaluated_fields(
    evaluation: Evaluation, world: DriftWorld, spec: DriftPolicySpec, settings: DriftSettings
) -> dict[str, Any]:
    fleet = evaluation.fleet
    features = [
        FeatureDrift(name=f.name, score=_r(f.score), drifted=f.drifted, q_value=_r(f.q_value))
        for f in (fleet.features if fleet else ())[:MAX_FEATURES]
    ]
    scores = {f.name: f.score for f in features}
    if fleet and fleet.prediction is not None:
        scores["prediction"] = _r(fleet.prediction)
    concept = None
    if fleet and fleet.concept is not None:
        c = fleet.concept
        concept = ConceptStatus(
            metric=c.metric, value=c.value, labelled=int(c.labelled), coverage=c.coverage
        )
        if c.value is not None:
            scores[c.metric] = c.value
    zones = sorted(
        (_status_of_group(g) for g in evaluation.zones), key=lambda z: (not z.drifted, z.zone)
    )[:MAX_ZONES]
    fleet_window = world.windows.get("", {})
    return {
        "features": features,
        "scores": scores,
        "worst": WorstFeature(name=features[0].name, score=features[0].score) if features else None,
        "prediction_score": _r(fleet.prediction) if fleet else None,
        "zones": zones,
        "concept": concept,
        "evaluation": EvaluationStatus(
            method=settings.method,
            threshold=settings.threshold,
            window=spec.data_drift.window if spec.data_drift else "15m",
            samples=int(sum(w.rows for w in fleet_window.values())),
            covered_seconds=min((w.covered_seconds for w in fleet_window.values()), default=None),
            pods=world.pods_read,
            pods_total=world.pods_total,
            versions=sorted(fleet_window),
            source=world.source,
        ),
    }


def plan_drift_policy(
    parsed: Parsed[DriftPolicy, DriftPolicyStatus],
    world: DriftWorld,
    *,
    now: datetime,
) -> Plan[DriftPolicyStatus]:
    """The status a DriftPolicy should have, given what the controller read."""
    old = parsed.status
    base = old or DriftPolicyStatus()
    generation = parsed.metadata.generation
    error = parsed.error or (check_drift_policy(parsed.obj.spec) if parsed.obj else None)
    model_spec = model_spec_of(world.model)
    if error is None and parsed.obj is not None and parsed.obj.spec.new_data is not None:
        error = watch_problem(watched_dataset(model_spec, parsed.obj.spec))
    update: dict[str, Any] = {}
    wanted: list[ConditionSpec] = []
    events: list[Event] = []
    requeue_at: datetime | None = None
    if error is not None or parsed.obj is None:
        phase = "Invalid"
        wanted.append(
            ConditionSpec(READY, "False", INVALID_SPEC, error or "the spec could not be read")
        )
    elif world.deployment is None:
        phase = "Pending"
        wanted.append(
            ConditionSpec(
                READY,
                "False",
                "DeploymentNotFound",
                f"EdgeDeployment {parsed.obj.spec.deployment_ref.name} does not exist in "
                f"namespace {parsed.metadata.namespace}; the policy applies when it is created.",
            )
        )
    else:
        spec = parsed.obj.spec
        settings = settings_of(spec)
        interval = interval_of(spec)
        if spec.data_drift is None and spec.concept_drift is None:
            phase = "Watching"
            wanted.append(
                ConditionSpec(READY, "True", "ScheduleOnly",
                              "The policy has no drift to detect (only retraining triggers).")
            )  # fmt: skip
        elif not world.evaluated:
            # Between evaluations: the last one's conditions stand.
            phase = (base.phase if base.last_evaluated is not None else None) or "Pending"
            if base.last_evaluated is not None:
                requeue_at = base.last_evaluated + interval
            ready = next((c for c in base.conditions if c.type == READY), None)
            if ready is None or ready.reason in (INVALID_SPEC, "DeploymentNotFound"):
                wanted.append(
                    ConditionSpec(READY, "Unknown", "AwaitingEvaluation",
                                  f"EdgeDeployment {spec.deployment_ref.name} found; the first "
                                  "evaluation reads its pods' counts.")
                )  # fmt: skip
        else:
            update["last_evaluated"] = now
            requeue_at = now + interval
            phase, conditions, more, more_events = _evaluate(parsed, world, settings, now)
            wanted += conditions
            update.update(more)
            events += more_events
    actions: tuple[Send | CreateRun, ...] = ()
    retrain: RetrainPlan | None = None
    if parsed.obj is not None and error is None and world.deployment is not None:
        watching = parsed.obj.spec.new_data is not None
        watch = new_data_status(base.new_data, world.data_look) if watching else None
        if not watching:
            update["new_data"] = None  # newData removed: no watch to report
        retrain = _retraining(parsed, world, update, watch, model_spec, now)
        if watch is not None:
            watch = watch.model_copy(update={"baseline": retrain.data_baseline})
            update["new_data"] = watch
            readable = dataset_condition(world.data_look, watch)
            if readable is not None:
                wanted.append(readable)
            look_at = next_look(parsed.obj.spec, watch)
            if look_at is not None:
                requeue_at = min(requeue_at, look_at) if requeue_at else look_at
        update["code_change_baseline"] = retrain.code_baseline
        update["retraining"] = retrain.status
        update["triggered_runs"] = retrain.records
        update["last_retrain"] = retrain.last_retrain
        if retrain.condition is not None:
            wanted.append(retrain.condition)
        events += retrain.events
        if retrain.create is not None:
            actions = (CreateRun(retrain.create),)
        if retrain.requeue_at is not None:
            requeue_at = min(requeue_at, retrain.requeue_at) if requeue_at else retrain.requeue_at
        sends, notified, retry_at = _notifications(
            parsed, world, update.get("episode", base.episode), retrain, now
        )
        actions = (*actions, *sends)
        if notified is not None:
            wanted.append(notified)
        if retry_at is not None:
            requeue_at = min(requeue_at, retry_at) if requeue_at else retry_at
    if base.last_evaluated is None and not any(c.type == DRIFTED for c in wanted):
        wanted.append(
            ConditionSpec(DRIFTED, "Unknown", "NotEvaluated", "Drift has not been evaluated yet.")
        )
    kept = apply_conditions(base.conditions, wanted, now=now, generation=generation)
    if retrain is not None and retrain.condition is None:
        kept = [c for c in kept if c.type != RETRAINING]  # retraining turned off
    if parsed.obj is not None and parsed.obj.spec.new_data is None:
        kept = [c for c in kept if c.type != DATASET_READABLE]  # no dataset watched
    status = base.model_copy(
        update={
            **update,
            "observed_generation": generation,
            "phase": phase,
            "conditions": kept,
        }
    )
    # Drifted's own Events are the episode's start and end (below), not each change of
    # its reason: a blip to TooFewSamples inside an episode is not news.
    events = transition_events(_without_drifted(old), _drop_drifted(status)) + events
    return Plan(status=status, events=events, actions=actions, requeue_at=requeue_at)


def model_spec_of(model: Mapping[str, Any] | None) -> EdgeModelSpec | None:
    """The EdgeModel's spec, or None when there is none or it cannot be read."""
    try:
        return EdgeModelSpec.model_validate((model or {}).get("spec")) if model else None
    except ValidationError:
        return None


def _retraining(
    parsed: Parsed[DriftPolicy, DriftPolicyStatus],
    world: DriftWorld,
    update: Mapping[str, Any],
    watch: NewDataStatus | None,
    model_spec: EdgeModelSpec | None,
    now: datetime,
) -> RetrainPlan:
    """The governor, over this reconcile's drift decision."""
    assert parsed.obj is not None
    base = parsed.status or DriftPolicyStatus()
    meta = parsed.metadata
    model_ref = ((world.deployment or {}).get("spec") or {}).get("modelRef") or {}
    champion = ((world.model or {}).get("status") or {}).get("champion")
    policy = PolicyFacts(
        namespace=meta.namespace or "",
        name=meta.name,
        uid=meta.uid or "",
        generation=meta.generation,
        created=meta.creation_timestamp,
        annotations=meta.annotations,
        spec=parsed.obj.spec,
        model=str(model_ref.get("name") or ""),
        # The persisted episode only: one opened in this pass has a fingerprint that a
        # lost status write would change, and a second run would follow for one reason.
        drifted=bool(base.drifted) and bool(update.get("drifted", base.drifted)),
        episode=base.episode,
        data=data_change(watch, champion) if parsed.obj.spec.new_data else None,
        code=code_change(
            model_spec, parsed.obj.spec, world.image, champion, base.code_change_baseline
        ),
    )
    return plan_retraining(
        policy,
        base.retraining,
        base.triggered_runs,
        base.last_retrain,
        world.runs,
        ModelFacts.from_object(world.model),
        DeploymentFacts.from_object(world.deployment),
        now,
    )


def _notifications(
    parsed: Parsed[DriftPolicy, DriftPolicyStatus],
    world: DriftWorld,
    episode: Episode | None,
    retrain: RetrainPlan,
    now: datetime,
) -> tuple[tuple[Send, ...], ConditionSpec | None, datetime | None]:
    """The messages owed now (the drift episode's, and the newest retrain's), the Notified
    condition, and when the earliest backoff ends."""
    assert parsed.obj is not None
    spec = parsed.obj.spec
    base = parsed.status or DriftPolicyStatus()
    namespace, name = parsed.metadata.namespace or "", parsed.metadata.name
    conditions = [
        c
        for records in (base.notifications, base.retrain_notifications)
        if (c := notified_condition(world.receivers, records, world.targets)) is not None
    ]
    # The worse of the two channels: a receiver failing for either is news.
    condition = next(
        (c for c in conditions if c[0] == "False"), conditions[0] if conditions else None
    )
    notified = ConditionSpec(NOTIFIED, *condition) if condition else None
    if not world.receivers:
        return (), notified, None
    sends: tuple[Send, ...] = ()
    waits: list[datetime] = []
    if episode is not None:
        alert = alert_of(episode, namespace, name, spec.deployment_ref.name)
        owed, retry_at = sends_due(alert, world.receivers, base.notifications, world.targets, now)
        sends += owed
        waits += [retry_at] if retry_at else []
    newest = retrain.records[0] if retrain.records else None
    if newest is not None:
        paused = retrain.status.state == "Paused" and newest.outcome in ("Rejected", "RolledBack")
        alert = retrain_alert_of(
            retrain_episode(newest, paused), namespace, name, spec.deployment_ref.name,
            newest.name, newest.trigger,
        )  # fmt: skip
        owed, retry_at = sends_due(
            alert, world.receivers, base.retrain_notifications, world.targets, now
        )
        sends += owed
        waits += [retry_at] if retry_at else []
    return sends, notified, min(waits, default=None)


def _drop_drifted(status: DriftPolicyStatus) -> DriftPolicyStatus:
    return status.model_copy(
        update={"conditions": [c for c in status.conditions if c.type != DRIFTED]}
    )


def _without_drifted(status: DriftPolicyStatus | None) -> DriftPolicyStatus | None:
    return None if status is None else _drop_drifted(status)


def _evaluate(
    parsed: Parsed[DriftPolicy, DriftPolicyStatus],
    world: DriftWorld,
    settings: DriftSettings,
    now: datetime,
) -> tuple[str, list[ConditionSpec], dict[str, Any], list[Event]]:
    """Phase, conditions, status fields and Events of one evaluation."""
    assert parsed.obj is not None
    spec = parsed.obj.spec
    base = parsed.status or DriftPolicyStatus()
    name = spec.deployment_ref.name
    window = spec.data_drift.window if spec.data_drift else "15m"
    every = f"every {_duration_text(interval_of(spec))} over the last {window}"
    conditions: list[ConditionSpec] = []
    served = sorted({v for group in world.windows.values() for v in group})
    if world.source_error is not None:
        msg = f"The pods' counts could not be read ({world.source}): {world.source_error}"
        conditions += [
            ConditionSpec(READY, "False", "SourceUnavailable", msg),
            ConditionSpec(DRIFTED, "Unknown", "SourceUnavailable", msg),
        ]
        return "Degraded", conditions, {}, []
    if not served:
        msg = (
            f"No pod of EdgeDeployment {name} reported counts yet "
            f"({world.pods_read} of {world.pods_total} pods read)."
        )
        conditions += [
            ConditionSpec(READY, "False", "NoServingPods", msg),
            ConditionSpec(DRIFTED, "Unknown", "TooFewSamples", msg),
        ]
        return "Pending", conditions, {}, []
    usable = [v for v in served if v in world.baselines]
    if not usable:
        why = "; ".join(
            f"version {v}: {world.missing_baselines.get(v, 'no baseline')}" for v in served
        )
        msg = f"No served version has a drift baseline to compare with ({why})."
        conditions += [
            ConditionSpec(READY, "False", "BaselineMissing", msg),
            ConditionSpec(DRIFTED, "Unknown", "BaselineMissing", msg),
        ]
        return "Degraded", conditions, {}, []
    unknown = sorted({u for v in usable for u in unknown_features(settings, world.baselines[v])})
    if unknown:
        known = sorted(world.baselines[usable[0]].features)
        msg = (
            f"spec.dataDrift.features names {', '.join(unknown)}, which version "
            f"{usable[0]} does not have (its inputs: {', '.join(known[:20])})."
        )
        conditions += [
            ConditionSpec(READY, "False", INVALID_SPEC, msg),
            ConditionSpec(DRIFTED, "Unknown", "NotEvaluated", msg),
        ]
        return "Invalid", conditions, {}, []
    evaluation = evaluate(world.baselines, world.windows, settings)
    fields = _evaluated_fields(evaluation, world, spec, settings)
    signal = signal_of(evaluation, settings, spec.evaluation.hysteresis)
    previous = base.drifted
    drifted, streak = decide(
        previous,
        Streak(base.streak.drifting, base.streak.clear),
        signal,
        spec.evaluation.consecutive,
    )
    fields["streak"] = StreakStatus(drifting=streak.drifting, clear=streak.clear)
    fields["drifted"] = drifted
    missing = [v for v in served if v not in world.baselines]
    note = (
        f" Versions without a baseline are not evaluated: {', '.join(missing)}." if missing else ""
    )
    read = f"{world.pods_read} of {world.pods_total} pods ({world.source})"
    conditions.append(
        ConditionSpec(
            READY, "True", "Evaluating", f"Drift is evaluated {every}, from {read}.{note}"
        )
    )
    events: list[Event] = []
    fleet = evaluation.fleet
    samples = int(fleet.rows) if fleet else 0
    if signal == "unknown":
        parts = []
        if settings.data:
            parts.append(f"{samples} rows, {settings.min_samples} needed to score the inputs")
        if settings.concept is not None:
            labelled = int(fleet.concept.labelled) if fleet and fleet.concept else 0
            parts.append(
                f"{labelled} feedback labels, {settings.concept.min_samples} needed to score "
                f"{settings.concept.metric}"
            )
        conditions.append(
            ConditionSpec(
                DRIFTED,
                "Unknown",
                "TooFewSamples",
                f"Too few samples in the last {window}: {'; '.join(parts)}"
                + (" (an episode in progress stays open)." if drifted else "."),
            )
        )
        fields.pop("drifted")
        return base.phase or "Watching", conditions, fields, []
    message = _drift_message(evaluation, settings)
    if drifted:
        reason = _reason_of(evaluation) if signal == "drift" else _last_reason(base)
        conditions.append(
            ConditionSpec(
                DRIFTED,
                "True",
                reason or "DataDrift",
                message or f"Drift is fading but not yet below the margin: {_summary(fields)}.",
            )
        )
        if not previous:
            fields["drifted_since"] = now
            fields["episode"] = open_episode(
                parsed.metadata.uid or "", now, reason or "DataDrift", message
            )
            events.append(Event("Warning", "DriftDetected", message))
            events.append(_on_deployment(parsed, world, Event("Warning", "DriftDetected", message)))
        return "Drifted", conditions, fields, events
    if signal == "drift":
        conditions.append(
            ConditionSpec(
                DRIFTED,
                "False",
                "DriftSuspected",
                f"{message[:-1]}; seen in {streak.drifting} of the "
                f"{spec.evaluation.consecutive} evaluations in a row needed.",
            )
        )
    else:
        conditions.append(
            ConditionSpec(
                DRIFTED,
                "False",
                "NoDrift",
                f"No drift over {samples} rows in the last {window}: {_summary(fields)}.",
            )
        )
    if previous:
        fields["drifted_since"] = None
        if base.episode is not None and base.episode.ended is None:
            fields["episode"] = base.episode.model_copy(update={"ended": now})
        cleared = f"Drift cleared: {_summary(fields)}."
        events.append(Event("Normal", "DriftCleared", cleared))
        events.append(_on_deployment(parsed, world, Event("Normal", "DriftCleared", cleared)))
    return "Watching", conditions, fields, events


def _last_reason(status: DriftPolicyStatus) -> str | None:
    cond = next((c for c in status.conditions if c.type == DRIFTED), None)
    return cond.reason if cond is not None and cond.status == "True" else None


def _summary(fields: Mapping[str, Any]) -> str:
    worst = fields.get("worst")
    parts = []
    if worst is not None:
        ev = fields["evaluation"]
        parts.append(f"worst feature {worst.name} {_fmt(worst.score)} ({ev.method}, "
                     f"threshold {_fmt(ev.threshold)})")  # fmt: skip
    if fields.get("prediction_score") is not None:
        parts.append(f"predictions {_fmt(fields['prediction_score'])}")
    concept = fields.get("concept")
    if concept is not None and concept.value is not None:
        parts.append(f"{concept.metric} {_fmt(concept.value)}")
    return ", ".join(parts) or "nothing scored"


def _on_deployment(
    parsed: Parsed[DriftPolicy, DriftPolicyStatus], world: DriftWorld, event: Event
) -> Event:
    """The same Event, regarding the EdgeDeployment (one channel for its lifecycle)."""
    meta = (world.deployment or {}).get("metadata") or {}
    return Event(
        event.type,
        event.reason,
        f"DriftPolicy {parsed.metadata.name}: {event.message}",
        regarding={
            "apiVersion": "edgeml.io/v1alpha1",
            "kind": "EdgeDeployment",
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", parsed.metadata.namespace or ""),
            "uid": meta.get("uid", ""),
        },
    )


def _duration_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
