"""The whole rollout on the local cluster's process nodes: real pods, MLflow, metrics.

Versions are registered in the real MLflow server; the operator (under its own
ServiceAccount) runs `edgeml serve` pods on the three process edge nodes, reads their
/metrics by pod IP while this test sends them inference traffic, and moves nodes in
waves. A good version reaches every node; a version whose predictions shift, one that
fails every inference, and one whose artifact fails its sha256 are rolled back by the
operator itself; a node offline during a rollout neither blocks it nor fails it, and is
caught up when it returns. A second test steers a rollout with the `edgeml rollout`
commands, and shows node events alone move pods (its operator's resync is 10 minutes).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from support.cluster import ClusterHandle
from support.models import Trained, register_again, register_failing, train_version
from support.objects import DELETE, PLURALS, edge_deployment, hermetic_edge_model
from support.operator import OperatorProcess
from support.prometheus import pod_targets, prometheus, scrape_config
from support.rollout import (
    ANALYSED,
    GROUP,
    PROCESS_EDGE,
    VERSION,
    Rollout,
    Traffic,
    time_rollback,
    traffic,
)
from support.wait import wait_for
from support.webhooks import Receiver, receiver, receiver_secret

pytestmark = pytest.mark.timeout(900)

MODEL = "vibration"
NAME = "vibration-edge"
OFFLINE_NODE = "edge-proc-2"
STRATEGY = ANALYSED


@pytest.fixture
def load(core: client.CoreV1Api, namespace: str) -> Iterator[Traffic]:
    with traffic(core, namespace, NAME, MODEL) as t:
        yield t


def _deploy(
    custom: client.CustomObjectsApi,
    namespace: str,
    mlflow: str,
    tmp_path: Path,
    more: int = 0,
    **spec: object,
) -> tuple[str, list[Trained]]:
    """An EdgeModel with a trained version (and `more` versions of the same bytes,
    registered before the operator first reads the registry), and an EdgeDeployment
    pinned to the first."""
    model = hermetic_edge_model(MODEL)
    registered = model["spec"]["registry"]["registeredModel"]
    good = train_version(registered, mlflow, tmp_path)
    versions = [good] + [register_again(registered, mlflow, good) for _ in range(more)]
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS["EdgeModel"], model)
    body = edge_deployment(
        NAME, MODEL, modelRef={"alias": DELETE, "version": good.version}, nodeSelector=PROCESS_EDGE
    )
    body["spec"].update(spec)
    Rollout(custom, client.CoreV1Api(custom.api_client), namespace, NAME).wait_model_knows(
        MODEL, versions[-1].version
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgedeployments", body)
    return registered, versions


ROLLOUT_WEBHOOK = "e2e-rollout-webhook"
"""An operator-wide receiver's Secret, in the operator's namespace (edgeml-system)."""


@pytest.fixture
def rollout_webhook(core: client.CoreV1Api) -> Iterator[Receiver]:
    with receiver() as r:
        receiver_secret(core, "edgeml-system", ROLLOUT_WEBHOOK, r.url)
        yield r
    core.delete_namespaced_secret(ROLLOUT_WEBHOOK, "edgeml-system")


@pytest.mark.operator_env(
    EDGEML_POD_NAMESPACE="edgeml-system",
    EDGEML_NOTIFY_RECEIVERS=f'[{{"name": "ops", "secretRef": {{"name": "{ROLLOUT_WEBHOOK}"}}}}]',
)
def test_rollout_waves_rollbacks_and_an_offline_node(
    cluster: ClusterHandle,
    rollout_webhook: Receiver,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    load: Traffic,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    mlflow = cluster.settings.mlflow_uri
    registered, (good,) = _deploy(custom, namespace, mlflow, tmp_path, strategy=STRATEGY)
    ed = Rollout(custom, core, namespace, NAME)

    # 1. A first rollout: every wave, to every process edge node.
    ed.wait_phase("Healthy", good.version)
    assert ed.served() == {f"edge-proc-{i}": str(good.version) for i in range(3)}

    # 2. A good new version (same bytes, so no shift): canary, analysis, then everywhere.
    same = register_again(registered, mlflow, good)
    ed.roll_to(MODEL, same.version)
    done = ed.wait_phase("Healthy", same.version)
    assert done["status"]["stable"]["ready"] == 3
    # The operator posts a transition's Events just after the status that makes it.
    reasons = wait_for(ed.events, lambda r: r.count("RolloutCompleted") == 2, timeout=30,
                       what="the second RolloutCompleted Event")  # fmt: skip
    assert "AnalysisFailed" not in reasons

    # 3. A version whose predictions shift: rolled back by the operator.
    skewed = train_version(registered, mlflow, tmp_path, skewed=True)
    ed.roll_to(MODEL, skewed.version)
    took = time_rollback(ed, skewed.version, same.version)
    print(f"prediction-shift rollback: {took.seconds:.1f}s from the {took.since}")
    assert took.since == "failing analysis window"
    assert "prediction-shift" in took.reason
    status = ed.status()
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")

    # 4. A version that fails every inference (its graph cannot take one row): rolled
    #    back on its error rate. Its pod is ready (the model loads); only requests fail.
    failing = register_failing(registered, mlflow, good)
    ed.roll_to(MODEL, failing.version)
    took = time_rollback(ed, failing.version, same.version)
    print(f"error-rate rollback: {took.seconds:.1f}s from the {took.since}")
    assert took.since == "failing analysis window"
    assert "error-rate" in took.reason

    # 5. A version whose registry sha256 is not its bytes': refused by the pod, rolled back.
    tampered = register_again(registered, mlflow, good, sha256="0" * 64)
    ed.roll_to(MODEL, tampered.version)
    took = time_rollback(ed, tampered.version, same.version)
    assert "ArtifactVerificationFailed" in took.reason
    ed.events("ArtifactVerificationFailed")
    assert ed.status()["rejectedVersions"][-3:] == [
        skewed.version,
        failing.version,
        tampered.version,
    ]
    # The operator-wide receiver heard of each failed rollout once as it began, and of
    # the first two once as they cleared (each cleared by the next rollout).
    messages = wait_for(
        lambda: [
            (b["status"], b["alerts"][0]["labels"]["reason"]) for b in rollout_webhook.received
        ],
        lambda got: len(got) >= 5,
        timeout=30,
        what="a firing for each of the three rollbacks and a resolved for the first two",
    )
    assert [m for m in messages if m[0] == "firing"][-1] == ("firing", "ArtifactVerificationFailed")
    statuses = rollout_webhook.statuses()
    assert [s for s, _ in statuses] == ["firing", "resolved", "firing", "resolved", "firing"]
    assert statuses[0][1] == statuses[1][1] != statuses[2][1]
    assert {b["alerts"][0]["labels"]["alertname"] for b in rollout_webhook.received} == {
        "EdgeMLRolloutFailed"
    }

    # 6. A node offline during a rollout: the rollout completes on the others, and the
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
        ed.roll_to(MODEL, latest.version)
        ed.wait_phase("Healthy", latest.version)
        served = ed.served()
        assert {v for n, v in served.items() if n != OFFLINE_NODE} == {str(latest.version)}
    finally:
        assert cluster.cli("node", "online", OFFLINE_NODE).returncode == 0
    wait_for(
        ed.served,
        lambda s: s == {f"edge-proc-{i}": str(latest.version) for i in range(3)},
        timeout=180,
        what=f"{OFFLINE_NODE} caught up to version {latest.version}",
    )
    assert load.sent > 0


GATED = {
    "canary": {
        "maxUnavailable": 1,
        "progressDeadline": "3m",
        "steps": [{"nodes": 1}, {"pause": {}}, {"nodes": "100%"}],
    }
}
EDGE_ROLE = "node-role.kubernetes.io/edge"


def _command(cluster: ClusterHandle, namespace: str, action: str) -> None:
    """`edgeml rollout ACTION` as a person types it, with the admin kubeconfig."""
    done = cluster.edgeml("rollout", action, NAME, "-n", namespace)
    assert done.returncode == 0, done.stderr
    assert f"to {action} the rollout of {namespace}/{NAME}" in done.stdout


def _held_at_pause_step(ed: Rollout, version: int) -> None:
    """Wait for the first wave (one node on `version`) to be held by the pause step."""
    wait_for(
        lambda: (ed.status(), ed.served()),
        lambda seen: (
            seen[0].get("phase") == "Paused"
            and (seen[0].get("rollout") or {}).get("step") == 1
            and list(seen[1].values()).count(str(version)) == 1
        ),
        timeout=120,
        what=f"{NAME} held at its pause step with one node on version {version}",
    )


@pytest.mark.operator_env(EDGEML_RESYNC_SECONDS="600")
def test_rollout_commands_and_node_events(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    """pause, resume, promote and abort through `edgeml rollout`; node label changes move
    pods although this operator resyncs only every 10 minutes (so watch events did it)."""
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    mlflow = cluster.settings.mlflow_uri
    # This operator reads the registry every 10 minutes only: every version is there first.
    _, (good, second, third) = _deploy(custom, namespace, mlflow, tmp_path, 2, strategy=GATED)
    ed = Rollout(custom, core, namespace, NAME)
    every = {f"edge-proc-{i}" for i in range(3)}

    # A first rollout waits at its pause step until resumed.
    _held_at_pause_step(ed, good.version)
    _command(cluster, namespace, "resume")
    ed.wait_phase("Healthy", good.version, timeout=120)
    assert ed.served() == dict.fromkeys(every, str(good.version))

    # pause holds a rollout; resume releases the pause but not the step; promote skips it.
    ed.roll_to(MODEL, second.version)
    _held_at_pause_step(ed, second.version)
    _command(cluster, namespace, "pause")
    wait_for(
        ed.status,
        lambda s: (s.get("rollout") or {}).get("paused") is True,
        timeout=60,
        what="the person's pause recorded",
    )
    _command(cluster, namespace, "resume")
    wait_for(
        ed.status,
        lambda s: not (s.get("rollout") or {}).get("paused") and "Resumed" in ed.events(),
        timeout=60,
        what="the person's pause released",
    )
    _held_at_pause_step(ed, second.version)  # still at the pause step
    _command(cluster, namespace, "promote")
    ed.wait_phase("Healthy", second.version, timeout=120)
    assert ed.served() == dict.fromkeys(every, str(second.version))

    # abort returns the canary to stable and rejects the version.
    ed.roll_to(MODEL, third.version)
    _held_at_pause_step(ed, third.version)
    _command(cluster, namespace, "abort")
    took = time_rollback(ed, third.version, second.version)
    assert "Aborted" in took.reason
    ed.events("Paused", "Resumed", "Promoted", "Aborted")

    # Node events alone: a node leaving the selector loses its pod, and gets it back when
    # it returns. With a 10-minute resync, only the node watch can have woken the loop.
    core.patch_node(OFFLINE_NODE, {"metadata": {"labels": {EDGE_ROLE: None}}})
    try:
        wait_for(
            ed.served,
            lambda s: set(s) == every - {OFFLINE_NODE},
            timeout=60,
            what=f"the pod on {OFFLINE_NODE} removed once the node left the selector",
        )
    finally:
        core.patch_node(OFFLINE_NODE, {"metadata": {"labels": {EDGE_ROLE: "true"}}})
    wait_for(
        ed.served,
        lambda s: s == dict.fromkeys(every, str(second.version)),
        timeout=60,
        what=f"{OFFLINE_NODE} served again once back in the selector",
    )


def test_rollout_analysed_through_prometheus(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    load: Traffic,
    tmp_path: Path,
) -> None:
    """The Prometheus metrics source: a real Prometheus scrapes the pods (discovered from
    the API server); the operator judges the canary from PromQL alone."""
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    mlflow = cluster.settings.mlflow_uri
    with (
        pod_targets(core, namespace, tmp_path / "targets.json") as targets,
        prometheus(tmp_path / "prometheus", scrape_config(targets.path)) as address,
    ):
        strategy = copy.deepcopy(STRATEGY)
        strategy["canary"]["analysis"]["source"] = {
            "type": "Prometheus",
            "prometheus": {"address": address},
        }
        registered, (good,) = _deploy(custom, namespace, mlflow, tmp_path, strategy=strategy)
        ed = Rollout(custom, core, namespace, NAME)
        # The first rollout's analysis step needs counted measurements (minSamples 20 of
        # error-rate), which only Prometheus can give this EdgeDeployment.
        ed.wait_phase("Healthy", good.version)
        assert "AnalysisInconclusive" not in ed.events()

        skewed = train_version(registered, mlflow, tmp_path, skewed=True)
        ed.roll_to(MODEL, skewed.version)
        took = time_rollback(ed, skewed.version, good.version)
        print(f"prediction-shift rollback through Prometheus: {took.seconds:.1f}s")
        assert took.since == "failing analysis window"
        assert "prediction-shift" in took.reason
