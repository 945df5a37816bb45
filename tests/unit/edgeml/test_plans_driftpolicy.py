"""The DriftPolicy's status: invalid, waiting for its deployment, or watching it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edgeml.api.driftpolicy import DriftPolicySpec, DriftPolicyStatus
from edgeml.api.kinds import DriftPolicy
from edgeml.plans.common import Event, Plan
from edgeml.plans.driftpolicy import DRIFTED, check_drift_policy, plan_drift_policy
from edgeml.plans.parsing import parse
from support.objects import drift_policy, edge_deployment

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
DEPLOYMENT = edge_deployment()
NOT_FOUND = (
    "EdgeDeployment vibration-edge does not exist in namespace ml; the policy applies when it "
    "is created."
)
ACCEPTED = (
    "The policy applies to EdgeDeployment vibration-edge; drift is evaluated once its pods "
    "report enough samples."
)
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
    body: dict[str, Any], deployment: dict[str, Any] | None, now: datetime = T0
) -> Plan[DriftPolicyStatus]:
    return plan_drift_policy(parse(DriftPolicy, DriftPolicyStatus, body), deployment, now=now)


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
        ("0 25 * * *", "spec.schedule: cron '0 25 * * *': hour 25 is outside 0-23"),
        ("0 0 * * 9", "spec.schedule: cron '0 0 * * 9': day of week 9 is outside 0-7"),
        ("*/0 * * * *", "spec.schedule: cron '*/0 * * * *': the minute step must be at least 1"),
        ("0 0 * foo *", "spec.schedule: cron '0 0 * foo *': 'foo' is not a valid month"),
    ],
)
def test_check_drift_policy(schedule: str | None, problem: str | None) -> None:
    spec = DriftPolicySpec.model_validate(drift_policy(schedule=schedule)["spec"])
    assert check_drift_policy(spec) == problem


# --- plan_drift_policy --------------------------------------------------------------------------

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
        (
            "Watching",
            ("True", "PolicyAccepted", ACCEPTED),
            [Event("Normal", "PolicyAccepted", ACCEPTED)],
        ),
    ),
    (
        "schedule-only",
        {"dataDrift": None, "schedule": "@daily"},
        DEPLOYMENT,
        ("Watching", ("True", "PolicyAccepted", ACCEPTED), ["PolicyAccepted"]),
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
            ("False", "InvalidSpec", "spec.schedule: cron '0 25 * * *': hour 25 is outside 0-23"),
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
def test_plan_drift_policy(
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
    warnings = {e.reason for e in result.events if e.type == "Warning"}
    assert warnings == (set() if conds["Ready"][0] == "True" else {conds["Ready"][1]})
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


def test_the_deployment_appearing_is_one_normal_event_and_a_transition() -> None:
    waiting = plan(body_of(), None, now=T0).status
    result = plan(body_of(waiting.to_json()), DEPLOYMENT, now=T1)
    assert result.events == [Event("Normal", "PolicyAccepted", ACCEPTED)]
    times = {c.type: c.last_transition_time for c in result.status.conditions}
    assert times == {"Drifted": T0, "Ready": T1}


def test_an_evaluated_policy_keeps_its_drift_condition_and_findings() -> None:
    evaluated = {
        "lastEvaluated": "2026-01-01T00:00:00Z",
        "drifted": True,
        "scores": {"rms": 0.4},
        "triggeredRuns": ["vibration-drift-1"],
        "conditions": [
            {
                "type": "Drifted",
                "status": "True",
                "reason": "DataDrift",
                "message": "rms drifted.",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    result = plan(body_of(evaluated), DEPLOYMENT, now=T1)
    assert conditions(result.status)["Drifted"] == ("True", "DataDrift", "rms drifted.")
    assert (result.status.drifted, result.status.scores) == (True, {"rms": 0.4})
    assert result.status.triggered_runs == ["vibration-drift-1"]
    assert [e.reason for e in result.events] == ["PolicyAccepted"]
