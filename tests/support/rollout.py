"""Driving and watching an EdgeDeployment on the process nodes: traffic, waits, rollback time.

Shared by the rollout e2e test and `bench/rollback.py`, so the figure the bench reports
is measured the same way the test checks it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from kubernetes import client

from support.kube import event_reasons
from support.models import FEATURES, rows
from support.wait import wait_for

GROUP, VERSION = "edgeml.io", "v1alpha1"
PROCESS_EDGE = {"edgeml.io/simulator": "process", "node-role.kubernetes.io/edge": "true"}
PROCESS_NODES = 3
ANALYSED = {
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
"""One node, an 8 s analysis (a measurement every 4 s, none may fail), then every node."""


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class Traffic:
    """Clients on every node: one single-row inference request per ready pod every few ms."""

    def __init__(
        self,
        core: client.CoreV1Api,
        namespace: str,
        deployment: str,
        model: str,
        features: int = FEATURES,
    ):
        self.core, self.namespace = core, namespace
        self.deployment, self.model, self.features = deployment, model, features
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _targets(self) -> list[str]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"edgeml.io/deployment={self.deployment}"
        ).items
        return [p.status.pod_ip for p in pods if p.status.pod_ip and _ready(p)]

    def _run(self) -> None:
        data = rows(256, seed=11, features=self.features)
        url = "http://{}:8080/v2/models/" + self.model + "/infer"
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
                        body = {"inputs": [{"name": "input", "shape": [1, self.features],
                                            "datatype": "FP32", "data": row}]}  # fmt: skip
                        try:
                            http.post(url.format(ip), json=body)
                            self.sent += 1
                        except httpx.HTTPError:
                            pass
                    self.stop.wait(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@contextmanager
def traffic(
    core: client.CoreV1Api, namespace: str, deployment: str, model: str, features: int = FEATURES
) -> Iterator[Traffic]:
    """Traffic to the deployment's ready pods for the duration of the block."""
    t = Traffic(core, namespace, deployment, model, features)
    try:
        yield t
    finally:
        t.close()


class Rollout:
    """One EdgeDeployment, read and pinned through the API server."""

    def __init__(
        self, custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str, name: str
    ):
        self.custom, self.core, self.namespace, self.name = custom, core, namespace, name

    def get(self) -> dict[str, Any]:
        """The EdgeDeployment as JSON."""
        return dict(
            self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "edgedeployments", self.name
            )
        )

    def status(self) -> dict[str, Any]:
        """Its status ({} before the first write)."""
        return dict(self.get().get("status") or {})

    def _patch(self, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "edgedeployments", self.name, body
        )

    def pin(self, version: int) -> None:
        """Point spec.modelRef at one version."""
        self._patch({"spec": {"modelRef": {"version": version}}})

    def roll_to(self, model: str, version: int) -> None:
        """Pin `version` once EdgeModel `model` knows it (a new rollout starts)."""
        self.wait_model_knows(model, version)
        self.pin(version)

    def served(self) -> dict[str, str]:
        """Node → version of its ready inference pod."""
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"edgeml.io/deployment={self.name}"
        ).items
        return {
            p.metadata.annotations["edgeml.io/node"]: p.metadata.labels["edgeml.io/model-version"]
            for p in pods
            if not p.metadata.deletion_timestamp and _ready(p)
        }

    def wait_phase(self, phase: str, stable: int, timeout: float = 240) -> dict[str, Any]:
        """Wait for `phase` with `stable` as the stable version; the object then."""
        return wait_for(
            self.get,
            lambda o: (
                (o.get("status") or {}).get("phase") == phase
                and ((o["status"].get("stable") or {}).get("version")) == stable
            ),
            timeout=timeout,
            what=f"{self.name} {phase} with stable version {stable}",
        )

    def events(self, *awaiting: str) -> list[str]:
        """Reasons of the Events about it, once each of `awaiting` is among them."""
        return event_reasons(self.core, self.namespace, self.name, awaiting=awaiting)

    def wait_model_knows(self, model: str, version: int) -> None:
        """Wait until EdgeModel `model` lists `version` (so a pin to it resolves)."""
        wait_for(
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "edgemodels", model
            ),
            lambda m: any(
                v.get("version") == version for v in (m.get("status") or {}).get("versions") or []
            ),
            timeout=60,
            what=f"EdgeModel {model} to list version {version}",
        )


@dataclass(frozen=True)
class RollbackTiming:
    """How long a rollback took, and from what."""

    seconds: float
    """From the first failing analysis window (or the rejection, without one) to every
    node serving the stable version again."""
    since: str
    """"failing analysis window" or "rejection seen"."""
    reason: str
    """status.rollout.reason at the end."""


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def time_rollback(
    rollout: Rollout, bad: int, stable: int, nodes: int = PROCESS_NODES, timeout: float = 240
) -> RollbackTiming:
    """Watch a pinned bad version be rejected and rolled back; time it.

    Call it right after pinning `bad`. The clock starts at the `at` of the first counted,
    failing measurement (written to status by the operator at the end of the window it
    judged; whole seconds, so up to 1 s early), or, for a rejection without
    analysis (a failed sha256 check, a deadline), when the rejection was first seen. It
    stops when every one of `nodes` nodes has a ready pod of `stable` and no other.
    """
    seen: dict[str, datetime] = {}
    # Status keeps the last rollout's measurements until the new one starts; those
    # before this call (status times are whole seconds) belong to an earlier version.
    called = datetime.now(UTC).replace(microsecond=0)

    def observe() -> tuple[dict[str, Any], dict[str, str]]:
        status = rollout.status()
        for m in (status.get("rollout") or {}).get("measurements") or []:
            if m.get("counted") and not m.get("passed") and _parse(m["at"]) >= called:
                seen.setdefault("failing analysis window", _parse(m["at"]))
        if bad in status.get("rejectedVersions", []):
            seen.setdefault("rejection seen", datetime.now(UTC))
        return status, rollout.served() if seen else {}

    def back(observed: tuple[dict[str, Any], dict[str, str]]) -> bool:
        status, served = observed
        return (
            bad in status.get("rejectedVersions", [])
            and status.get("phase") == "RolledBack"
            and len(served) == nodes
            and set(served.values()) == {str(stable)}
        )

    status, _ = wait_for(
        observe, back, timeout=timeout, interval=0.1, what=f"{bad} rolled back to {stable}"
    )
    end = datetime.now(UTC)
    assert (status.get("stable") or {}).get("version") == stable, status
    since = next(k for k in ("failing analysis window", "rejection seen") if k in seen)
    reason = (status.get("rollout") or {}).get("reason", "")
    return RollbackTiming((end - seen[since]).total_seconds(), since, reason)
