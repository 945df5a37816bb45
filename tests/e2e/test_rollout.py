"""The whole rollout on the local cluster's process nodes: real pods, MLflow, metrics.

Versions are registered in the real MLflow server; the operator (under its own
ServiceAccount) runs `edgeml serve` pods on the three process edge nodes, reads their
/metrics by pod IP while this test sends them inference traffic, and moves nodes in
waves. A good version reaches every node; a version whose predictions shift and one
whose artifact fails its sha256 are rolled back by the operator itself; a node offline
during a rollout neither blocks it nor fails it, and is caught up when it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from support.cluster import ClusterHandle
from support.models import register_again, rows, train_version
from support.objects import DELETE, PLURALS, edge_deployment, hermetic_edge_model
from support.operator import OperatorProcess
from support.wait import wait_for

pytestmark = pytest.mark.timeout(900)

GROUP, VERSION = "edgeml.io", "v1alpha1"
MODEL = "vibration"
NAME = "vibration-edge"
OFFLINE_NODE = "edge-proc-2"
PROCESS_EDGE = {"edgeml.io/simulator": "process", "node-role.kubernetes.io/edge": "true"}
STRATEGY = {
    "canary": {
        "maxUnavailable": 1,
        "progressDeadline": "3m",
        "steps": [{"nodes": 1}, {"analysis": {"duration": "8s"}}, {"nodes": "100%"}],
        "analysis": {
            "interval": "4s",
            "failureLimit": 0,
            "minSamples": 20,
            "metrics": [
                {"name": "error-rate", "max": 0.05},
                {"name": "prediction-shift", "max": 0.3},
            ],
        },
    }
}


class Traffic:
    """Clients on every node: one inference request per ready pod every few ms."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core, self.namespace = core, namespace
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _targets(self) -> list[str]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"edgeml.io/deployment={NAME}"
        ).items
        return [
            p.status.pod_ip
            for p in pods
            if p.status.pod_ip
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]

    def _run(self) -> None:
        data = rows(256, seed=11)
        i = 0
        with httpx.Client(timeout=2) as http:
            while not self.stop.is_set():
                try:
                    targets = self._targets()
                except Exception:
                    targets = []
                until = time.monotonic() + 1.0
                while time.monotonic() < until and not self.stop.is_set():
                    for ip in targets:
                        row = data[i % len(data)].tolist()
                        i += 1
                        body = {"inputs": [{"name": "input", "shape": [1, 6],
                                            "datatype": "FP32", "data": row}]}  # fmt: skip
                        try:
                            http.post(f"http://{ip}:8080/v2/models/{MODEL}/infer", json=body)
                            self.sent += 1
                        except httpx.HTTPError:
                            pass
                    self.stop.wait(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def traffic(core: client.CoreV1Api, namespace: str) -> Iterator[Traffic]:
    t = Traffic(core, namespace)
    yield t
    t.close()


def _get(custom: client.CustomObjectsApi, ns: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, ns, "edgedeployments", NAME))


def _pin(custom: client.CustomObjectsApi, ns: str, version: int) -> None:
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "edgedeployments", NAME, {"spec": {"modelRef": {"version": version}}}
    )


def _served(core: client.CoreV1Api, ns: str) -> dict[str, str]:
    """Node → version of its ready inference pod."""
    pods = core.list_namespaced_pod(ns, label_selector=f"edgeml.io/deployment={NAME}").items
    return {
        p.metadata.annotations["edgeml.io/node"]: p.metadata.labels["edgeml.io/model-version"]
        for p in pods
        if not p.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    }


def _wait_phase(
    custom: client.CustomObjectsApi, ns: str, phase: str, stable: int, timeout: float = 240
) -> dict[str, Any]:
    return wait_for(
        lambda: _get(custom, ns),
        lambda o: (
            (o.get("status") or {}).get("phase") == phase
            and ((o["status"].get("stable") or {}).get("version")) == stable
        ),
        timeout=timeout,
        what=f"{NAME} {phase} with stable version {stable}",
    )


def _wait_model_knows(custom: client.CustomObjectsApi, ns: str, version: int) -> None:
    wait_for(
        lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, "edgemodels", MODEL),
        lambda m: any(
            v.get("version") == version for v in (m.get("status") or {}).get("versions") or []
        ),
        timeout=60,
        what=f"EdgeModel {MODEL} to list version {version}",
    )


def _events(core: client.CoreV1Api, ns: str) -> list[str]:
    items = core.list_namespaced_event(ns).items
    return [e.reason for e in items if e.involved_object.name == NAME]


def _rollback_seconds(custom: client.CustomObjectsApi, ns: str, bad: int, stable: int) -> float:
    """From the rejection of `bad` seen (RollingBack) to every node back on stable."""
    start = wait_for(
        lambda: _get(custom, ns),
        lambda o: bad in (o.get("status") or {}).get("rejectedVersions", []),
        timeout=240,
        what=f"{NAME} to reject version {bad}",
    )
    began = time.monotonic()
    assert start["status"]["stable"]["version"] == stable
    _wait_phase(custom, ns, "RolledBack", stable, timeout=120)
    return time.monotonic() - began


def test_rollout_waves_rollbacks_and_an_offline_node(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    traffic: Traffic,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    mlflow = cluster.settings.mlflow_uri
    model = hermetic_edge_model(MODEL)
    registered = model["spec"]["registry"]["registeredModel"]
    good = train_version(registered, mlflow, tmp_path)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS["EdgeModel"], model)
    _wait_model_knows(custom, namespace, good.version)
    body = edge_deployment(
        NAME,
        MODEL,
        modelRef={"alias": DELETE, "version": good.version},
        nodeSelector=PROCESS_EDGE,
        strategy=STRATEGY,
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgedeployments", body)

    # 1. A first rollout: every wave, to every process edge node.
    _wait_phase(custom, namespace, "Healthy", good.version)
    assert set(_served(core, namespace).values()) == {str(good.version)}
    assert len(_served(core, namespace)) == 3

    # 2. A good new version (same bytes, so no shift): canary, analysis, then everywhere.
    same = register_again(registered, mlflow, good)
    _wait_model_knows(custom, namespace, same.version)
    _pin(custom, namespace, same.version)
    done = _wait_phase(custom, namespace, "Healthy", same.version)
    assert done["status"]["stable"]["ready"] == 3
    reasons = _events(core, namespace)
    assert "AnalysisFailed" not in reasons
    assert reasons.count("RolloutCompleted") == 2

    # 3. A version whose predictions shift: rolled back by the operator.
    skewed = train_version(registered, mlflow, tmp_path, skewed=True)
    _wait_model_knows(custom, namespace, skewed.version)
    _pin(custom, namespace, skewed.version)
    took = _rollback_seconds(custom, namespace, skewed.version, same.version)
    status = _get(custom, namespace)["status"]
    print(f"prediction-shift rollback: {took:.1f}s from the rejection seen to RolledBack")
    assert skewed.version in status["rejectedVersions"]
    assert "prediction-shift" in status["rollout"]["reason"]
    assert set(_served(core, namespace).values()) == {str(same.version)}
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")

    # 4. A version whose registry sha256 is not its bytes': refused by the pod, rolled back.
    tampered = register_again(registered, mlflow, good, sha256="0" * 64)
    _wait_model_knows(custom, namespace, tampered.version)
    _pin(custom, namespace, tampered.version)
    _rollback_seconds(custom, namespace, tampered.version, same.version)
    status = _get(custom, namespace)["status"]
    assert "ArtifactVerificationFailed" in status["rollout"]["reason"]
    assert "ArtifactVerificationFailed" in _events(core, namespace)
    assert set(_served(core, namespace).values()) == {str(same.version)}

    # 5. A node offline during a rollout: the rollout completes on the others, and the
    #    node is caught up when it comes back.
    assert cluster.cli("node", "offline", OFFLINE_NODE).returncode == 0
    try:
        wait_for(
            lambda: core.read_node(OFFLINE_NODE),
            lambda n: any(
                c.type == "Ready" and c.status != "True" for c in n.status.conditions or []
            ),
            timeout=90,
            what=f"{OFFLINE_NODE} NotReady",
        )
        latest = register_again(registered, mlflow, good)
        _wait_model_knows(custom, namespace, latest.version)
        _pin(custom, namespace, latest.version)
        _wait_phase(custom, namespace, "Healthy", latest.version)
        served = _served(core, namespace)
        assert {v for n, v in served.items() if n != OFFLINE_NODE} == {str(latest.version)}
    finally:
        assert cluster.cli("node", "online", OFFLINE_NODE).returncode == 0
    wait_for(
        lambda: _served(core, namespace),
        lambda s: s == {f"edge-proc-{i}": str(latest.version) for i in range(3)},
        timeout=180,
        what=f"{OFFLINE_NODE} caught up to version {latest.version}",
    )
    assert traffic.sent > 0
