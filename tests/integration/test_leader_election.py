"""Two operator replicas under the operator's own identity, elected with a Lease: one
acts, the other stands by; killed during a rollout, the active one is replaced within
15 s and the rollout finishes with no duplicate pod; stopped cleanly, it hands over at
once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client

from support.cluster import ClusterHandle
from support.models import train_version
from support.objects import DELETE, PLURALS, edge_deployment, hermetic_edge_model
from support.operator import OPERATOR_NAMESPACE, SERVICE_ACCOUNT, OperatorProcess
from support.rollout import GROUP, VERSION, Rollout
from support.wait import wait_for

LEASE = "edgeml-ha"
KWOK_EDGE = {"edgeml.io/simulator": "kwok", "node-role.kubernetes.io/edge": "true"}
TAKEOVER_TARGET_S = 15


def _lease_rights(rbac: client.RbacAuthorizationV1Api, namespace: str) -> None:
    """What the chart's leader-election Role grants, for this test's Lease."""
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "leader-election"},
        "rules": [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": [LEASE], "verbs": ["get", "update", "delete"]},
        ],
    })  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "leader-election"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "leader-election"},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                      "namespace": OPERATOR_NAMESPACE}],
    })  # fmt: skip


def _holder(coordination: client.CoordinationV1Api, namespace: str) -> str:
    try:
        lease = coordination.read_namespaced_lease(LEASE, namespace)
    except client.ApiException:
        return ""
    return str(lease.spec.holder_identity or "")


def _replica(kubeconfig: Path, namespace: str, name: str, tmp_path: Path) -> OperatorProcess:
    proc = OperatorProcess(
        kubeconfig, namespace, tmp_path / f"operator-{name}.log",
        args=("--standalone", "--leader-elect", f"--lease-name={LEASE}",
              f"--lease-namespace={namespace}", f"--identity={name}"),
    )  # fmt: skip
    proc.start()
    return proc


def test_one_replica_acts_a_killed_one_is_replaced_in_time_and_a_stopped_one_hands_over(
    cluster: ClusterHandle,
    operator_kubeconfig: Path,
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("KWOK nodes exist only on the local cluster")
    assert cluster.settings is not None
    _lease_rights(client.RbacAuthorizationV1Api(api_client), namespace)
    coordination = client.CoordinationV1Api(api_client)
    replicas: dict[str, OperatorProcess] = {}
    try:
        for name in ("a", "b"):
            replicas[name] = _replica(operator_kubeconfig, namespace, name, tmp_path)
        holder = wait_for(lambda: _holder(coordination, namespace), bool, timeout=30,
                          what="a replica to take the Lease")  # fmt: skip
        leader, standby = ("a", "b") if holder.startswith("a_") else ("b", "a")

        model = hermetic_edge_model("vibration")
        good = train_version(
            model["spec"]["registry"]["registeredModel"], cluster.settings.mlflow_uri, tmp_path
        )
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS["EdgeModel"],
                                               model)  # fmt: skip
        ed = Rollout(custom, core, namespace, "vibration-edge")
        ed.wait_model_knows("vibration", good.version)
        strategy = {"canary": {"maxUnavailable": 6, "analysis": DELETE, "steps": [
            {"nodes": 2}, {"pause": {"duration": "6s"}}, {"nodes": "100%"}]}}  # fmt: skip
        deployment = edge_deployment(
            modelRef={"alias": DELETE, "version": good.version}, nodeSelector=KWOK_EDGE,
            strategy=strategy,
        )  # fmt: skip
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgedeployments",
                                               deployment)  # fmt: skip
        wait_for(lambda: ed.get(), lambda d: (d.get("status") or {}).get("phase") == "Paused",
                 timeout=60, what="the rollout to pause at its first step")  # fmt: skip
        standby_log = replicas[standby].logs()
        assert "standing by" in standby_log
        assert "now leads" not in standby_log

        # The active replica dies mid-rollout.
        killed = time.monotonic()
        replicas[leader].kill()
        new_holder = wait_for(
            lambda: _holder(coordination, namespace),
            lambda h: h.startswith(f"{standby}_"),
            timeout=TAKEOVER_TARGET_S + 10,
            what="the standby to take over",
        )
        takeover = time.monotonic() - killed
        print(f"takeover after a kill: {takeover:.1f}s (target {TAKEOVER_TARGET_S}s)")
        assert takeover <= TAKEOVER_TARGET_S
        done = ed.wait_phase("Healthy", good.version, timeout=120)
        pods = core.list_namespaced_pod(namespace).items
        nodes = [p.spec.node_name for p in pods if not p.metadata.deletion_timestamp]
        assert len(nodes) == len(set(nodes)) == 6, nodes  # one pod per node, no duplicate
        assert done["status"]["stable"]["version"] == good.version

        # A clean stop (an upgrade, a scale-down) hands the Lease over at once.
        replicas["c"] = _replica(operator_kubeconfig, namespace, "c", tmp_path)
        stopped = time.monotonic()
        replicas[standby].stop()
        wait_for(lambda: _holder(coordination, namespace), lambda h: h.startswith("c_"),
                 timeout=10, what="the third replica to take the released Lease")  # fmt: skip
        handover = time.monotonic() - stopped
        print(f"handover after a clean stop: {handover:.1f}s; holder was {new_holder}")
        assert "released" in replicas[standby].logs()
        assert handover < 5
    finally:
        for proc in replicas.values():
            proc.stop()


def test_a_replica_without_rights_to_its_lease_stands_by_and_says_why(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    proc = _replica(operator_kubeconfig, namespace, "x", tmp_path)
    try:
        wait_for(proc.logs, lambda log: "cannot look at the Lease" in log, timeout=30,
                 what="the refusal in the log")  # fmt: skip
        assert "403" in proc.logs() or "Forbidden" in proc.logs()
        assert proc.healthy()  # standing by, alive: the kubelet would not restart it
    finally:
        proc.stop()


def test_the_lease_belongs_to_the_operators_service_account_and_goes_with_it(
    cluster: ClusterHandle, core: client.CoreV1Api, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """helm uninstall deletes the ServiceAccount; the garbage collector then deletes the
    Lease, which the stopping pod could no longer release (its Role is gone by then)."""
    from edgeml.kube import client as edgeml_client
    from edgeml.kube.kubeconfig import token_service_account
    from edgeml.kube.lease import read_lease, write_lease

    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    edgeml_client.api_client.cache_clear()
    account = core.create_namespaced_service_account(namespace, {"metadata": {"name": "op"}})
    token = core.create_namespaced_service_account_token("op", namespace, {"spec": {}})
    # What runtime.py reads from the pod's token names this very account.
    assert token_service_account(token.status.token) == (namespace, "op", account.metadata.uid)
    owner = ("op", account.metadata.uid)
    assert write_lease(namespace, "held", "a_1", 10, read=None, acquired=True, owner=owner)
    renewed = read_lease(namespace, "held")
    assert write_lease(namespace, "held", "a_1", 10, read=renewed, acquired=False, owner=owner)
    coordination = client.CoordinationV1Api(core.api_client)
    refs = coordination.read_namespaced_lease("held", namespace).metadata.owner_references
    assert [(r.kind, r.name, r.uid) for r in refs] == [
        ("ServiceAccount", "op", account.metadata.uid)
    ]
    core.delete_namespaced_service_account("op", namespace)
    wait_for(lambda: read_lease(namespace, "held"), lambda lease: lease is None, timeout=60,
             what="the garbage collector to delete the Lease")  # fmt: skip
    edgeml_client.api_client.cache_clear()
