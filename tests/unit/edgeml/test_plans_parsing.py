"""Parsing an object as it arrived: the object, or its metadata, old status and why not."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edgeml.api.common import KubeModel
from edgeml.api.driftpolicy import DriftPolicyStatus
from edgeml.api.edgedeployment import EdgeDeploymentStatus
from edgeml.api.edgemodel import EdgeModelStatus
from edgeml.api.kinds import DriftPolicy, EdgeDeployment, EdgeModel, KubeObject, TrainingRun
from edgeml.api.trainingrun import TrainingRunStatus
from edgeml.plans.parsing import MAX_ERRORS, describe_errors, parse
from support.objects import DELETE, drift_policy, edge_deployment, edge_model, training_run

STATUS_OF: dict[type[KubeObject[Any, Any]], type[Any]] = {
    EdgeModel: EdgeModelStatus,
    TrainingRun: TrainingRunStatus,
    EdgeDeployment: EdgeDeploymentStatus,
    DriftPolicy: DriftPolicyStatus,
}
OLD_STATUS = {
    "observedGeneration": 1,
    "phase": "Pending",
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Queued",
            "message": "m",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ],
}


def with_meta(body: dict[str, Any], status: Any = None, generation: int = 2) -> dict[str, Any]:
    body = {**body, "metadata": {**body["metadata"], "namespace": "ml", "generation": generation}}
    if status is not None:
        body["status"] = status
    return body


VALID = [
    (EdgeModel, edge_model()),
    (TrainingRun, training_run()),
    (EdgeDeployment, edge_deployment()),
    (DriftPolicy, drift_policy()),
]
KIND_IDS = ["EdgeModel", "TrainingRun", "EdgeDeployment", "DriftPolicy"]


@pytest.mark.parametrize(("model", "body"), VALID, ids=KIND_IDS)
def test_a_valid_object_parses_whole(
    model: type[KubeObject[Any, Any]], body: dict[str, Any]
) -> None:
    parsed = parse(model, STATUS_OF[model], with_meta(body, OLD_STATUS))
    assert parsed.error is None
    assert isinstance(parsed.obj, model)
    assert parsed.obj.metadata == parsed.metadata
    assert (parsed.metadata.name, parsed.metadata.namespace, parsed.metadata.generation) == (
        body["metadata"]["name"],
        "ml",
        2,
    )
    assert isinstance(parsed.status, STATUS_OF[model])
    assert parsed.obj.status == parsed.status
    assert parsed.status.phase == "Pending"


@pytest.mark.parametrize(("model", "body"), VALID, ids=KIND_IDS)
@pytest.mark.parametrize("status", [None, {}])
def test_no_status_or_an_empty_one_parses_as_none(
    model: type[KubeObject[Any, Any]], body: dict[str, Any], status: Any
) -> None:
    parsed = parse(model, STATUS_OF[model], with_meta(body, status))
    assert parsed.status is None
    assert parsed.obj is not None
    assert parsed.obj.status is None


@pytest.mark.parametrize(("model", "body"), VALID, ids=KIND_IDS)
def test_an_unreadable_status_is_dropped_to_be_recomputed(
    model: type[KubeObject[Any, Any]], body: dict[str, Any]
) -> None:
    bad = {"conditions": [{"type": "Ready", "status": "Maybe"}]}
    parsed = parse(model, STATUS_OF[model], with_meta(body, bad))
    assert parsed.status is None
    assert parsed.obj is not None
    assert parsed.obj.status is None
    assert parsed.error is None


@pytest.mark.parametrize(
    ("model", "body", "error"),
    [
        (
            EdgeModel,
            edge_model(training={"dataset": {"uri": "ftp://x"}}),
            "spec.training.dataset.uri: String should match pattern",
        ),
        (
            EdgeModel,
            edge_model(training={"estimator": {"class": "RandomForest"}}),
            "spec.training.estimator.class: String should match pattern",
        ),
        (EdgeModel, edge_model(training=DELETE), "spec.training: Field required"),
        (
            EdgeModel,
            edge_model(promotion={"gates": [{"metric": "auc"}]}),
            "spec.promotion.gates.0.metric: Input should be",
        ),
        (TrainingRun, training_run(trigger="Cron"), "spec.trigger: Input should be 'Manual'"),
        (TrainingRun, training_run(modelRef=DELETE), "spec.modelRef: Field required"),
        (
            EdgeDeployment,
            edge_deployment(nodeSelector={}),
            "spec.nodeSelector: Dictionary should have at least 1 item",
        ),
        (
            EdgeDeployment,
            edge_deployment(serving={"port": 80}),
            "spec.serving.port: Input should be greater than or equal to 1024",
        ),
        (
            EdgeDeployment,
            edge_deployment(strategy={"canary": {"progressDeadline": "ten minutes"}}),
            "spec.strategy.canary.progressDeadline: String should match pattern",
        ),
        (
            DriftPolicy,
            drift_policy(action="Page"),
            "spec.action: Input should be 'Alert', 'Retrain' or 'RetrainAndDeploy'",
        ),
        (DriftPolicy, drift_policy(deploymentRef=DELETE), "spec.deploymentRef: Field required"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_an_invalid_spec_keeps_metadata_and_old_status_and_says_why(
    model: type[KubeObject[Any, Any]], body: dict[str, Any], error: str
) -> None:
    parsed = parse(model, STATUS_OF[model], with_meta(body, OLD_STATUS))
    assert parsed.obj is None
    assert parsed.error is not None
    assert parsed.error.startswith(error), parsed.error
    assert parsed.metadata.name == body["metadata"]["name"]
    assert parsed.metadata.generation == 2
    assert parsed.status == STATUS_OF[model].model_validate(OLD_STATUS)


@pytest.mark.parametrize("spec", [None, {}], ids=["null", "empty"])
def test_a_missing_spec_is_an_invalid_spec(spec: Any) -> None:
    body = with_meta(training_run())
    body["spec"] = spec
    parsed = parse(TrainingRun, TrainingRunStatus, body)
    assert parsed.obj is None
    assert parsed.error == "spec.modelRef: Field required"


def test_an_invalid_spec_with_an_unreadable_status_keeps_neither() -> None:
    parsed = parse(
        TrainingRun, TrainingRunStatus, with_meta(training_run(trigger="Cron"), {"phase": 3})
    )
    assert (parsed.obj, parsed.status) == (None, None)
    assert parsed.error is not None


def test_an_error_names_only_fields_a_person_can_find() -> None:
    body = edge_deployment(strategy={"canary": {"steps": [{"nodes": [1]}]}})
    error = parse(EdgeDeployment, EdgeDeploymentStatus, with_meta(body)).error
    assert error is not None
    assert error.startswith("spec.strategy.canary.steps.0.nodes: ")
    assert ".int:" not in error
    assert ".str:" not in error


# --- describe_errors ---------------------------------------------------------------------------


class Many(KubeModel):
    a: int
    b: int
    c: int
    d: int
    e: int


class Nested(KubeModel):
    inner_list: list[Many]


def errors_of(model: type[KubeModel], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return info.value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": 1, "b": 2, "c": 3, "d": 4}, "spec.e: Field required"),
        (
            {"a": 1, "b": 2, "c": 3},
            "spec.d: Field required; spec.e: Field required",
        ),
        (
            {"a": "x", "b": 2, "c": 3, "d": 4, "e": 5},
            "spec.a: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"b": 2},
            "spec.a: Field required; spec.c: Field required; spec.d: Field required; and 1 more",
        ),
        (
            {},
            "spec.a: Field required; spec.b: Field required; spec.c: Field required; and 2 more",
        ),
    ],
)
def test_describe_errors_lists_at_most_three_then_counts(
    data: dict[str, Any], expected: str
) -> None:
    assert MAX_ERRORS == 3
    assert describe_errors(errors_of(Many, data)) == expected


def test_describe_errors_paths_use_wire_names_and_list_indices() -> None:
    err = errors_of(Nested, {"innerList": [{"a": 1, "b": 2, "c": 3, "d": 4}]})
    assert describe_errors(err) == "spec.innerList.0.e: Field required"


@pytest.mark.parametrize(
    ("prefix", "start"), [("spec", "spec.e:"), ("status", "status.e:"), ("", "e:")]
)
def test_describe_errors_takes_a_prefix(prefix: str, start: str) -> None:
    err = errors_of(Many, {"a": 1, "b": 2, "c": 3, "d": 4})
    assert describe_errors(err, prefix).startswith(start)


def test_describe_errors_of_a_root_error_names_the_prefix() -> None:
    assert describe_errors(errors_of(Many, "not a map")).startswith("spec: Input should be")
