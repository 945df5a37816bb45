"""A DriftPolicy that cannot evaluate or notify says why, with a condition and an Event.

Against the real API server and the operator under its own ServiceAccount; the
deployment's pods run on KWOK nodes, whose pod addresses answer nothing (the local
cluster routes them to `unreachable`), which is what pods behind a broken network look
like to the operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kubernetes import client

from support.cluster import ClusterHandle
from support.kube import event_reasons
from support.models import train_version
from support.objects import DELETE, PLURALS, drift_policy, edge_deployment, hermetic_edge_model
from support.objectstore import Bucket, create_credentials_secret
from support.operator import OperatorProcess
from support.rollout import GROUP, VERSION, Rollout
from support.wait import wait_for

POLICY = "vibration-drift"
KWOK_EDGE = {"edgeml.io/simulator": "kwok", "node-role.kubernetes.io/edge": "true"}


def _policy(custom: client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    return dict(
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", POLICY)
    )


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == kind), {}
    )


def _wait_reason(
    custom: client.CustomObjectsApi, namespace: str, kind: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    return wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _condition(o, kind).get("reason") == reason,
        timeout=timeout,
        what=f"{kind} reason {reason}",
    )


def _events(core: client.CoreV1Api, namespace: str) -> list[tuple[str, str]]:
    return [
        (e.reason, e.message)
        for e in core.list_namespaced_event(namespace).items
        if e.involved_object.name == POLICY
    ]


def test_receiver_secrets_that_are_missing_or_unlabelled_are_reported_until_fixed(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgedeployments", edge_deployment(nodeSelector=KWOK_EDGE)
    )
    policy = drift_policy(notify=[{"name": "ops", "secretRef": {"name": "hook"}}])
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
    missing = _wait_reason(custom, namespace, "Notified", "ReceiverSecretNotFound")
    assert _condition(missing, "Notified")["message"] == (
        "Receivers cannot be used: ops: Secret hook does not exist."
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "hook"}, "stringData": {"url": "http://127.0.0.1:9/a"}}
    )
    unlabelled = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: "not labelled" in _condition(o, "Notified").get("message", ""),
        timeout=60,
        what="the unlabelled Secret to be reported",
    )
    assert (
        "Secret hook is not labelled edgeml.io/receiver=true"
        in (_condition(unlabelled, "Notified")["message"])
    )
    core.patch_namespaced_secret(
        "hook", namespace, {"metadata": {"labels": {"edgeml.io/receiver": "true"}}}
    )
    ready = _wait_reason(custom, namespace, "Notified", "ReceiversReady")
    assert _condition(ready, "Notified")["status"] == "True"
    reasons = [r for r, _ in _events(core, namespace)]
    assert reasons.count("ReceiverSecretNotFound") == 1, reasons
    assert reasons.count("ReceiverSecretInvalid") == 1, reasons


def test_pods_that_do_not_answer_and_a_prometheus_that_is_down_are_source_unavailable(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("KWOK nodes exist only on the local cluster")
    assert cluster.settings is not None
    model = hermetic_edge_model("vibration")
    good = train_version(
        model["spec"]["registry"]["registeredModel"], cluster.settings.mlflow_uri, tmp_path
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS["EdgeModel"], model)
    ed = Rollout(custom, core, namespace, "vibration-edge")
    ed.wait_model_knows("vibration", good.version)
    deployment = edge_deployment(
        modelRef={"alias": DELETE, "version": good.version},
        nodeSelector=KWOK_EDGE,
        strategy={
            "canary": {"maxUnavailable": 6, "steps": [{"nodes": "100%"}], "analysis": DELETE}
        },
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgedeployments", deployment)
    ed.wait_phase("Healthy", good.version)
    policy = drift_policy(evaluation={"interval": "5s"})
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
    down = _wait_reason(custom, namespace, "Ready", "SourceUnavailable")
    assert (
        "none of the 6 serving pods answered /drift/window" in _condition(down, "Ready")["message"]
    )
    assert _condition(down, "Drifted")["status"] == "Unknown"
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "driftpolicies",
        POLICY,
        {
            "spec": {
                "source": {"type": "Prometheus", "prometheus": {"address": "http://127.0.0.1:9"}}
            }
        },
    )
    prometheus = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: "127.0.0.1:9/api/v1/query" in _condition(o, "Ready").get("message", ""),
        timeout=60,
        what="the Prometheus that is down to be reported",
    )
    assert _condition(prometheus, "Ready")["reason"] == "SourceUnavailable"
    assert prometheus["status"].get("drifted") is None
    reasons = event_reasons(core, namespace, POLICY, awaiting=("SourceUnavailable",))
    assert reasons.count("SourceUnavailable") == 1, reasons


def test_a_watched_dataset_that_cannot_be_read_says_why_and_creates_nothing(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    bucket: Bucket,
) -> None:
    """newData over an s3:// prefix: a missing or unlabelled Secret, an empty prefix, wrong
    keys and a store that is down are each a DatasetReadable reason and one Event; the
    last good data version is kept, and no TrainingRun is created."""
    dataset = {
        "uri": bucket.uri("vib/"),
        "target": "label",
        "s3": {"endpoint": bucket.endpoint, "credentialsSecretRef": {"name": "keys"}},
    }
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS["EdgeModel"],
        hermetic_edge_model("vibration", training={"dataset": dataset}),
    )  # fmt: skip
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgedeployments", edge_deployment(nodeSelector=KWOK_EDGE)
    )
    policy = drift_policy(dataDrift=DELETE, newData={"interval": "10s"}, action="Retrain")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)

    _wait_reason(custom, namespace, "DatasetReadable", "CredentialsSecretNotFound")
    create_credentials_secret(core, namespace, "keys", labelled=False)
    unlabelled = _wait_reason(custom, namespace, "DatasetReadable", "CredentialsSecretNotLabelled")
    assert (
        "not labelled edgeml.io/dataset-credentials=true"
        in (_condition(unlabelled, "DatasetReadable")["message"])
    )
    core.patch_namespaced_secret(
        "keys", namespace, {"metadata": {"labels": {"edgeml.io/dataset-credentials": "true"}}}
    )
    empty = _wait_reason(custom, namespace, "DatasetReadable", "DatasetEmpty")
    assert "holds no .csv objects" in _condition(empty, "DatasetReadable")["message"]
    bucket.put_csv("vib/a.csv", pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]}))
    seen = _wait_reason(custom, namespace, "DatasetReadable", "Watching")
    version = seen["status"]["newData"]["dataVersion"]
    assert seen["status"]["newData"]["objects"] == 1

    core.patch_namespaced_secret(
        "keys", namespace, {"stringData": {"AWS_SECRET_ACCESS_KEY": "wrong"}}
    )
    denied = _wait_reason(custom, namespace, "DatasetReadable", "DatasetAccessDenied")
    message = _condition(denied, "DatasetReadable")["message"]
    assert "refused the credentials" in message
    assert f"The last data version seen, {version}, is kept." in message
    assert denied["status"]["newData"]["dataVersion"] == version

    down = {**dataset, "s3": {**dataset["s3"], "endpoint": "http://127.0.0.1:9"}}
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "driftpolicies", POLICY,
        {"spec": {"retraining": {"overrides": {"dataset": down}}}},
    )  # fmt: skip
    unavailable = _wait_reason(custom, namespace, "DatasetReadable", "ObjectStoreUnavailable")
    assert "cannot be reached" in _condition(unavailable, "DatasetReadable")["message"]
    assert unavailable["status"]["newData"]["dataVersion"] == version

    reasons = event_reasons(core, namespace, POLICY, awaiting=("ObjectStoreUnavailable",))
    for reason in (
        "CredentialsSecretNotFound",
        "CredentialsSecretNotLabelled",
        "DatasetEmpty",
        "DatasetAccessDenied",
        "ObjectStoreUnavailable",
    ):
        assert reasons.count(reason) == 1, reasons
    runs = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trainingruns")
    assert runs["items"] == []


def test_new_data_on_a_file_dataset_is_invalid_spec(
    operator: OperatorProcess, custom: client.CustomObjectsApi, namespace: str
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS["EdgeModel"], hermetic_edge_model("vibration")
    )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgedeployments", edge_deployment(nodeSelector=KWOK_EDGE)
    )
    policy = drift_policy(newData={"interval": "1m"})
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
    invalid = _wait_reason(custom, namespace, "Ready", "InvalidSpec")
    message = _condition(invalid, "Ready")["message"]
    assert "file:///data/vibration.csv is a file on a volume only the training pod" in message
