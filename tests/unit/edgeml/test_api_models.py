"""The four kinds' models read the samples and the test builders, and round-trip."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgeml.api.common import Condition
from edgeml.api.driftpolicy import DriftPolicyStatus, RetrainingStatus, TriggeredRun
from edgeml.api.edgedeployment import (
    AnalysisResult,
    CanaryStatus,
    EdgeDeploymentStatus,
    VersionNodes,
    ZoneSummary,
)
from edgeml.api.edgemodel import Champion, EdgeModelStatus, ModelVersion
from edgeml.api.kinds import (
    KINDS,
    DriftPolicy,
    EdgeDeployment,
    EdgeModel,
    KubeObject,
    TrainingRun,
)
from edgeml.api.trainingrun import TrainingRunStatus
from support.objects import BUILDERS, DELETE, drift_policy, edge_deployment, edge_model

REPO = Path(__file__).resolve().parents[3]
SAMPLES = sorted(
    p for p in (REPO / "manifests/samples").glob("*.yaml") if p.stem != "kustomization"
)

# No deadline: these run on shared, busy machines; 50 examples keep the suite quick.
PROPERTY = settings(max_examples=50, deadline=None)
MODELS: dict[str, type[KubeObject[Any, Any]]] = {info.kind: info.model for info in KINDS}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def assert_contains(whole: Any, part: Any, path: str = "") -> None:
    """Every key and value of `part` is in `whole` (lists element by element)."""
    if isinstance(part, dict):
        assert isinstance(whole, dict), f"{path}: {whole!r} is not a map"
        for key, value in part.items():
            assert key in whole, f"{path}.{key} was dropped (misspelt, or not in the model?)"
            assert_contains(whole[key], value, f"{path}.{key}")
    elif isinstance(part, list):
        assert isinstance(whole, list), f"{path}: {whole!r} is not a list"
        assert len(whole) == len(part), f"{path}: {len(whole)} items, not {len(part)}"
        for index, (w, p) in enumerate(zip(whole, part, strict=True)):
            assert_contains(w, p, f"{path}[{index}]")
    else:
        assert whole == part, f"{path}: {whole!r} != {part!r}"


def round_trip(model: type[KubeObject[Any, Any]], body: Mapping[str, Any]) -> None:
    obj = model.from_body(body)
    again = model.model_validate(obj.to_json())
    assert again == obj
    assert again.to_json() == obj.to_json()
    assert_contains(obj.to_json(), dict(body))


# --- samples and builders -------------------------------------------------------------------


def test_there_is_a_sample_of_every_kind() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in SAMPLES}
    assert kinds == set(MODELS)


def test_the_samples_kustomization_lists_every_sample() -> None:
    kustomization = yaml.safe_load((REPO / "manifests/samples/kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in SAMPLES]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_samples_parse_and_round_trip_keeping_every_field(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    assert body["apiVersion"] == "edgeml.io/v1alpha1"
    model = MODELS[body["kind"]]
    obj = model.from_body(body)
    assert obj.kind == body["kind"]
    assert obj.api_version == body["apiVersion"]
    round_trip(model, body)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_builders_parse_and_round_trip_keeping_every_field(kind: str) -> None:
    round_trip(MODELS[kind], BUILDERS[kind]())


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (
            EdgeModel,
            edge_model(registry={"registeredModel": "vib", "trackingUri": "http://m:5000"}),
        ),
        (EdgeModel, edge_model(promotion={"mode": "Manual", "gates": []})),
        (
            EdgeModel,
            edge_model(
                training={
                    "dataset": {"format": "parquet", "sliceColumn": "site", "features": ["a"]},
                    "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}},
                    "evaluation": {"metrics": ["rmse"], "testFraction": 0.5},
                }
            ),
        ),
        (TrainingRun, BUILDERS["TrainingRun"](trigger="Drift", reason="drift on f1")),
        (
            TrainingRun,
            BUILDERS["TrainingRun"](
                overrides={"estimator": {"class": "sklearn.linear_model.Ridge", "params": {}}}
            ),
        ),
        (EdgeDeployment, edge_deployment(modelRef={"alias": DELETE, "version": 3})),
        (EdgeDeployment, edge_deployment(strategy={}, paused=True)),
        (
            EdgeDeployment,
            edge_deployment(
                strategy={"canary": {"maxUnavailable": "25%", "progressDeadline": "5m"}},
                serving={"port": 9000, "threads": 4},
            ),
        ),
        (DriftPolicy, drift_policy(dataDrift=DELETE, schedule="@daily")),
        (
            DriftPolicy,
            drift_policy(conceptDrift={"metric": "rmse", "maximum": 0.3}, action="Retrain"),
        ),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_builder_variants_parse_and_round_trip(
    model: type[KubeObject[Any, Any]], body: dict[str, Any]
) -> None:
    round_trip(model, body)


@pytest.mark.parametrize(
    ("build", "read", "expected"),
    [
        (edge_model, lambda o: o.spec.registry.registered_model, None),
        (edge_model, lambda o: o.spec.training.evaluation.test_fraction, 0.2),
        (edge_model, lambda o: o.spec.training.evaluation.metrics, ["accuracy", "f1"]),
        (edge_model, lambda o: o.spec.training.dataset.format, "csv"),
        (edge_model, lambda o: o.spec.training.backoff_limit, 3),
        (edge_model, lambda o: o.spec.training.active_deadline_seconds, 3600),
        (edge_model, lambda o: o.spec.version_history_limit, 10),
        (
            edge_model,
            lambda o: o.spec.training.estimator.class_path,
            "sklearn.ensemble.RandomForestClassifier",
        ),
        (BUILDERS["TrainingRun"], lambda o: o.spec.overrides, None),
        (edge_deployment, lambda o: o.spec.serving.port, 8080),
        (edge_deployment, lambda o: o.spec.paused, False),
        (edge_deployment, lambda o: o.spec.strategy.canary.max_unavailable, 1),
        (edge_deployment, lambda o: o.spec.strategy.canary.progress_deadline, "10m"),
        (edge_deployment, lambda o: o.spec.strategy.canary.analysis.failure_limit, 1),
        (edge_deployment, lambda o: o.spec.strategy.canary.analysis.source.type, "PodIP"),
        (edge_deployment, lambda o: o.spec.strategy.canary.steps[0].nodes, "10%"),
        (edge_deployment, lambda o: o.spec.tolerations[0].operator, "Exists"),
        (drift_policy, lambda o: o.spec.cooldown, "6h"),
        (drift_policy, lambda o: o.spec.data_drift.min_samples, 500),
        (drift_policy, lambda o: o.spec.schedule, None),
    ],
)
def test_defaults(
    build: Callable[[], dict[str, Any]], read: Callable[[Any], Any], expected: Any
) -> None:
    body = build()
    assert read(MODELS[body["kind"]].from_body(body)) == expected


def test_an_object_reads_a_kopf_body_like_mapping() -> None:
    class Body(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> Any:
            return self._data[key]

        def __iter__(self) -> Any:
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    body = edge_model()
    body["metadata"]["namespace"] = "ml"
    obj = EdgeModel.from_body(Body(body))
    assert obj.ref == "ml/vibration"


def test_metadata_keeps_what_the_operator_reads() -> None:
    body = edge_model()
    body["metadata"].update(
        {
            "namespace": "ml",
            "uid": "u-1",
            "generation": 3,
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"a": "b"},
            "annotations": {"edgeml.io/approve": "6"},
            "managedFields": [{"manager": "kubectl"}],
        }
    )
    meta = EdgeModel.from_body(body).metadata
    assert (meta.namespace, meta.uid, meta.generation, meta.resource_version) == (
        "ml",
        "u-1",
        3,
        "42",
    )
    assert meta.creation_timestamp == T0
    assert meta.labels == {"a": "b"}
    assert meta.annotations == {"edgeml.io/approve": "6"}


def test_unknown_spec_fields_are_ignored_as_the_api_server_would_prune_them() -> None:
    obj = EdgeModel.from_body(edge_model(unknownField=1))
    assert "unknownField" not in obj.to_json()["spec"]


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (EdgeModel, edge_model(training=DELETE)),
        (EdgeModel, edge_model(training={"dataset": {"uri": "ftp://x"}})),
        (EdgeModel, edge_model(training={"estimator": {"class": "RandomForest"}})),
        (EdgeModel, edge_model(training={"evaluation": {"testFraction": 0.9}})),
        (EdgeModel, edge_model(training={"evaluation": {"metrics": []}})),
        (EdgeModel, edge_model(promotion={"gates": [{"metric": "auc", "min": 1}]})),
        (TrainingRun, BUILDERS["TrainingRun"](trigger="Cron")),
        (TrainingRun, BUILDERS["TrainingRun"](modelRef={"name": "Not_A_Name"})),
        (EdgeDeployment, edge_deployment(nodeSelector={})),
        (EdgeDeployment, edge_deployment(serving={"port": 80})),
        (EdgeDeployment, edge_deployment(modelRef={"version": 0})),
        (EdgeDeployment, edge_deployment(strategy={"canary": {"steps": []}})),
        (EdgeDeployment, edge_deployment(strategy={"canary": {"progressDeadline": "ten"}})),
        (DriftPolicy, drift_policy(action="Page")),
        (DriftPolicy, drift_policy(cooldown="1d")),
        (DriftPolicy, drift_policy(schedule="every day")),
        (DriftPolicy, drift_policy(dataDrift={"threshold": 0})),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_invalid_specs_are_refused(model: type[KubeObject[Any, Any]], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.from_body(body)


# --- statuses ---------------------------------------------------------------------------------


def _condition(type_: str, status: str = "True") -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason="R",
        message="m",
        last_transition_time=T0,
        observed_generation=2,
    )


FULL_STATUSES = [
    EdgeModelStatus(
        observed_generation=2,
        phase="Ready",
        conditions=[_condition("Ready")],
        registered_model="vibration",
        champion=Champion(version=3, uri="models:/vibration/3", sha256="ab", promoted_by="auto"),
        latest_version=4,
        versions=[ModelVersion(version=4, metrics={"f1": 0.9}, created=T0)],
    ),
    TrainingRunStatus(
        phase="Succeeded",
        job="vibration-1",
        start_time=T0,
        completion_time=T0,
        mlflow_run_id="r",
        model_version=4,
        metrics={"accuracy": 0.93},
    ),
    EdgeDeploymentStatus(
        phase="Progressing",
        target=VersionNodes(version=4, sha256="cd"),
        stable=VersionNodes(version=3, nodes=9, ready=9),
        canary=CanaryStatus(
            version=4,
            nodes=1,
            step=2,
            analysis=[
                AnalysisResult(
                    metric="error-rate", canary=0.0, max=0.01, passed=True, measured_at=T0
                )
            ],
        ),
        zones=[ZoneSummary(zone="site-a", nodes=3, canary=1, ready=3)],
        rejected_versions=[2],
    ),
    DriftPolicyStatus(
        drifted=False,
        scores={"rms": 0.1},
        last_evaluated=T0,
        last_retrain=T0,
        triggered_runs=[
            TriggeredRun(
                name="vibration-drift-1",
                trigger="Drift",
                trigger_id="0123456789abcdef",
                created=T0,
                version=3,
                outcome="RolledOut",
            )
        ],
        retraining=RetrainingStatus(state="Cooldown", until=T0, rejections_in_a_row=1),
    ),
]


@pytest.mark.parametrize("status", FULL_STATUSES, ids=lambda s: type(s).__name__)
def test_statuses_round_trip(status: Any) -> None:
    assert type(status).model_validate(status.to_json()) == status


def test_an_object_with_a_status_round_trips() -> None:
    body = {**edge_model(), "status": FULL_STATUSES[0].to_json()}
    round_trip(EdgeModel, body)
    assert EdgeModel.from_body(body).status == FULL_STATUSES[0]


_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))
_WORDS = st.text(alphabet="abcXYZ09 -", max_size=12)
_CONDITIONS = st.lists(
    st.builds(
        Condition,
        type=st.sampled_from(["Ready", "Progressing", "Degraded", "Drifted", "Succeeded"]),
        status=st.sampled_from(["True", "False", "Unknown"]),
        reason=_WORDS,
        message=_WORDS,
        last_transition_time=_TIMES,
        observed_generation=st.none() | st.integers(0, 2**40),
    ),
    unique_by=lambda c: c.type,
)
_VERSION_NODES = st.builds(
    VersionNodes,
    version=st.none() | st.integers(1, 10**6),
    sha256=st.none() | st.text(alphabet="0123456789abcdef", max_size=64),
    nodes=st.integers(0, 10**4),
    ready=st.integers(0, 10**4),
)


@PROPERTY
@given(
    st.builds(
        EdgeDeploymentStatus,
        observed_generation=st.none() | st.integers(0, 2**40),
        phase=st.none() | _WORDS,
        conditions=_CONDITIONS,
        target=st.none() | _VERSION_NODES,
        stable=st.none() | _VERSION_NODES,
        rejected_versions=st.lists(st.integers(1, 100)),
    )
)
def test_any_deployment_status_round_trips(status: EdgeDeploymentStatus) -> None:
    assert EdgeDeploymentStatus.model_validate(status.to_json()) == status


@PROPERTY
@given(
    st.builds(
        DriftPolicyStatus,
        conditions=_CONDITIONS,
        drifted=st.none() | st.booleans(),
        scores=st.dictionaries(_WORDS, st.floats(allow_nan=False, allow_infinity=False)),
        last_evaluated=st.none() | _TIMES,
    )
)
def test_any_drift_status_round_trips(status: DriftPolicyStatus) -> None:
    assert DriftPolicyStatus.model_validate(status.to_json()) == status
