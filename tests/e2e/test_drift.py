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

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.cluster import ClusterHandle
from support.drift import Clients, serve_on_process_nodes
from support.kube import event_reasons
from support.models import Trained, register_without_baseline
from support.objects import drift_policy
from support.operator import OperatorProcess
from support.prometheus import pod_targets, prometheus, scrape_config
from support.rollout import GROUP, VERSION, Rollout
from support.wait import wait_for
from support.webhooks import Receiver, receiver_secret

pytestmark = pytest.mark.timeout(900)

MODEL = "vibration"
NAME = "vibration-edge"
POLICY = "vibration-drift"
SHIFTED_ZONE, SHIFTED_NODE = "site-c", "edge-proc-2"
WINDOW_S, INTERVAL_S = 60, 5


def _policy(custom: client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    return dict(
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", POLICY)
    )


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    status = obj.get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def _drifted(obj: dict[str, Any]) -> dict[str, Any]:
    return _condition(obj, "Drifted")


def _pod_on(core: client.CoreV1Api, namespace: str, node: str) -> Any:
    (pod,) = core.list_namespaced_pod(
        namespace,
        label_selector=f"edgeml.io/deployment={NAME}",
        field_selector=f"spec.nodeName={node}",
    ).items
    return pod


def _restarts(pod: Any) -> int:
    return sum(c.restart_count for c in pod.status.container_statuses or [])


def _serve_pids(pod_name: str) -> list[int]:
    """The processes of the pod's `edgeml serve` container (a process node runs them on
    this host, with the pod's name as their HOSTNAME)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"HOSTNAME={pod_name}".encode() in env and b"serve" in cmdline:
            found.append(int(entry.name))
    assert found, f"no edgeml serve process of pod {pod_name} on this host"
    return found


def _policy_time(obj: dict[str, Any]) -> str:
    return str(obj["status"]["lastEvaluated"])


def _serve(
    cluster: ClusterHandle,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> tuple[str, Trained]:
    """A trained version served on the three process edge nodes, one per zone."""
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    return serve_on_process_nodes(
        custom, core, namespace, cluster.settings.mlflow_uri, tmp_path, NAME, MODEL
    )


def test_drift_at_one_zone_is_detected_named_and_cleared_once(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    clients: Clients,
    webhook: Receiver,
    tmp_path: Path,
) -> None:
    _serve(cluster, custom, core, namespace, tmp_path)
    receiver_secret(core, namespace, "ops-webhook", webhook.url)
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
    assert _drifted(drifted)["reason"] == "DataDrift"
    # A 1m window is the current 60 s slot plus whole earlier ones that fit: just after a
    # slot boundary it holds a second or so, enough rows for the fleet's minSamples but
    # not for one zone's. The zone is named by the evaluations that follow, in the same
    # episode (one DriftDetected, asserted below).
    drifted = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: f"zone {SHIFTED_ZONE}" in _drifted(o).get("message", ""),
        timeout=3 * INTERVAL_S + 30,
        what=f"the drift named at zone {SHIFTED_ZONE}",
    )
    condition = _drifted(drifted)
    assert (condition["status"], condition["reason"]) == ("True", "DataDrift")
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

    # 3b. So does a crash of the drifted zone's inference server: its container restarts
    #     with its window read back from the pod's cache directory.
    pod = _pod_on(core, namespace, SHIFTED_NODE)
    restarts = _restarts(pod)
    for pid in _serve_pids(pod.metadata.name):
        os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: _pod_on(core, namespace, SHIFTED_NODE),
        lambda p: (
            _restarts(p) > restarts
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ),
        timeout=60,
        what="the killed inference server to restart and be ready",
    )
    after_crash = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: o["status"]["lastEvaluated"] > _policy_time(drifted),
        timeout=60,
        what="an evaluation after the crash",
    )
    assert after_crash["status"]["drifted"] is True
    assert "DriftCleared" not in event_reasons(core, namespace, POLICY)

    # 4. The inputs return: drift clears once the window holds only them.
    clients.shifted = set()
    cleared = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _drifted(o).get("status") == "False",
        timeout=WINDOW_S + 4 * INTERVAL_S + 60,
        what="Drifted=False after the inputs returned",
    )
    assert cleared["status"]["drifted"] is False
    awaiting = ("DriftDetected", "DriftCleared")
    for about in (POLICY, NAME):  # once each, on the policy and on the EdgeDeployment
        reasons = event_reasons(core, namespace, about, awaiting=awaiting)
        assert (reasons.count("DriftDetected"), reasons.count("DriftCleared")) == (1, 1), reasons

    # 4b. A node that goes offline: its pod cannot be read; the others still decide.
    assert cluster.cli("node", "offline", "edge-proc-0").returncode == 0
    try:
        partial = wait_for(
            lambda: _policy(custom, namespace),
            lambda o: o["status"]["evaluation"]["pods"] == 2,
            timeout=60,
            what="an evaluation that read the two pods still online",
        )
        assert partial["status"]["drifted"] is False
        assert _condition(partial, "Ready")["status"] == "True"
        # Until the node controller marks it NotReady, its pod still counts as serving.
        assert partial["status"]["evaluation"]["podsTotal"] in (2, 3)
    finally:
        assert cluster.cli("node", "online", "edge-proc-0").returncode == 0

    # 5. The receiver was told once of the firing and once of its resolution.
    wait_for(
        webhook.statuses,
        lambda got: len(got) >= 2,
        timeout=30,
        what="the webhook to receive the firing and the resolved alert",
    )
    (firing, fp1), (resolved, fp2) = webhook.statuses()
    assert (firing, resolved) == ("firing", "resolved")
    assert fp1 == fp2
    alert = webhook.received[0]["alerts"][0]
    assert alert["labels"]["driftpolicy"] == POLICY
    assert f"zone {SHIFTED_ZONE}" in alert["annotations"]["description"]
    notified = next(c for c in cleared["status"]["conditions"] if c["type"] == "Notified")
    assert notified["status"] == "True"


def test_concept_drift_from_feedback_labels_reports_label_coverage(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    clients: Clients,
    tmp_path: Path,
) -> None:
    registered, good_version = _serve(cluster, custom, core, namespace, tmp_path)
    clients.feedback = "truth"
    # First with a feature the model does not have: refused before anything is scored.
    policy = drift_policy(
        POLICY,
        NAME,
        dataDrift={
            "method": "psi",
            "threshold": 0.2,
            "window": "1m",
            "minSamples": 300,
            "features": ["f0", "rpm"],
        },
        conceptDrift={"metric": "accuracy", "minimum": 0.6, "minSamples": 100},
        evaluation={"interval": f"{INTERVAL_S}s"},
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
    invalid = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _condition(o, "Ready").get("reason") == "InvalidSpec",
        timeout=120,
        what="InvalidSpec for a feature the model does not have",
    )
    assert "names rpm, which version" in _condition(invalid, "Ready")["message"]
    event_reasons(core, namespace, POLICY, awaiting=("InvalidSpec",))
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "driftpolicies", POLICY,
        {"spec": {"dataDrift": {"features": None}}},
    )  # fmt: skip
    good = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: (
            (o.get("status") or {}).get("concept", {}).get("value") is not None
            and _drifted(o).get("reason") == "NoDrift"
            # Labels trail their predictions: early evaluations see fewer of them.
            and ((o.get("status") or {}).get("concept", {}).get("coverage") or 0) > 0.3
        ),
        timeout=120,
        what="the live accuracy from true labels (half of them sent), without drift",
    )
    concept = good["status"]["concept"]
    print(f"true labels: accuracy {concept['value']:.3f}, coverage {concept['coverage']:.2f}")
    assert concept["value"] > 0.6
    assert 0.3 < concept["coverage"] < 0.7  # labels for about half the predictions

    # The world changes its mind: the same inputs now mean the other class.
    clients.feedback = "wrong"
    drifted = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _drifted(o).get("status") == "True",
        timeout=WINDOW_S + 2 * INTERVAL_S + 60,
        what="ConceptDrift once the feedback labels contradict the predictions",
    )
    condition = _drifted(drifted)
    assert condition["reason"] == "ConceptDrift"
    assert "accuracy" in condition["message"]
    assert drifted["status"]["concept"]["value"] < 0.6
    assert drifted["status"]["features"][0]["drifted"] is False  # the inputs did not move

    # A version registered without a drift baseline: nothing to compare with, said so.
    assert cluster.settings is not None
    bare = register_without_baseline(registered, cluster.settings.mlflow_uri, good_version)
    ed = Rollout(custom, core, namespace, NAME)
    ed.roll_to(MODEL, bare.version)
    ed.wait_phase("Healthy", bare.version)
    missing = wait_for(
        lambda: _policy(custom, namespace),
        lambda o: _condition(o, "Ready").get("reason") == "BaselineMissing",
        timeout=60,
        what="BaselineMissing once the pods serve a version without a baseline",
    )
    assert (
        f"version {bare.version}: run {bare.run_id} logged no edgeml/baseline.json"
        in (_condition(missing, "Ready")["message"])
    )
    event_reasons(core, namespace, POLICY, awaiting=("BaselineMissing",))


def test_drift_read_through_prometheus_names_the_zone(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    clients: Clients,
    tmp_path: Path,
) -> None:
    """The Prometheus source: increase() of the pods' cumulative counters over the window,
    queried per zone from a real Prometheus that scrapes the pods every second."""
    with (
        pod_targets(core, namespace, tmp_path / "targets.json") as targets,
        prometheus(tmp_path / "prometheus", scrape_config(targets.path)) as address,
    ):
        _serve(cluster, custom, core, namespace, tmp_path)
        policy = drift_policy(
            POLICY,
            NAME,
            dataDrift={"method": "psi", "threshold": 0.2, "window": "1m", "minSamples": 300},
            evaluation={"interval": f"{INTERVAL_S}s"},
            source={"type": "Prometheus", "prometheus": {"address": address}},
        )
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
        calm = wait_for(
            lambda: _policy(custom, namespace),
            lambda o: _drifted(o).get("reason") == "NoDrift",
            timeout=120,
            what="a first evaluation through Prometheus that finds no drift",
        )
        assert calm["status"]["evaluation"]["source"] == "Prometheus"
        assert {z["zone"] for z in calm["status"]["zones"]} == {"site-a", "site-b", "site-c"}
        clients.shifted = {SHIFTED_NODE}
        shifted_at = time.monotonic()
        drifted = wait_for(
            lambda: _policy(custom, namespace),
            lambda o: _drifted(o).get("status") == "True",
            timeout=WINDOW_S + 2 * INTERVAL_S + 30,
            what="Drifted=True through Prometheus after the inputs at site-c shifted",
        )
        print(f"detection delay through Prometheus: {time.monotonic() - shifted_at:.1f}s")
        assert f"zone {SHIFTED_ZONE}" in _drifted(drifted)["message"]
        zones = {z["zone"]: z for z in drifted["status"]["zones"]}
        assert {f["name"] for f in zones[SHIFTED_ZONE]["top"][:2]} == {"f0", "f1"}
        assert not zones["site-a"]["drifted"]
