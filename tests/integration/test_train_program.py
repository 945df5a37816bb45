"""`edgeml train` against a real MLflow server: the run, the verified version, retries.

Uses the local cluster's MLflow (or MLFLOW_TRACKING_URI when running against another
cluster); each test registers a model under a fresh name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.datasets import make_classification

from edgeml.training.program import main
from support.cluster import ClusterHandle

MLFLOW_CLIENT_ENV = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


@pytest.fixture(scope="module")
def mlflow_uri(cluster: ClusterHandle) -> str:
    if cluster.settings is not None:
        return cluster.settings.mlflow_uri
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        pytest.skip("no MLflow: a foreign cluster and MLFLOW_TRACKING_URI is not set")
    return uri


@pytest.fixture
def tracking_env(monkeypatch: pytest.MonkeyPatch, mlflow_uri: str) -> str:
    """MLFLOW_TRACKING_URI for main(); the client settings main() defaults are undone."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    for key in MLFLOW_CLIENT_ENV:
        monkeypatch.delenv(key, raising=False)
    return mlflow_uri


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    x, y = make_classification(1000, 10, n_informative=5, random_state=3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(10)])
    frame["label"] = y
    frame["site"] = ["north", "south"] * 500
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return {
        "registeredModel": f"train-test-{uuid.uuid4().hex[:10]}",
        "namespace": "it",
        "trainingRun": "rf-1",
        "trainingRunUid": str(uuid.uuid4()),
        "trigger": "Manual",
        "reason": "integration test",
        "image": "ghcr.io/edgeml/edgeml:test",
        "allowedModules": ["sklearn"],
        "training": {
            "dataset": {"uri": path.as_uri(), "target": "label", "sliceColumn": "site"},
            "estimator": {
                "class": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 20},
            },
            "evaluation": {"metrics": ["accuracy", "f1", "roc_auc"], "randomSeed": 1},
        },
    }


def _train(config: dict[str, Any], tmp_path: Path) -> tuple[int, str]:
    log = tmp_path / f"termination-{uuid.uuid4().hex[:6]}"
    code = main(["--config-json", json.dumps(config), "--termination-log", str(log)])
    return code, log.read_text()


def _versions(client: MlflowClient, name: str) -> list[Any]:
    return list(client.search_model_versions(f"name = '{name}'"))


def test_train_registers_a_version_whose_sha256_matches_the_download(
    tracking_env: str, config: dict[str, Any], tmp_path: Path
) -> None:
    code, line = _train(config, tmp_path)
    assert code == 0, line
    summary = json.loads(line)
    name = config["registeredModel"]
    assert summary["modelVersion"] == 1
    assert summary["modelUri"] == f"models:/{name}/1"
    assert {"accuracy", "f1", "roc_auc", "slice_gap_f1", "slice.north.f1"} <= set(
        summary["metrics"]
    )
    dataset = Path(config["training"]["dataset"]["uri"].removeprefix("file://")).read_bytes()
    assert summary["datasetSha256"] == hashlib.sha256(dataset).hexdigest()

    client = MlflowClient(tracking_env)
    version = client.get_model_version(name, "1")
    assert version.run_id == summary["runId"]
    assert version.aliases == []  # promotion is the operator's
    assert version.description == "integration test"
    tags = dict(version.tags)
    # The profile's recommended pod requests: EdgeDeployments size their pods by them.
    assert re.fullmatch(r"\d+m", tags.pop("edgeml.io/recommended-cpu"))
    assert re.fullmatch(r"\d+Mi", tags.pop("edgeml.io/recommended-memory"))
    assert tags == {
        "edgeml.io/sha256": summary["sha256"],
        "edgeml.io/training-run": "it/rf-1",
        "edgeml.io/training-run-uid": config["trainingRunUid"],
        "edgeml.io/trigger": "Manual",
        "edgeml.io/reason": "integration test",
        "edgeml.io/dataset-sha256": summary["datasetSha256"],
        "edgeml.io/run-id": summary["runId"],
    }
    with mlflow.utils.file_utils.TempDir() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/1", dst_path=tmp.path(), tracking_uri=tracking_env
        )
        model_bytes = (Path(local) / "model.onnx").read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == summary["sha256"]

    run = client.get_run(summary["runId"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == f"edgeml/it/{name}"
    assert run.info.status == "FINISHED"
    assert run.data.tags["edgeml.io/training-run-uid"] == config["trainingRunUid"]
    assert run.data.tags["edgeml.io/image"] == "ghcr.io/edgeml/edgeml:test"
    assert run.data.tags["edgeml.io/version"] == "0.1.0"
    assert run.data.params["estimator.class"] == "sklearn.ensemble.RandomForestClassifier"
    assert run.data.params["estimator.random_state"] == "1"
    assert run.data.metrics["f1"] == pytest.approx(summary["metrics"]["f1"])
    artifacts = {a.path for a in client.list_artifacts(summary["runId"], "edgeml")}
    assert {"edgeml/baseline.json", "edgeml/profile.json"} <= artifacts
    baseline = mlflow.artifacts.load_dict(f"runs:/{summary['runId']}/edgeml/baseline.json")
    assert baseline["rows"] == 800


def test_a_retry_of_the_same_run_does_not_register_twice(
    tracking_env: str, config: dict[str, Any], tmp_path: Path
) -> None:
    first = _train(config, tmp_path)
    assert first[0] == 0, first[1]
    second = _train(config, tmp_path)
    assert second == first
    assert len(_versions(MlflowClient(tracking_env), config["registeredModel"])) == 1


def test_a_retry_after_a_crash_before_the_sha256_tag_completes_the_version(
    tracking_env: str, config: dict[str, Any], tmp_path: Path
) -> None:
    code, line = _train(config, tmp_path)
    assert code == 0, line
    client = MlflowClient(tracking_env)
    name = config["registeredModel"]
    client.delete_model_version_tag(name, "1", "edgeml.io/sha256")
    assert _train(config, tmp_path) == (0, line)
    assert (
        client.get_model_version(name, "1").tags["edgeml.io/sha256"] == json.loads(line)["sha256"]
    )
    assert len(_versions(client, name)) == 1


def test_unreachable_mlflow_exits_3_quickly(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    for key in MLFLOW_CLIENT_ENV:
        monkeypatch.delenv(key, raising=False)
    started = time.monotonic()
    code, line = _train(config, tmp_path)
    elapsed = time.monotonic() - started
    assert code == 3
    assert line.startswith("RegistryUnavailable: searching versions of ")
    assert elapsed < 30, f"took {elapsed:.1f} s to give up on a dead server"


def test_a_run_tags_its_registered_model_and_refuses_one_another_edge_model_owns(
    tracking_env: str, config: dict[str, Any], tmp_path: Path
) -> None:
    client = MlflowClient(tracking_env, tracking_env)
    name = config["registeredModel"]
    code, log = _train({**config, "edgeModel": "first"}, tmp_path)
    assert code == 0, log
    assert client.get_registered_model(name).tags["edgeml.io/edge-model"] == "it/first"

    # Another EdgeModel naming the same registered model: refused, nothing registered.
    other = {**config, "edgeModel": "second", "trainingRunUid": str(uuid.uuid4())}
    code, log = _train(other, tmp_path)
    assert code == 2, log
    assert log.startswith("RegisteredModelInUse: MLflow registered model"), log
    assert "belongs to EdgeModel it/first" in log
    assert len(_versions(client, name)) == 1
    assert client.get_registered_model(name).tags["edgeml.io/edge-model"] == "it/first"
    experiment = client.get_experiment_by_name(f"edgeml/it/{name}")
    assert experiment is not None
    uid = other["trainingRunUid"]
    assert not client.search_runs(
        [experiment.experiment_id], f"tags.`edgeml.io/training-run-uid` = '{uid}'"
    )  # refused before its run was logged

    # A registered model made before owners were tagged is taken by the first to train.
    unowned = f"train-test-{uuid.uuid4().hex[:10]}"
    client.create_registered_model(unowned)
    code, log = _train({**other, "registeredModel": unowned}, tmp_path)
    assert code == 0, log
    assert client.get_registered_model(unowned).tags["edgeml.io/edge-model"] == "it/second"
