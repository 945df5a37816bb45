"""A DriftPolicy that cannot evaluate or notify says why, with a condition and an Event.

Against the real API server and the operator under its own ServiceAccount; the
deployment's pods run on KWOK nodes, whose pod addresses answer nothing (the local
cluster routes them to `unreachable`), which is what pods behind a broken network look
like to the operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.cluster import ClusterHandle
from support.models import train_version
from support.objects import DELETE, PLURALS, drift_policy, edge_deployment, hermetic_edge_model
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
    assert [r for r, _ in _events(core, namespace)].count("SourceUnavailable") == 1
