"""The operator's MLflow REST client against a real MLflow server, checked against mlflow's own.

The operator does not import the mlflow library (it cost 120 MB of resident memory), so
`edgeml.registry.client` speaks MLflow's REST API itself. These tests register real
versions with `edgeml train` and compare what the REST client reads and writes with
what `mlflow.MlflowClient` sees on the same server.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import uuid
from pathlib import Path
from typing import ClassVar

import pytest
from mlflow import MlflowClient

from edgeml.registry.client import (
    RegistryUnavailableError,
    download_version_file,
    get_version,
    list_versions,
    read_model,
    set_alias,
    set_model_tag,
    set_version_tag,
)
from localcluster.settings import Settings
from support.cluster import ClusterHandle
from support.models import Trained, register_again, train_version


@pytest.fixture(scope="module")
def mlflow_uri(cluster: ClusterHandle) -> str:
    # On a foreign cluster (KUBECONFIG set) the local cluster's MLflow serves all the same.
    settings = cluster.settings or Settings()
    return os.environ.get("MLFLOW_TRACKING_URI") or settings.mlflow_uri


@pytest.fixture(scope="module")
def registered(mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Trained]:
    name = f"it-registry-{uuid.uuid4().hex[:8]}"
    first = train_version(name, mlflow_uri, tmp_path_factory.mktemp("registry"))
    register_again(name, mlflow_uri, first)
    return name, first


def test_list_versions_matches_mlflow_client(
    mlflow_uri: str, registered: tuple[str, Trained]
) -> None:
    name, first = registered
    theirs = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    ours = list_versions(mlflow_uri, name)
    assert ours is not None
    assert [v.version for v in ours] == [2, 1]  # newest first
    for version in ours:
        mv = theirs.get_model_version(name, str(version.version))
        assert version.tags == dict(mv.tags)
        assert version.run_id == mv.run_id
        assert version.source == mv.source
        assert version.created is not None
        assert int(version.created.timestamp()) == mv.creation_timestamp // 1000
        assert version.metrics == dict(theirs.get_run(first.run_id).data.metrics)
        assert version.sha256 == first.sha256
    assert ours[0].metrics, "the training run's metrics are read"


def test_alias_and_tag_writes_are_seen_by_mlflow(
    mlflow_uri: str, registered: tuple[str, Trained]
) -> None:
    name, _ = registered
    theirs = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    set_alias(mlflow_uri, name, "champion", 1)
    set_alias(mlflow_uri, name, "champion", 2)  # moving it is idempotent and last wins
    set_alias(mlflow_uri, name, "champion", 2)
    set_version_tag(mlflow_uri, name, 2, "edgeml.io/approved-by", "it's me")
    assert theirs.get_model_version_by_alias(name, "champion").version == "2"
    assert theirs.get_model_version(name, "2").tags["edgeml.io/approved-by"] == "it's me"
    ours = list_versions(mlflow_uri, name)
    assert ours is not None
    assert {v.version: v.aliases for v in ours} == {2: ("champion",), 1: ()}


def test_one_version_by_number_or_alias_as_mlflow_has_it(
    mlflow_uri: str, registered: tuple[str, Trained]
) -> None:
    name, first = registered
    set_alias(mlflow_uri, name, "it-pinned", 1)
    theirs = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    for ref, by_alias in (("1", False), ("it-pinned", True)):
        ours = get_version(mlflow_uri, name, ref, by_alias)
        assert ours is not None
        assert ours.version == 1
        assert ours.tags == dict(theirs.get_model_version(name, "1").tags)
        assert ours.sha256 == first.sha256
    assert get_version(mlflow_uri, name, "99", False) is None
    assert get_version(mlflow_uri, name, "nobody", True) is None
    assert get_version(mlflow_uri, f"it-absent-{uuid.uuid4().hex[:8]}", "1", False) is None


def test_a_versions_model_file_downloads_through_the_tracking_server(
    mlflow_uri: str, registered: tuple[str, Trained], tmp_path: Path
) -> None:
    name, first = registered
    target = tmp_path / "model.onnx"
    assert download_version_file(mlflow_uri, name, 1, "model.onnx", target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == first.sha256
    assert not download_version_file(mlflow_uri, name, 1, "absent.onnx", tmp_path / "x")


class _Recorder(http.server.BaseHTTPRequestHandler):
    """An MLflow stand-in that answers "no such model" and keeps the headers it got."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"}'
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_credentials_come_from_the_mlflow_client_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        user = {"MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_PASSWORD": "pw"}
        token = {"MLFLOW_TRACKING_TOKEN": "tok"}
        for env in ({}, user, {**user, **token}, token):
            for key in (
                "MLFLOW_TRACKING_USERNAME",
                "MLFLOW_TRACKING_PASSWORD",
                "MLFLOW_TRACKING_TOKEN",
            ):
                monkeypatch.delenv(key, raising=False)
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            assert get_version(uri, "m", "1", False) is None
    finally:
        server.shutdown()
        thread.join(5)
    assert _Recorder.seen == [None, "Basic YW5uOnB3", "Basic YW5uOnB3", "Bearer tok"]


def test_a_missing_model_is_none_and_a_bad_write_is_an_error(mlflow_uri: str) -> None:
    assert list_versions(mlflow_uri, f"it-absent-{uuid.uuid4().hex[:8]}") is None
    with pytest.raises(RegistryUnavailableError, match="moving alias champion"):
        set_alias(mlflow_uri, f"it-absent-{uuid.uuid4().hex[:8]}", "champion", 1)


def test_an_unreachable_server_is_unavailable_quickly() -> None:
    # Port 9 on loopback (discard) refuses: the error names what was being done.
    with pytest.raises(RegistryUnavailableError, match="reading registered model m"):
        list_versions("http://127.0.0.1:9", "m")


class _NotMlflow(http.server.BaseHTTPRequestHandler):
    """What a tracking URI can point at by mistake: a proxy's login page, a wrong path."""

    def do_GET(self) -> None:
        status, body = (404, b"no such page") if "missing" in self.path else (200, b"<html>")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.parametrize("prefix", ["", "/missing"])
def test_an_answer_that_is_not_mlflows_is_unavailable_never_empty(prefix: str) -> None:
    # Taking an HTML 200 or a bare 404 for "no such model" would wipe the EdgeModel's
    # versions and champion from its status.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
        with pytest.raises(RegistryUnavailableError, match="not MLflow's API"):
            list_versions(uri, "m")
    finally:
        server.shutdown()
        thread.join(5)


def test_an_ended_runs_metrics_are_read_once_a_running_runs_at_every_read(
    mlflow_uri: str,
) -> None:
    # A write to a run after it ended is one nothing of ours makes; here it shows that
    # the ended run's metrics were kept from the first read after it ended.
    theirs = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    name = f"it-metrics-{uuid.uuid4().hex[:8]}"
    experiment = theirs.create_experiment(name)
    run = theirs.create_run(experiment)
    run_id = run.info.run_id
    theirs.log_metric(run_id, "accuracy", 0.5)
    theirs.create_registered_model(name)
    theirs.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run_id)

    def accuracy() -> float:
        versions = list_versions(mlflow_uri, name)
        assert versions is not None
        assert len(versions) == 1
        return versions[0].metrics["accuracy"]

    assert accuracy() == 0.5
    theirs.log_metric(run_id, "accuracy", 0.75)
    assert accuracy() == 0.75, "a running run's metrics are read again"
    theirs.set_terminated(run_id, status="FINISHED")
    assert accuracy() == 0.75
    theirs.log_metric(run_id, "accuracy", 0.9)
    assert theirs.get_run(run_id).data.metrics["accuracy"] == 0.9
    assert accuracy() == 0.75, "an ended run's metrics are not read again"


def test_read_model_and_set_model_tag_match_mlflow_client(
    mlflow_uri: str, registered: tuple[str, Trained]
) -> None:
    name, _ = registered
    theirs = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    set_model_tag(mlflow_uri, name, "edgeml.io/edge-model", "it/registry")
    set_model_tag(mlflow_uri, name, "edgeml.io/edge-model", "it/registry")  # idempotent
    model = read_model(mlflow_uri, name)
    assert model is not None
    assert model.tags == dict(theirs.get_registered_model(name).tags)
    assert model.tags["edgeml.io/edge-model"] == "it/registry"
    assert [v.version for v in model.versions] == [
        v.version for v in list_versions(mlflow_uri, name) or []
    ]
    assert read_model(mlflow_uri, f"it-absent-{uuid.uuid4().hex[:8]}") is None
