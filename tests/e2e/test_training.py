"""TrainingRun → a Job that really trains on a process node → MLflow version → champion."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import mlflow
import pytest
from kubernetes import client
from mlflow import MlflowClient

from support.datasets import write_vibration, write_with_text_column
from support.objects import edge_model, training_run
from support.operator import OperatorProcess
from support.wait import wait_for

GROUP, VERSION = "edgeml.io", "v1alpha1"
MLFLOW = "http://127.0.0.1:15000"
TRAINING_TIMEOUT = 240


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # MLflow 3 falls back to a local sqlite store when no URI is set: always name ours.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", MLFLOW)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", MLFLOW)


def _registered_name(namespace: str, stem: str) -> str:
    # The MLflow server outlives namespaces: one registered model per test.
    return f"{stem}-{namespace.rsplit('-', 1)[-1]}"


def _model(namespace: str, data_dir: Path, stem: str = "vibration", **spec: Any) -> dict[str, Any]:
    registry = {"registeredModel": _registered_name(namespace, stem), **spec.pop("registry", {})}
    body = edge_model(
        name=stem,
        registry=registry,
        training={
            "dataset": {"uri": "file:///data/vibration.csv", "target": "label"},
            "estimator": {
                "class": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 30, "max_depth": 8},
            },
            "volumes": [{"name": "data", "hostPath": {"path": str(data_dir), "type": "Directory"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            "backoffLimit": 1,
        },
        promotion=spec.pop("promotion", {"mode": "Auto", "gates": [{"metric": "f1", "min": 0.5}]}),
        **spec,
    )
    return body


def _create(custom: client.CustomObjectsApi, ns: str, body: dict[str, Any]) -> None:
    plural = {"EdgeModel": "edgemodels", "TrainingRun": "trainingruns"}[body["kind"]]
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body)


def _get(custom: client.CustomObjectsApi, ns: str, plural: str, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name))


def _finished_run(custom: client.CustomObjectsApi, ns: str, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: _get(custom, ns, "trainingruns", name),
        lambda run: (run.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
        timeout=TRAINING_TIMEOUT,
        what=f"TrainingRun {name} to finish",
    )


def _ready_reason(obj: dict[str, Any]) -> str:
    conds = (obj.get("status") or {}).get("conditions", [])
    return next((c["reason"] for c in conds if c["type"] == "Ready"), "")


def _champion(custom: client.CustomObjectsApi, ns: str, name: str, version: int) -> dict[str, Any]:
    return wait_for(
        lambda: _get(custom, ns, "edgemodels", name),
        lambda m: ((m.get("status") or {}).get("champion") or {}).get("version") == version,
        timeout=60,
        what=f"EdgeModel {name} to show version {version} as champion",
    )


def test_training_run_registers_a_verified_version_that_becomes_champion(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    write_vibration(data)
    _create(custom, namespace, _model(namespace, data))
    _create(custom, namespace, training_run(name="first"))
    run = _finished_run(custom, namespace, "first")
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["modelVersion"] == 1
    assert run["status"]["mlflowRunId"]
    assert run["status"]["metrics"]["f1"] > 0.5
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=first-train").items
    assert pod.spec.node_name.startswith("train-proc-"), pod.spec.node_name

    model = _champion(custom, namespace, "vibration", 1)
    champion = model["status"]["champion"]
    name = _registered_name(namespace, "vibration")
    registry = MlflowClient(tracking_uri=MLFLOW, registry_uri=MLFLOW)
    assert registry.get_model_version_by_alias(name, "champion").version == "1"
    assert registry.get_run(run["status"]["mlflowRunId"]).info.status == "FINISHED"
    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/1", dst_path=str(tmp_path / "dl"), tracking_uri=MLFLOW
        )
    )
    onnx_bytes = next(downloaded.rglob("*.onnx")).read_bytes()
    assert champion["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    assert champion["promotedBy"] == "auto"
    assert model["status"]["candidate"]["outcome"] == "Promoted"


BAD_INPUTS = [
    (
        "missing-dataset",
        {"dataset": {"uri": "file:///data/nope.csv", "target": "label"}},
        "DatasetNotFound",
    ),
    (
        "missing-target",
        {"dataset": {"uri": "file:///data/vibration.csv", "target": "nope"}},
        "MissingTarget",
    ),
    (
        "text-feature",
        {"dataset": {"uri": "file:///data/with_site.csv", "target": "label"}},
        "NonNumericFeature",
    ),
    (
        "unknown-estimator",
        {"estimator": {"class": "sklearn.ensemble.NoSuchForest"}},
        "UnknownEstimator",
    ),
    (
        "unconvertible",
        {"estimator": {"class": "sklearn.semi_supervised.LabelSpreading"}},
        "ConversionFailed",
    ),
]


def test_bad_inputs_fail_the_run_with_a_precise_reason_without_retries(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    write_vibration(data)
    write_with_text_column(data)
    _create(custom, namespace, _model(namespace, data))
    for name, overrides, _ in BAD_INPUTS:
        _create(custom, namespace, training_run(name=name, overrides=overrides))
    # An estimator outside the allow-list never reaches a Job: the operator refuses it.
    not_allowed = {"estimator": {"class": "os.system"}}
    _create(custom, namespace, training_run(name="not-allowed", overrides=not_allowed))
    for name, _, reason in BAD_INPUTS:
        run = _finished_run(custom, namespace, name)
        assert run["status"]["phase"] == "Failed", (name, run["status"])
        assert _ready_reason(run) == reason, (name, run["status"])
        assert run["status"]["failureReason"].startswith(f"{reason}: "), run["status"][
            "failureReason"
        ]
        job = batch.read_namespaced_job(f"{name}-train", namespace)
        assert (job.status.failed or 0) == 1, f"{name}: bad input must not be retried"
    refused = _finished_run(custom, namespace, "not-allowed")
    assert (refused["status"]["phase"], _ready_reason(refused)) == ("Failed", "InvalidSpec")
    assert refused["status"]["failureReason"].startswith(
        "spec.overrides.estimator.class: module os is not in the allow-list (sklearn)"
    )
    with pytest.raises(client.ApiException) as missing:
        batch.read_namespaced_job("not-allowed-train", namespace)
    assert missing.value.status == 404
    assert operator.proc is not None
    assert operator.proc.poll() is None, "the operator must not crash"


def test_unreachable_registry_is_retried_per_backoff_then_reported(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    write_vibration(data, rows=200)
    _create(
        custom, namespace, _model(namespace, data, registry={"trackingUri": "http://127.0.0.1:1"})
    )
    _create(custom, namespace, training_run(name="down"))
    run = _finished_run(custom, namespace, "down")
    assert run["status"]["phase"] == "Failed"
    assert _ready_reason(run) == "RegistryUnavailable", run["status"]
    job = batch.read_namespaced_job("down-train", namespace)
    assert job.status.failed == 2, "backoffLimit 1: two attempts"
    model = wait_for(
        lambda: _get(custom, namespace, "edgemodels", "vibration"),
        lambda m: any(
            c["type"] == "RegistryAvailable" and c["status"] == "False"
            for c in (m.get("status") or {}).get("conditions", [])
        ),
        timeout=30,
        what="the EdgeModel to report RegistryAvailable=False",
    )
    assert model["status"]["phase"] == "Pending"


def test_worse_version_is_not_promoted_and_manual_mode_waits_for_approval(
    cluster: Any,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    write_vibration(data)
    gates = [{"metric": "f1", "min": 0.5}, {"metric": "f1", "notWorseThanChampionBy": 0.01}]
    _create(custom, namespace, _model(namespace, data, promotion={"mode": "Auto", "gates": gates}))
    _create(custom, namespace, training_run(name="good"))
    assert _finished_run(custom, namespace, "good")["status"]["phase"] == "Succeeded"
    _champion(custom, namespace, "vibration", 1)
    stump = {
        "estimator": {"class": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 1}}
    }
    _create(custom, namespace, training_run(name="worse", overrides=stump))
    assert _finished_run(custom, namespace, "worse")["status"]["modelVersion"] == 2
    model = wait_for(
        lambda: _get(custom, namespace, "edgemodels", "vibration"),
        lambda m: (m["status"].get("candidate") or {}).get("version") == 2,
        timeout=60,
        what="promotion to judge version 2",
    )
    assert model["status"]["candidate"]["outcome"] == "Rejected", model["status"]["candidate"]
    assert model["status"]["champion"]["version"] == 1
    assert (
        "not worse than" in model["status"]["candidate"]["message"]
        or "vs champion" in model["status"]["candidate"]["message"]
    )

    # Manual mode: the version waits; `edgeml promote` approves it, and who approved is recorded.
    manual = _model(
        namespace,
        data,
        stem="manual",
        promotion={"mode": "Manual", "gates": [{"metric": "f1", "min": 0.5}]},
    )
    _create(custom, namespace, manual)
    _create(custom, namespace, training_run(name="manual-1", model="manual"))
    assert _finished_run(custom, namespace, "manual-1")["status"]["phase"] == "Succeeded"
    waiting = wait_for(
        lambda: _get(custom, namespace, "edgemodels", "manual"),
        lambda m: (m["status"].get("candidate") or {}).get("outcome") == "AwaitingApproval",
        timeout=60,
        what="the manual model to wait for approval",
    )
    assert waiting["status"].get("champion") is None
    promoted = cluster.edgeml(
        "promote", "manual", "--version", "1", "-n", namespace, "--by", "alice"
    )
    assert promoted.returncode == 0, promoted.stderr
    model = _champion(custom, namespace, "manual", 1)
    assert model["status"]["champion"]["promotedBy"] == "alice"
    tags = (
        MlflowClient(tracking_uri=MLFLOW, registry_uri=MLFLOW)
        .get_model_version(_registered_name(namespace, "manual"), "1")
        .tags
    )
    assert tags["edgeml.io/promoted-by"] == "alice"
    events = wait_for(
        lambda: [e for e in core.list_namespaced_event(namespace).items if e.reason == "Promoted"],
        lambda found: any("alice" in e.message for e in found),
        timeout=10,
        what="a Promoted event naming the approver",
    )
    assert events
