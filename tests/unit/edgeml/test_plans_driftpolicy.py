"""The DriftPolicy's status: invalid, waiting for its deployment, or watching it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edgeml.api.common import CRON_HELP
from edgeml.api.driftpolicy import DriftPolicySpec, DriftPolicyStatus
from edgeml.api.events import Event
from edgeml.api.kinds import DriftPolicy
from edgeml.drift.windows import WindowCounts
from edgeml.plans.common import Plan
from edgeml.plans.driftpolicy import (
    DRIFTED,
    DriftWorld,
    check_drift_policy,
    evaluation_due,
    interval_of,
    plan_drift_policy,
)
from edgeml.plans.parsing import parse
from edgeml.plans.triggers import DATASET_READABLE, DataLook
from support.objects import drift_policy, edge_deployment, edge_model

from .drift.support import baseline, window

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
DEPLOYMENT = edge_deployment()
NOT_FOUND = (
    "EdgeDeployment vibration-edge does not exist in namespace ml; the policy applies when it "
    "is created."
)
AWAITING = "EdgeDeployment vibration-edge found; the first evaluation reads its pods' counts."
NOT_EVALUATED = ("Unknown", "NotEvaluated", "Drift has not been evaluated yet.")


def body_of(
    status: dict[str, Any] | None = None, generation: int | None = 1, **spec: Any
) -> dict[str, Any]:
    body = drift_policy(**spec)
    body["metadata"].update(namespace="ml")
    if generation is not None:
        body["metadata"]["generation"] = generation
    if status is not None:
        body["status"] = status
    return body


def plan(
    body: dict[str, Any], world: DriftWorld | dict[str, Any] | None, now: datetime = T0
) -> Plan[DriftPolicyStatus]:
    if not isinstance(world, DriftWorld):
        world = DriftWorld(world)
    return plan_drift_policy(parse(DriftPolicy, DriftPolicyStatus, body), world, now=now)


def conditions(status: DriftPolicyStatus) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in status.conditions}


def test_drifted_is_the_condition_type() -> None:
    assert DRIFTED == "Drifted"


# --- check_drift_policy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        (None, None),
        ("0 3 * * 0", None),
        ("@weekly", None),
        ("*/30 * * * mon-fri", None),
        ("0 25 * * *", "spec.schedule: cron '0 25 * * *': bad hour"),
        ("0 0 * * 9", "spec.schedule: cron '0 0 * * 9': bad day-of-week"),
        ("*/0 * * * *", "spec.schedule: cron '*/0 * * * *': bad minute"),
        ("0 0 * foo *", "spec.schedule: cron '0 0 * foo *': bad month"),
        ("0 0 30 2 *", "spec.schedule: cron '0 0 30 2 *': bad day-of-month"),
    ],
)
def test_check_drift_policy(schedule: str | None, problem: str | None) -> None:
    spec = DriftPolicySpec.model_validate(drift_policy(schedule=schedule)["spec"])
    found = check_drift_policy(spec)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


# --- plan_drift_policy: before any evaluation ------------------------------------------------

SCENARIOS: list[tuple[str, dict[str, Any], dict[str, Any] | None, tuple[Any, ...]]] = [
    # id, spec changes, deployment, (phase, Ready, events)
    (
        "deployment-missing",
        {},
        None,
        (
            "Pending",
            ("False", "DeploymentNotFound", NOT_FOUND),
            [Event("Warning", "DeploymentNotFound", NOT_FOUND)],
        ),
    ),
    (
        "deployment-exists",
        {},
        DEPLOYMENT,
        ("Pending", ("Unknown", "AwaitingEvaluation", AWAITING), []),
    ),
    (
        "schema-invalid",
        {"action": "Page"},
        DEPLOYMENT,
        (
            "Invalid",
            (
                "False",
                "InvalidSpec",
                "spec.action: Input should be 'Alert', 'Retrain' or 'RetrainAndDeploy'",
            ),
            ["InvalidSpec"],
        ),
    ),
    (
        "cron-out-of-range",
        {"schedule": "0 25 * * *"},
        DEPLOYMENT,
        (
            "Invalid",
            ("False", "InvalidSpec", f"spec.schedule: cron '0 25 * * *': bad hour ({CRON_HELP})"),
            ["InvalidSpec"],
        ),
    ),
    (
        "invalid-and-deployment-missing",
        {"schedule": "0 25 * * *"},
        None,
        ("Invalid", None, ["InvalidSpec"]),
    ),
]
IDS = [s[0] for s in SCENARIOS]


@pytest.mark.parametrize(("name", "spec", "deployment", "expected"), SCENARIOS, ids=IDS)
def test_plan_drift_policy_before_evaluating(
    name: str, spec: dict[str, Any], deployment: dict[str, Any] | None, expected: tuple[Any, ...]
) -> None:
    phase, ready, events = expected
    result = plan(body_of(**spec), deployment)
    assert result.status.phase == phase
    conds = conditions(result.status)
    assert set(conds) == {"Drifted", "Ready"}
    if ready is not None:
        assert conds["Ready"] == ready
    assert conds["Drifted"] == NOT_EVALUATED
    if events and isinstance(events[0], Event):
        assert result.events == events
    else:
        assert [e.reason for e in result.events] == events
    assert result.objects == []
    assert result.status.drifted is None


@pytest.mark.parametrize(("name", "spec", "deployment", "expected"), SCENARIOS, ids=IDS)
@pytest.mark.parametrize("generation", [None, 1, 4])
def test_observed_generation_on_status_and_conditions(
    name: str,
    spec: dict[str, Any],
    deployment: dict[str, Any] | None,
    expected: tuple[Any, ...],
    generation: int | None,
) -> None:
    status = plan(body_of(generation=generation, **spec), deployment).status
    assert status.observed_generation == generation
    assert [c.observed_generation for c in status.conditions] == [generation] * 2


@pytest.mark.parametrize(("name", "spec", "deployment", "expected"), SCENARIOS, ids=IDS)
def test_planning_again_changes_nothing_and_posts_nothing(
    name: str, spec: dict[str, Any], deployment: dict[str, Any] | None, expected: tuple[Any, ...]
) -> None:
    first = plan(body_of(**spec), deployment)
    second = plan(body_of(first.status.to_json(), **spec), deployment, now=T1)
    assert second.status == first.status
    assert second.events == []


def test_a_retraining_policy_reports_its_governor_and_an_alerting_one_does_not() -> None:
    # At T0 (midnight) the noon tick is 12 hours old: skipped, so the governor is idle.
    status = plan(body_of(action="RetrainAndDeploy", schedule="0 12 * * *"), DEPLOYMENT).status
    state, reason, message = conditions(status)["Retraining"]
    assert (state, reason) == ("False", "Idle")
    assert "A retrain may start when one is due" in message
    assert status.retraining is not None
    assert status.retraining.next_tick is not None
    alerting = plan(body_of(), DEPLOYMENT).status
    assert "Retraining" not in conditions(alerting)
    assert alerting.retraining is not None
    assert alerting.retraining.state == "Disabled"


# --- when to evaluate ---------------------------------------------------------------------------


def test_the_interval_defaults_to_a_fifth_of_the_window() -> None:
    spec = DriftPolicySpec.model_validate(drift_policy()["spec"])
    assert interval_of(spec) == timedelta(minutes=3)
    short = DriftPolicySpec.model_validate(drift_policy(dataDrift={"window": "1m"})["spec"])
    assert interval_of(short) == timedelta(seconds=12)
    given = DriftPolicySpec.model_validate(drift_policy(evaluation={"interval": "7s"})["spec"])
    assert interval_of(given) == timedelta(seconds=7)


def test_evaluation_is_due_first_after_the_interval_and_after_a_spec_change() -> None:
    def due(status: dict[str, Any] | None, now: datetime, generation: int = 1) -> bool:
        body = body_of(status, generation=generation)
        return evaluation_due(parse(DriftPolicy, DriftPolicyStatus, body), now)

    evaluated = {"lastEvaluated": T0.isoformat(), "observedGeneration": 1}
    assert due(None, T0)
    assert not due(evaluated, T0 + timedelta(minutes=2))
    assert due(evaluated, T0 + timedelta(minutes=3))
    assert due(evaluated, T0 + timedelta(seconds=1), generation=2)


# --- evaluations ---------------------------------------------------------------------------------

BASELINES = {"1": baseline("1")}


def world(*zones: tuple[str, WindowCounts], **kw: Any) -> DriftWorld:
    groups: dict[str, dict[str, WindowCounts]] = {"": {}}
    for zone, w in zones:
        groups.setdefault(zone, {})[w.version] = w
    fleet = [w for _, w in zones]
    if fleet:
        groups[""] = {fleet[0].version: fleet[0]}
    return DriftWorld(
        DEPLOYMENT,
        True,
        groups,
        pods_total=kw.pop("pods_total", 3),
        pods_read=kw.pop("pods_read", 3),
        baselines=kw.pop("baselines", BASELINES),
        **kw,
    )


def step(
    status: DriftPolicyStatus | None, w: DriftWorld, now: datetime, **spec: Any
) -> Plan[DriftPolicyStatus]:
    return plan(body_of(status.to_json() if status else None, **spec), w, now=now)


def test_no_drift_is_reported_with_the_worst_feature_and_requeued_at_the_next_interval() -> None:
    result = step(None, world(("zone-a", window())), T0)
    status = result.status
    assert conditions(status)["Ready"][:2] == ("True", "Evaluating")
    assert conditions(status)["Drifted"][:2] == ("False", "NoDrift")
    assert status.drifted is False
    assert status.last_evaluated == T0
    assert result.requeue_at == T0 + timedelta(minutes=3)
    assert status.evaluation is not None
    assert status.evaluation.samples == 1000
    assert [z.zone for z in status.zones] == ["zone-a"]
    assert result.events == [Event("Normal", "Evaluating", conditions(status)["Ready"][2])]


def test_a_drift_episode_opens_after_two_evaluations_and_closes_after_two_with_one_event_each() -> (
    None
):
    shifted = world(("plant-2", window(shifted=("f3",))))
    calm = world(("plant-2", window()))
    t = [T0 + timedelta(minutes=3 * i) for i in range(6)]
    first = step(None, calm, t[0]).status
    suspected = step(first, shifted, t[1])
    assert conditions(suspected.status)["Drifted"][:2] == ("False", "DriftSuspected")
    assert not [e for e in suspected.events if e.reason == "DriftDetected"]
    detected = step(suspected.status, shifted, t[2])
    state, reason, message = conditions(detected.status)["Drifted"]
    assert (state, reason) == ("True", "DataDrift")
    assert "zone plant-2" in message
    assert "f3" in message
    drift_events = [e for e in detected.events if e.reason == "DriftDetected"]
    assert [e.regarding is None for e in drift_events] == [True, False]
    assert drift_events[1].regarding is not None
    assert drift_events[1].regarding["kind"] == "EdgeDeployment"
    assert detected.status.drifted_since == t[2]
    assert detected.status.phase == "Drifted"
    again = step(detected.status, shifted, t[3])
    assert [e.reason for e in again.events] == []
    fading = step(again.status, calm, t[4])
    assert fading.status.drifted is True
    assert fading.events == []
    cleared = step(fading.status, calm, t[5])
    assert cleared.status.drifted is False
    assert cleared.status.drifted_since is None
    assert [e.reason for e in cleared.events] == ["DriftCleared", "DriftCleared"]


def test_too_few_samples_inside_an_episode_neither_ends_it_nor_alerts_again() -> None:
    shifted = world(("z", window(shifted=("f3",))))
    status = step(step(None, shifted, T0).status, shifted, T1).status
    assert status.drifted is True
    quiet = step(status, world(("z", window(rows=10))), T1 + timedelta(minutes=3))
    assert quiet.status.drifted is True
    assert conditions(quiet.status)["Drifted"][:2] == ("Unknown", "TooFewSamples")
    assert "episode in progress stays open" in conditions(quiet.status)["Drifted"][2]
    back = step(quiet.status, shifted, T1 + timedelta(minutes=6))
    assert [e.reason for e in back.events if e.reason.startswith("Drift")] == []


@pytest.mark.parametrize(
    ("w", "ready", "drifted", "event"),
    [
        (
            DriftWorld(DEPLOYMENT, True, pods_total=3, source="Prometheus", source_error="refused"),
            ("False", "SourceUnavailable"),
            ("Unknown", "SourceUnavailable"),
            "Warning",
        ),
        (
            DriftWorld(DEPLOYMENT, True, pods_total=0),
            ("False", "NoServingPods"),
            ("Unknown", "TooFewSamples"),
            "Normal",
        ),
        (
            world(
                ("z", window(version="4")),
                baselines={},
                missing_baselines={"4": "run r logged none"},
            ),
            ("False", "BaselineMissing"),
            ("Unknown", "BaselineMissing"),
            "Warning",
        ),
    ],
    ids=["source-down", "no-pods", "no-baseline"],
)
def test_what_cannot_be_evaluated_is_a_condition_with_a_reason(
    w: DriftWorld, ready: tuple[str, str], drifted: tuple[str, str], event: str
) -> None:
    result = step(None, w, T0)
    conds = conditions(result.status)
    assert conds["Ready"][:2] == ready
    assert conds["Drifted"][:2] == drifted
    assert result.status.drifted is None
    assert result.status.last_evaluated == T0
    assert [(e.type, e.reason) for e in result.events] == [(event, ready[1])]


def test_unknown_features_are_an_invalid_spec_naming_them() -> None:
    result = step(None, world(("z", window())), T0, dataDrift={"features": ["f1", "rpm"]})
    state, reason, message = conditions(result.status)["Ready"]
    assert (state, reason) == ("False", "InvalidSpec")
    assert "names rpm, which version 1 does not have" in message


def test_between_evaluations_the_findings_stand() -> None:
    evaluated = step(None, world(("z", window())), T0)
    later = plan(body_of(evaluated.status.to_json()), DEPLOYMENT, now=T1 - timedelta(minutes=3))
    assert later.status == evaluated.status.model_copy(update={"observed_generation": 1})
    assert later.requeue_at == T0 + timedelta(minutes=3)
    assert later.events == []


def test_a_scheduled_retrain_is_created_and_its_receivers_told_it_started() -> None:
    from edgeml.api.notify import Receiver
    from edgeml.plans.notifications import Send, Target
    from edgeml.plans.retraining import CreateRun

    ops = Receiver.model_validate({"name": "ops", "secretRef": {"name": "hook"}})
    world = DriftWorld(
        DEPLOYMENT, receivers=(ops,), targets={"ops": Target("http://127.0.0.1:9/alerts")}
    )
    body = body_of(schedule="0 0 * * *", action="RetrainAndDeploy", dataDrift=None)
    del body["spec"]["dataDrift"]
    body["metadata"]["creationTimestamp"] = (T0 - timedelta(hours=1)).isoformat()
    result = plan(body, world)  # T0 is midnight: the tick
    (create,) = [a for a in result.actions if isinstance(a, CreateRun)]
    assert create.manifest["spec"]["trigger"] == "Schedule"
    (send,) = [a for a in result.actions if isinstance(a, Send)]
    assert send.delivery.alert.labels["alertname"] == "EdgeMLRetrain"
    assert send.delivery.alert.status == "firing"
    assert send.delivery.alert.labels["trainingrun"] == create.manifest["metadata"]["name"]
    assert result.status.triggered_runs[0].outcome == "Training"


def test_removing_new_data_drops_its_status_and_condition() -> None:
    """A policy that no longer watches its data says nothing of the last look."""
    s3 = {"uri": "s3://d/v/", "target": "label", "s3": {"endpoint": "http://127.0.0.1:9"}}
    model = edge_model(training={"dataset": s3})
    look = DataLook("s3://d/v/", T0, "dv-1", 1, "v/a.csv")
    watching = plan(
        body_of(newData={"interval": "1m"}),
        DriftWorld(DEPLOYMENT, model=model, data_look=look),
    ).status
    assert watching.new_data is not None
    assert conditions(watching)[DATASET_READABLE][1] == "Watching"
    status = watching.to_json()
    stopped = plan(body_of(status=status), DriftWorld(DEPLOYMENT, model=model), now=T1).status
    assert stopped.new_data is None
    assert DATASET_READABLE not in conditions(stopped)
