"""The EdgeDeployment's status: invalid, waiting for its model, or a resolved target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edgeml.api.edgedeployment import EdgeDeploymentSpec, EdgeDeploymentStatus, VersionNodes
from edgeml.api.events import Event
from edgeml.api.kinds import EdgeDeployment
from edgeml.config import OperatorConfig
from edgeml.plans.common import Plan
from edgeml.plans.edgedeployment import (
    DEGRADED,
    PROGRESSING,
    DeploymentWorld,
    check_edge_deployment,
    plan_edge_deployment,
    resolve_target,
)
from edgeml.plans.parsing import parse
from support.objects import DELETE, edge_deployment, edge_model, merge

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
SHA = "ab" * 32


def model_with(champion: dict[str, Any] | None = None) -> dict[str, Any]:
    model = edge_model()
    if champion is not None:
        model["status"] = {"champion": champion}
    return model


CHAMPION_MODEL = model_with({"version": 3, "sha256": SHA})


def body_of(
    status: dict[str, Any] | None = None, generation: int | None = 1, **spec: Any
) -> dict[str, Any]:
    body = edge_deployment(**spec)
    body["metadata"].update(namespace="ml")
    if generation is not None:
        body["metadata"]["generation"] = generation
    if status is not None:
        body["status"] = status
    return body


CONFIG = OperatorConfig(mlflow_tracking_uri="http://127.0.0.1:5000")


def plan(
    body: dict[str, Any], model: dict[str, Any] | None, now: datetime = T0
) -> Plan[EdgeDeploymentStatus]:
    parsed = parse(EdgeDeployment, EdgeDeploymentStatus, body)
    return plan_edge_deployment(parsed, DeploymentWorld(model), now=now, config=CONFIG)


def conditions(status: EdgeDeploymentStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def message_of(status: EdgeDeploymentStatus, cond_type: str = "Ready") -> str:
    return next(c.message for c in status.conditions if c.type == cond_type)


def test_condition_types() -> None:
    assert (PROGRESSING, DEGRADED) == ("Progressing", "Degraded")


# --- check_edge_deployment --------------------------------------------------------------------


def spec_with_steps(*steps: dict[str, Any], interval: str | None = "15s") -> EdgeDeploymentSpec:
    canary: dict[str, Any] = {"steps": list(steps)}
    if interval is None:
        canary["analysis"] = DELETE
    else:
        canary["analysis"] = {"interval": interval}
    return EdgeDeploymentSpec.model_validate(edge_deployment(strategy={"canary": canary})["spec"])


def nodes(n: int | str) -> dict[str, Any]:
    return {"nodes": n}


def analysis(duration: str) -> dict[str, Any]:
    return {"analysis": {"duration": duration}}


PAUSE = {"pause": {}}


@pytest.mark.parametrize(
    ("steps", "interval", "problem"),
    [
        ([nodes("10%"), nodes("50%"), nodes("100%")], "15s", None),
        ([nodes("10%"), nodes("10%")], "15s", None),
        ([nodes(1), nodes(3), nodes(10)], "15s", None),
        ([nodes(5), nodes("10%"), nodes(6), nodes("20%")], "15s", None),
        ([nodes(5), nodes("50%"), nodes("10%")], "15s", "steps[2] moves 10% nodes"),
        ([nodes("50%"), nodes("10%")], "15s", "steps[1] moves 10% nodes"),
        ([nodes(3), PAUSE, nodes(2)], "15s", "steps[2] moves 2 nodes"),
        ([nodes(3), nodes("10%"), nodes(1)], "15s", "steps[2] moves 1 nodes"),
        ([nodes("10%"), analysis("15s"), nodes("100%")], "15s", None),
        ([nodes("10%"), analysis("1m"), nodes("100%")], "15s", None),
        ([nodes("10%"), analysis("10s")], "15s", "steps[1].analysis.duration (10s)"),
        ([nodes("10%"), analysis("500ms")], "1s", "steps[1].analysis.duration (500ms)"),
        ([nodes("10%"), analysis("1h")], "1h30m", "shorter than analysis.interval (1h30m)"),
        ([nodes("10%"), PAUSE, nodes("100%")], None, None),
    ],
)
def test_check_edge_deployment(
    steps: list[dict[str, Any]], interval: str | None, problem: str | None
) -> None:
    message = check_edge_deployment(spec_with_steps(*steps, interval=interval))
    if problem is None:
        assert message is None
    else:
        assert message is not None
        assert problem in message
        assert message.startswith("spec.strategy.canary.steps[")


def test_a_shrinking_wave_says_waves_only_grow() -> None:
    message = check_edge_deployment(spec_with_steps(nodes("50%"), nodes("10%")))
    assert message == (
        "spec.strategy.canary.steps[1] moves 10% nodes, fewer than an earlier step: waves only "
        "grow (nodes counts the total on the new version)"
    )


def test_a_short_analysis_says_it_would_never_measure() -> None:
    message = check_edge_deployment(spec_with_steps(nodes("10%"), analysis("5s")))
    assert message == (
        "spec.strategy.canary.steps[1].analysis.duration (5s) is shorter than "
        "analysis.interval (15s), so it would never measure"
    )


def test_no_canary_needs_no_check() -> None:
    spec = EdgeDeploymentSpec.model_validate(edge_deployment(strategy={})["spec"])
    assert spec.strategy.canary is None
    assert check_edge_deployment(spec) is None


# --- resolve_target ----------------------------------------------------------------------------


def spec_ref(**ref: Any) -> EdgeDeploymentSpec:
    return EdgeDeploymentSpec.model_validate(edge_deployment(modelRef=ref)["spec"])


@pytest.mark.parametrize(
    ("ref", "model", "target", "why"),
    [
        (
            {"alias": DELETE, "version": 4},
            CHAMPION_MODEL,
            VersionNodes(version=4),
            "version 4 is pinned",
        ),
        (
            {"alias": DELETE, "version": 4},
            model_with(),
            VersionNodes(version=4),
            "version 4 is pinned",
        ),
        (
            {"name": "vibration"},
            CHAMPION_MODEL,
            VersionNodes(version=3, sha256=SHA),
            "alias champion is version 3",
        ),
        (
            {"name": "vibration"},
            model_with({"version": 7}),
            VersionNodes(version=7),
            "alias champion is version 7",
        ),
        (
            {"name": "vibration"},
            model_with(),
            None,
            "EdgeModel vibration has no champion yet; the rollout starts when one is promoted.",
        ),
        (
            {"name": "vibration"},
            {**model_with(), "status": None},
            None,
            "EdgeModel vibration has no champion yet; the rollout starts when one is promoted.",
        ),
        (
            {"name": "vibration"},
            model_with({}),
            None,
            "EdgeModel vibration has no champion yet; the rollout starts when one is promoted.",
        ),
        (
            {"alias": "canary"},
            CHAMPION_MODEL,
            None,
            "alias canary is not known to EdgeModel vibration",
        ),
    ],
)
def test_resolve_target(
    ref: dict[str, Any], model: dict[str, Any], target: VersionNodes | None, why: str
) -> None:
    assert resolve_target(spec_ref(**ref), model) == (target, why)


# --- plan_edge_deployment -----------------------------------------------------------------------

TARGET_MESSAGE = "Target is version 3 (alias champion is version 3); waiting for the rollout."
NOT_FOUND = (
    "EdgeModel vibration does not exist in namespace ml; the deployment starts when it is created."
)
NO_CHAMPION = "EdgeModel vibration has no champion yet; the rollout starts when one is promoted."
SHRINKING = {"strategy": {"canary": {"steps": [nodes("50%"), nodes("10%")]}}}
BAD_PORT = {"serving": {"port": 80}}

SCENARIOS: list[tuple[str, dict[str, Any], dict[str, Any] | None, tuple[Any, ...]]] = [
    # id, spec changes, model, (phase, Ready, Progressing, target, events)
    (
        "model-missing",
        {},
        None,
        (
            "Pending",
            ("False", "ModelNotFound"),
            ("False", "ModelNotFound"),
            None,
            [Event("Warning", "ModelNotFound", NOT_FOUND)],
        ),
    ),
    (
        "no-champion",
        {},
        model_with(),
        (
            "Pending",
            ("False", "NoTargetVersion"),
            ("False", "NoTargetVersion"),
            None,
            [Event("Normal", "NoTargetVersion", NO_CHAMPION)],
        ),
    ),
    (
        "champion",
        {},
        CHAMPION_MODEL,
        (
            "Pending",
            ("False", "TargetResolved"),
            ("True", "TargetResolved"),
            VersionNodes(version=3, sha256=SHA),
            [Event("Normal", "TargetResolved", TARGET_MESSAGE)],
        ),
    ),
    (
        "pinned",
        {"modelRef": {"alias": DELETE, "version": 2}},
        {**model_with(), "status": {"versions": [{"version": 2, "sha256": SHA}]}},
        (
            "Pending",
            ("False", "TargetResolved"),
            ("True", "TargetResolved"),
            VersionNodes(version=2, sha256=SHA),
            ["TargetResolved"],
        ),
    ),
    (
        "pinned-before-the-model-lists-it",
        {"modelRef": {"alias": DELETE, "version": 2}},
        model_with(),
        (
            "Pending",
            ("False", "TargetUnverified"),
            ("False", "TargetUnverified"),
            VersionNodes(version=2),
            ["TargetUnverified"],
        ),
    ),
    (
        "invalid-schema",
        BAD_PORT,
        CHAMPION_MODEL,
        ("Invalid", ("False", "InvalidSpec"), ("False", "InvalidSpec"), None, ["InvalidSpec"]),
    ),
    (
        "invalid-waves",
        SHRINKING,
        CHAMPION_MODEL,
        ("Invalid", ("False", "InvalidSpec"), ("False", "InvalidSpec"), None, ["InvalidSpec"]),
    ),
    (
        "invalid-model-missing",
        BAD_PORT,
        None,
        ("Invalid", ("False", "InvalidSpec"), ("False", "InvalidSpec"), None, ["InvalidSpec"]),
    ),
]
IDS = [s[0] for s in SCENARIOS]


@pytest.mark.parametrize(("name", "spec", "model", "expected"), SCENARIOS, ids=IDS)
def test_plan_edge_deployment(
    name: str, spec: dict[str, Any], model: dict[str, Any] | None, expected: tuple[Any, ...]
) -> None:
    phase, ready, progressing, target, events = expected
    result = plan(body_of(**spec), model)
    assert result.status.phase == phase
    assert conditions(result.status) == {
        "Degraded": ("False", "AsExpected"),
        "Progressing": progressing,
        "Ready": ready,
    }
    assert result.status.target == target
    if events and isinstance(events[0], Event):
        assert result.events == events
    else:
        assert [e.reason for e in result.events] == events
    warnings = [e for e in result.events if e.type == "Warning"]
    assert bool(warnings) == (ready[1] in ("InvalidSpec", "ModelNotFound"))
    assert result.objects == []


@pytest.mark.parametrize(("name", "spec", "model", "expected"), SCENARIOS, ids=IDS)
def test_ready_and_progressing_tell_the_same_story(
    name: str, spec: dict[str, Any], model: dict[str, Any] | None, expected: tuple[Any, ...]
) -> None:
    status = plan(body_of(**spec), model).status
    assert message_of(status, "Ready") == message_of(status, "Progressing")
    assert message_of(status, "Degraded") == "No node is failing."


@pytest.mark.parametrize(("name", "spec", "model", "expected"), SCENARIOS, ids=IDS)
@pytest.mark.parametrize("generation", [None, 1, 9])
def test_observed_generation_on_status_and_conditions(
    name: str,
    spec: dict[str, Any],
    model: dict[str, Any] | None,
    expected: tuple[Any, ...],
    generation: int | None,
) -> None:
    status = plan(body_of(generation=generation, **spec), model).status
    assert status.observed_generation == generation
    assert [c.observed_generation for c in status.conditions] == [generation] * 3


@pytest.mark.parametrize(("name", "spec", "model", "expected"), SCENARIOS, ids=IDS)
def test_planning_again_changes_nothing_and_posts_nothing(
    name: str, spec: dict[str, Any], model: dict[str, Any] | None, expected: tuple[Any, ...]
) -> None:
    first = plan(body_of(**spec), model)
    second = plan(body_of(first.status.to_json(), **spec), model, now=T1)
    assert second.status == first.status
    assert second.events == []


def test_the_invalid_spec_message_names_the_field() -> None:
    status = plan(body_of(**BAD_PORT), CHAMPION_MODEL).status
    assert message_of(status).startswith("spec.serving.port: Input should be greater than")
    status = plan(body_of(**SHRINKING), CHAMPION_MODEL).status
    assert message_of(status).startswith("spec.strategy.canary.steps[1] moves 10% nodes")


@pytest.mark.parametrize(("spec", "model"), [(BAD_PORT, CHAMPION_MODEL), ({}, None)])
def test_a_known_target_is_kept_while_it_cannot_be_resolved(
    spec: dict[str, Any], model: dict[str, Any] | None
) -> None:
    resolved = plan(body_of(), CHAMPION_MODEL).status.to_json()
    status = plan(body_of(resolved, **spec), model, now=T1).status
    assert status.target == VersionNodes(version=3, sha256=SHA)


def test_a_new_champion_moves_the_target_with_one_event_and_no_transition() -> None:
    first = plan(body_of(), CHAMPION_MODEL, now=T0).status
    result = plan(body_of(first.to_json()), model_with({"version": 4, "sha256": "cd"}), now=T1)
    assert result.status.target == VersionNodes(version=4, sha256="cd")
    # Same status and reason: the conditions did not transition, so nothing is news.
    assert result.events == []
    assert {c.last_transition_time for c in result.status.conditions} == {T0}


def test_the_model_appearing_with_a_champion_is_one_normal_event() -> None:
    missing = plan(body_of(), None, now=T0).status
    result = plan(body_of(missing.to_json()), CHAMPION_MODEL, now=T1)
    assert result.events == [Event("Normal", "TargetResolved", TARGET_MESSAGE)]
    times = {c.type: c.last_transition_time for c in result.status.conditions}
    assert times == {"Degraded": T0, "Progressing": T1, "Ready": T0}


def test_an_invalid_spec_is_one_warning_for_both_conditions() -> None:
    result = plan(body_of(**SHRINKING), CHAMPION_MODEL)
    assert len(result.events) == 1
    assert result.events[0].type == "Warning"


def test_what_the_plan_does_not_own_is_kept() -> None:
    old = {
        "stable": {"version": 2, "nodes": 9, "ready": 9},
        "canary": {"version": 3, "nodes": 1, "step": 1},
        "zones": [{"zone": "site-a", "nodes": 9}],
        "rejectedVersions": [1],
    }
    status = plan(body_of(old), CHAMPION_MODEL).status
    assert status.stable == VersionNodes(version=2, nodes=9, ready=9)
    assert status.canary is not None
    assert (status.canary.version, status.canary.step) == (3, 1)
    assert [z.zone for z in status.zones] == ["site-a"]
    assert status.rejected_versions == [1]


def test_a_nodes_value_that_is_not_a_count_or_percentage_is_an_invalid_spec() -> None:
    body = body_of(strategy={"canary": {"steps": [nodes("half")]}})
    status = plan(body, CHAMPION_MODEL).status
    assert conditions(status)["Ready"] == ("False", "InvalidSpec")


def test_an_absurdly_long_interval_is_an_invalid_spec() -> None:
    body = body_of(strategy={"canary": {"analysis": {"interval": "99999999999999999h"}}})
    status = plan(body, CHAMPION_MODEL).status
    assert conditions(status)["Ready"] == ("False", "InvalidSpec")


@pytest.mark.parametrize("model", [CHAMPION_MODEL, model_with()], ids=["champion", "none"])
def test_no_mlflow_address_anywhere_is_a_clear_condition(model: dict[str, Any]) -> None:
    parsed = parse(EdgeDeployment, EdgeDeploymentStatus, body_of())
    result = plan_edge_deployment(parsed, DeploymentWorld(model), now=T0, config=OperatorConfig())
    assert conditions(result.status)["Ready"] == ("False", "RegistryNotConfigured")
    assert conditions(result.status)["Progressing"] == ("False", "RegistryNotConfigured")
    message = next(c.message for c in result.status.conditions if c.type == "Ready")
    assert "spec.registry.trackingUri" in message
    assert "mlflow.trackingUri" in message
    assert result.actions == ()
    assert result.objects == []


def test_the_edge_models_own_mlflow_address_is_enough() -> None:
    with_uri = merge(CHAMPION_MODEL, {"spec": {"registry": {"trackingUri": "http://127.0.0.1:1"}}})
    parsed = parse(EdgeDeployment, EdgeDeploymentStatus, body_of())
    result = plan_edge_deployment(
        parsed, DeploymentWorld(with_uri), now=T0, config=OperatorConfig()
    )
    assert conditions(result.status)["Ready"] == ("False", "TargetResolved")


def test_a_rollout_start_names_the_retrain_that_made_its_version() -> None:
    from edgeml.plans.edgedeployment import with_lineage

    model = {"status": {"versions": [
        {"version": 4, "trigger": "Drift", "triggerId": "99e4b36345a4ff42",
         "trainingRun": "ml/vibration-drift-drift-99e4b36345"},
        {"version": 3},
    ]}}  # fmt: skip
    started = Event("Normal", "RolloutStarted", "Rolling out version 4 (stable: version 3).")
    other = Event("Normal", "WaveProgressing", "1 of 3 nodes.")
    (first, second) = with_lineage([started, other], model, 4)
    assert first.message.endswith(
        "Version 4 comes from TrainingRun ml/vibration-drift-drift-99e4b36345 "
        "(trigger Drift, id 99e4b36345a4ff42)."
    )
    assert second == other
    assert with_lineage([started], model, 3) == [started]  # no lineage: unchanged
