"""Drift detection on the local cluster's process nodes: real pods, real windows, real MLflow.

A version is trained and rolled out to the three process edge nodes (one per zone:
site-a, site-b, site-c). Clients send rows drawn from the training data; the policy
evaluates every few seconds over a one-minute window and must never call that drift.
Then the clients at site-c shift two inputs: the policy must report data drift there,
naming the zone and the features, within a window and two intervals, with one Event on
the policy and one on the deployment; when the inputs return, drift clears, once. A
restart of the operator in the middle changes no decision (the window lives in the pods,
the decision's streak in status).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from kubernetes import client
from sklearn.datasets import make_classification

from support.cluster import ClusterHandle
from support.models import FEATURES, train_version
from support.objects import DELETE, PLURALS, drift_policy, edge_deployment, hermetic_edge_model
from support.operator import OperatorProcess
from support.rollout import GROUP, PROCESS_EDGE, VERSION, Rollout
from support.wait import wait_for

pytestmark = pytest.mark.timeout(900)

MODEL = "vibration"
NAME = "vibration-edge"
POLICY = "vibration-drift"
SHIFTED_ZONE, SHIFTED_NODE = "site-c", "edge-proc-2"
SHIFT = {0: 3.0, 1: -3.0}
WINDOW_S, INTERVAL_S = 60, 5


class Clients:
    """Edge clients: batches of rows drawn from the training data to every ready pod;
    those on `shifted` nodes have SHIFT added to their inputs."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        x, _ = make_classification(400, FEATURES, n_informative=4, random_state=5)
        self.data = x.astype(np.float32)
        self.core, self.namespace = core, namespace
        self.shifted: set[str] = set()
        self.sent: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _targets(self) -> list[tuple[str, str]]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"edgeml.io/deployment={NAME}"
        ).items
        return [
            (p.spec.node_name, p.status.pod_ip)
            for p in pods
            if p.status.pod_ip
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]

    def _run(self) -> None:
        rng = np.random.default_rng(3)
        with httpx.Client(timeout=2) as http:
            while not self.stop.is_set():
                try:
                    targets = self._targets()
                except Exception:
                    targets = []
                until = time.monotonic() + 1.0
                while time.monotonic() < until and not self.stop.is_set():
                    for node, ip in targets:
                        rows = self.data[rng.integers(0, len(self.data), 20)].copy()
                        if node in self.shifted:
                            for column, by in SHIFT.items():
                                rows[:, column] += by
                        tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32"}
                        body = {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}
                        try:
                            http.post(f"http://{ip}:8080/v2/models/{MODEL}/infer", json=body)
                            self.sent[node] = self.sent.get(node, 0) + len(rows)
                        except httpx.HTTPError:
                            pass
                    self.stop.wait(0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def statuses(self) -> list[tuple[str, str]]:
        return [(b["status"], b["alerts"][0]["fingerprint"]) for b in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def clients(core: client.CoreV1Api, namespace: str) -> Iterator[Clients]:
    c = Clients(core, namespace)
    yield c
    c.close()


def _policy(custom: client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    return dict(
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", POLICY)
    )


def _drifted(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == "Drifted"), {})


def _reasons(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    items = core.list_namespaced_event(namespace).items
    return [e.reason for e in items if e.involved_object.name == name]


def test_drift_at_one_zone_is_detected_named_and_cleared_once(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    clients: Clients,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    mlflow = cluster.settings.mlflow_uri
    model = hermetic_edge_model(MODEL)
    good = train_version(model["spec"]["registry"]["registeredModel"], mlflow, tmp_path)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS["EdgeModel"], model)
    ed = Rollout(custom, core, namespace, NAME)
    ed.wait_model_knows(MODEL, good.version)
    deployment = edge_deployment(
        NAME,
        MODEL,
        modelRef={"alias": DELETE, "version": good.version},
        nodeSelector=PROCESS_EDGE,
        strategy={
            "canary": {"maxUnavailable": 3, "steps": [{"nodes": "100%"}], "analysis": DELETE}
        },
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgedeployments", deployment)
    ed.wait_phase("Healthy", good.version)

    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "ops-webhook", "labels": {"edgeml.io/receiver": "true"}},
            "stringData": {"url": receiver.url},
        },
    )
    policy = drift_policy(
        POLICY,
        NAME,
        dataDrift={"method": "psi", "threshold": 0.2, "window": "1m", "minSamples": 300},
        evaluation={"interval": f"{INTERVAL_S}s", "consecutive": 2, "hysteresis": 0.2},
        notify=[{"name": "ops", "secretRef": {"name": "ops-webhook"}}],
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)

    # 1. The training distribution, for more than a window: never drift.
    first = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _drifted(o).get("reason") == "NoDrift",
        timeout=120,
        what="a first evaluation that finds no drift",
    )
    assert first["status"]["evaluation"]["pods"] == 3
    assert {z["zone"] for z in first["status"]["zones"]} == {"site-a", "site-b", "site-c"}
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + WINDOW_S + 2 * INTERVAL_S
    while time.monotonic() < deadline:
        obj = _policy(custom, namespace)
        worst = (obj["status"].get("worst") or {}).get("score", 0.0)
        seen.append((_drifted(obj).get("reason", ""), worst))
        time.sleep(1)
    false_positives = [s for s in seen if s[0] in ("DataDrift", "DriftSuspected")]
    print(f"no-drift phase: {len(seen)} looks, worst score {max(w for _, w in seen):.3f}, "
          f"false positives {len(false_positives)}")  # fmt: skip
    assert false_positives == []

    # 2. The clients of one zone shift two inputs: drift, there, with those features.
    clients.shifted = {SHIFTED_NODE}
    shifted_at = time.monotonic()
    drifted = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _drifted(o).get("status") == "True",
        timeout=WINDOW_S + 2 * INTERVAL_S + 30,
        what="Drifted=True after the inputs at site-c shifted",
    )
    delay = time.monotonic() - shifted_at
    print(f"detection delay: {delay:.1f}s (window {WINDOW_S}s, interval {INTERVAL_S}s)")
    condition = _drifted(drifted)
    assert condition["reason"] == "DataDrift"
    assert f"zone {SHIFTED_ZONE}" in condition["message"]
    zones = {z["zone"]: z for z in drifted["status"]["zones"]}
    assert zones[SHIFTED_ZONE]["drifted"] is True
    assert {f["name"] for f in zones[SHIFTED_ZONE]["top"][:2]} == {"f0", "f1"}
    assert not zones["site-a"]["drifted"]
    assert not zones["site-b"]["drifted"]
    assert drifted["status"]["drifted"] is True

    # 3. An operator restart in the episode changes nothing: no second alert.
    operator.stop()
    operator.start()
    evaluated = drifted["status"]["lastEvaluated"]
    wait_for(
        lambda: _policy(custom, namespace),
        lambda o: o["status"]["lastEvaluated"] != evaluated,
        timeout=60,
        what="an evaluation by the restarted operator",
    )
    assert _policy(custom, namespace)["status"]["drifted"] is True

    # 4. The inputs return: drift clears once the window holds only them.
    clients.shifted = set()
    cleared = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _drifted(o).get("status") == "False",
        timeout=WINDOW_S + 4 * INTERVAL_S + 60,
        what="Drifted=False after the inputs returned",
    )
    assert cleared["status"]["drifted"] is False
    assert _reasons(core, namespace, POLICY).count("DriftDetected") == 1
    assert _reasons(core, namespace, POLICY).count("DriftCleared") == 1
    assert _reasons(core, namespace, NAME).count("DriftDetected") == 1
    assert _reasons(core, namespace, NAME).count("DriftCleared") == 1

    # 5. The receiver was told once of the firing and once of its resolution.
    wait_for(
        receiver.statuses,
        lambda got: len(got) >= 2,
        timeout=30,
        what="the webhook to receive the firing and the resolved alert",
    )
    (firing, fp1), (resolved, fp2) = receiver.statuses()
    assert (firing, resolved) == ("firing", "resolved")
    assert fp1 == fp2
    alert = receiver.received[0]["alerts"][0]
    assert alert["labels"]["driftpolicy"] == POLICY
    assert f"zone {SHIFTED_ZONE}" in alert["annotations"]["description"]
    notified = next(c for c in cleared["status"]["conditions"] if c["type"] == "Notified")
    assert notified["status"] == "True"
