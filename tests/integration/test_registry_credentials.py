"""An EdgeModel's registry credentials, against a real MLflow that requires them.

The operator reads and writes MLflow for an EdgeModel with the Secret the EdgeModel
names (`spec.registry.credentialsSecretRef`), once the Secret's owner labelled it
edgeml.io/registry-credentials=true; its training Jobs get the same keys by name.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow import MlflowClient

from edgeml.registry.client import read_model
from support.kube import event_reasons
from support.mlflow_auth import AuthenticatedMlflow, authenticated_mlflow
from support.models import train_version
from support.objects import PLURALS, edge_model, training_run
from support.operator import OperatorProcess
from support.wait import wait_for

GROUP, VERSION = "edgeml.io", "v1alpha1"
SECRET = "mlflow-credentials"
LABEL = "edgeml.io/registry-credentials"
KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthenticatedMlflow]:
    with authenticated_mlflow(tmp_path_factory.mktemp("mlflow-auth")) as server:
        yield server


def _get(custom: client.CustomObjectsApi, ns: str, kind: str, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[kind], name))


def _condition(obj: dict[str, Any], cond_type: str) -> dict[str, Any]:
    found = (obj.get("status") or {}).get("conditions") or []
    return next((dict(c) for c in found if c["type"] == cond_type), {})


def _wait(
    custom: client.CustomObjectsApi, ns: str, kind: str, name: str, cond_type: str, reason: str
) -> dict[str, Any]:
    # Secrets are not watched: a change to one is seen at the next resync (15 s).
    return wait_for(
        lambda: _get(custom, ns, kind, name),
        lambda o: _condition(o, cond_type).get("reason") == reason,
        timeout=60,
        what=f"{kind} {name}: {cond_type} {reason}",
    )


def _secret(username: str, password: str, labelled: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": SECRET, "labels": {LABEL: "true"} if labelled else {}},
        "stringData": {"MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password},
    }


def test_an_edge_model_reads_and_promotes_on_an_authenticated_mlflow_with_its_own_secret(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    namespace: str,
    mlflow: AuthenticatedMlflow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered = f"it-auth-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow.password)
    first = train_version(registered, mlflow.uri, tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    registry = {
        "registeredModel": registered,
        "trackingUri": mlflow.uri,
        "credentialsSecretRef": {"name": SECRET},
    }
    model = edge_model(
        "vibration",
        registry=registry,
        promotion={"mode": "Auto", "gates": [{"metric": "f1", "min": 0.1}]},
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", model)

    # 1. The Secret does not exist: MLflow is not read (not with the operator's own
    # credentials either), and a run of the model waits instead of failing in a Job.
    missing = _wait(
        custom, namespace, "EdgeModel", "vibration", "RegistryAvailable",
        "RegistryCredentialsNotFound",
    )  # fmt: skip
    assert (
        f"Secret {SECRET} (spec.registry.credentialsSecretRef) does not exist"
        in (_condition(missing, "RegistryAvailable")["message"])
    )
    assert not missing["status"].get("versions")
    body = training_run("vibration-1", model="vibration")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingruns", body)
    waiting = _wait(
        custom, namespace, "TrainingRun", "vibration-1", "Ready", "RegistryCredentialsNotFound"
    )
    assert waiting["status"]["phase"] == "Pending"
    assert "EdgeModel vibration cannot train" in _condition(waiting, "Ready")["message"]
    assert batch.list_namespaced_job(namespace).items == []
    event_reasons(core, namespace, "vibration", awaiting=("RegistryCredentialsNotFound",))

    # 2. The right credentials, but their owner did not label the Secret for the operator.
    core.create_namespaced_secret(namespace, _secret(mlflow.username, mlflow.password, False))
    unlabelled = _wait(
        custom, namespace, "EdgeModel", "vibration", "RegistryAvailable",
        "RegistryCredentialsNotLabelled",
    )  # fmt: skip
    assert f"labelled {LABEL}=true" in _condition(unlabelled, "RegistryAvailable")["message"]

    # 3. Labelled, with a wrong password: MLflow refuses, and the message says so.
    core.replace_namespaced_secret(SECRET, namespace, _secret(mlflow.username, "wrong", True))
    refused = _wait(
        custom, namespace, "EdgeModel", "vibration", "RegistryAvailable", "RegistryUnavailable"
    )
    assert "UNAUTHENTICATED" in _condition(refused, "RegistryAvailable")["message"]

    # 4. The right password: read, promoted (alias and tags written as this user), and the
    # waiting run goes on to a Job that has the Secret's MLflow keys and nothing else of it.
    core.replace_namespaced_secret(
        SECRET, namespace, _secret(mlflow.username, mlflow.password, True)
    )
    ready = _wait(custom, namespace, "EdgeModel", "vibration", "Ready", "ChampionAvailable")
    assert _condition(ready, "RegistryAvailable")["reason"] == "Reachable"
    assert ready["status"]["champion"]["version"] == first.version
    admin = "Basic " + base64.b64encode(f"{mlflow.username}:{mlflow.password}".encode()).decode()
    read = read_model(mlflow.uri, registered, authorization=admin)
    assert read is not None
    tags = read.tags
    assert tags["edgeml.io/edge-model"] == f"{namespace}/vibration"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow.password)
    theirs = MlflowClient(tracking_uri=mlflow.uri, registry_uri=mlflow.uri)
    champion = theirs.get_model_version_by_alias(registered, "champion")
    assert int(champion.version) == first.version
    assert champion.tags["edgeml.io/promoted-by"] == "auto"

    jobs = wait_for(
        lambda: batch.list_namespaced_job(namespace).items,
        lambda found: len(found) == 1,
        timeout=60,
        what="the waiting run's Job once the credentials work",
    )
    (container,) = jobs[0].spec.template.spec.containers
    assert not container.env_from
    refs = {e.name: e.value_from.secret_key_ref for e in container.env or [] if e.value_from}
    for key in KEYS:
        assert (refs[key].name, refs[key].key, refs[key].optional) == (SECRET, key, True)
