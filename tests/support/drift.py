"""Edge clients for drift: the training distribution, shifted at chosen nodes, with feedback.

Shared by the drift e2e test and bench/drift_delay.py, so the bench's figure is
measured the way the test checks it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
from kubernetes import client
from sklearn.datasets import make_classification

from support.models import FEATURES, Trained, train_version
from support.objects import DELETE, edge_deployment, hermetic_edge_model
from support.rollout import GROUP, PROCESS_EDGE, VERSION, Rollout

SHIFT = {0: 3.0, 1: -3.0}
"""Inputs moved at a shifted node, by this much (a few standard deviations)."""


class Clients:
    """Edge clients: batches of rows drawn from the training data to every ready pod;
    those on `shifted` nodes have SHIFT added to their inputs."""

    def __init__(self, core: client.CoreV1Api, namespace: str, deployment: str, model: str) -> None:
        # The rows support.models.train_version trains on: the live data is the training data.
        x, y = make_classification(400, FEATURES, n_informative=4, random_state=5)
        self.data, self.labels = x.astype(np.float32), y
        self.core, self.namespace = core, namespace
        self.deployment, self.model = deployment, model
        self.shifted: set[str] = set()
        self.feedback: str | None = None
        """None, "truth" (the true labels) or "wrong" (every label flipped), for half the
        requests."""
        self.sent: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _targets(self) -> list[tuple[str, str]]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"edgeml.io/deployment={self.deployment}"
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
                        picked = rng.integers(0, len(self.data), 20)
                        rows = self.data[picked].copy()
                        if node in self.shifted:
                            for column, by in SHIFT.items():
                                rows[:, column] += by
                        tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32"}
                        body = {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}
                        base = f"http://{ip}:8080/v2/models/{self.model}"
                        try:
                            answer = http.post(f"{base}/infer", json=body)
                            self.sent[node] = self.sent.get(node, 0) + len(rows)
                            if self.feedback and answer.status_code == 200 and rng.random() < 0.5:
                                truth = self.labels[picked]
                                labels = truth if self.feedback == "truth" else 1 - truth
                                label = {"id": answer.json()["id"], "label": labels.tolist()}
                                http.post(f"{base}/feedback", json=label)
                        except httpx.HTTPError:
                            pass
                    self.stop.wait(0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def serve_on_process_nodes(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    mlflow_uri: str,
    workdir: Path,
    deployment: str,
    model: str,
) -> tuple[str, Trained]:
    """A version trained on the rows Clients sends, served on the three process edge
    nodes (one per zone) in one wave; its registered model's name and the version."""
    body = hermetic_edge_model(model)
    registered = body["spec"]["registry"]["registeredModel"]
    good = train_version(registered, mlflow_uri, workdir)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", body)
    ed = Rollout(custom, core, namespace, deployment)
    ed.wait_model_knows(model, good.version)
    spec = edge_deployment(
        deployment,
        model,
        modelRef={"alias": DELETE, "version": good.version},
        nodeSelector=PROCESS_EDGE,
        strategy={
            "canary": {"maxUnavailable": 3, "steps": [{"nodes": "100%"}], "analysis": DELETE}
        },
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgedeployments", spec)
    ed.wait_phase("Healthy", good.version)
    return registered, good
