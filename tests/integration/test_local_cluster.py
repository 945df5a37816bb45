"""The local cluster is real: a scheduler places pods, controllers run Jobs, pods really run."""

from __future__ import annotations

import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localcluster.fleet import EDGE_ROLE, POOL_LABEL, SIMULATOR_LABEL
from support.cluster import ClusterHandle
from support.kube import EDGE_TOLERATION, job_condition, node_ready, web_pod
from support.objects import TEST_IMAGE
from support.wait import wait_for


def _nodes_by_name(core: client.CoreV1Api) -> dict[str, Any]:
    return {n.metadata.name: n for n in core.list_node().items}


def _edge_nodes(core: client.CoreV1Api) -> list[Any]:
    return [
        n
        for n in core.list_node(label_selector=f"{EDGE_ROLE}=true").items
        if node_ready(n) == "True"
    ]


def _job(name: str, command: list[str], host_dir: Path | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": TEST_IMAGE, "command": command}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": {POOL_LABEL: "training"},
        "containers": [container],
    }
    if host_dir is not None:
        pod["volumes"] = [{"name": "out", "hostPath": {"path": str(host_dir), "type": "Directory"}}]
        container["volumeMounts"] = [{"name": "out", "mountPath": "/out"}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": pod},
        },
    }


def test_edge_deployment_lands_only_on_edge_nodes_of_both_kinds(
    cluster: ClusterHandle, core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    edge = _edge_nodes(core)
    simulators = {n.metadata.labels.get(SIMULATOR_LABEL) for n in edge}
    kinds = {"kwok", "process"} if cluster.local else simulators  # kind: real kubelets only
    assert simulators == kinds, f"expected both kinds of edge node, got {simulators}"
    replicas = len(edge)
    labels = {"app.kubernetes.io/name": "edge-sleeper"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "edge-sleeper"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {EDGE_ROLE: "true"},
                        "tolerations": [EDGE_TOLERATION],
                        # One pod per edge node, so every edge node is used.
                        "affinity": {
                            "podAntiAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": [
                                    {
                                        "labelSelector": {"matchLabels": labels},
                                        "topologyKey": "kubernetes.io/hostname",
                                    }
                                ]
                            }
                        },
                        "containers": [
                            {
                                "name": "sleeper",
                                "image": TEST_IMAGE,
                                "command": ["python", "-c", "import time; time.sleep(3600)"],
                            }
                        ],
                    },
                },
            },
        },
    )
    wait_for(
        lambda: apps.read_namespaced_deployment(name="edge-sleeper", namespace=namespace).status,
        lambda s: (s.available_replicas or 0) == replicas,
        timeout=90,
        what=f"{replicas} available replicas",
    )
    pods = core.list_namespaced_pod(namespace).items
    nodes = _nodes_by_name(core)
    placed = [nodes[p.spec.node_name].metadata.labels for p in pods]
    assert all(lbl.get(EDGE_ROLE) == "true" for lbl in placed)
    assert {lbl.get(SIMULATOR_LABEL) for lbl in placed} == kinds
    assert all(p.status.phase == "Running" for p in pods)
    # On process nodes the pod really runs: its container reports a real start time and PID.
    real = [
        p for p in pods if nodes[p.spec.node_name].metadata.labels[SIMULATOR_LABEL] == "process"
    ]
    for pod in real:
        status = pod.status.container_statuses[0]
        assert status.state.running is not None
        assert status.container_id.startswith("process://")


def test_training_job_really_runs_and_completes(
    cluster: ClusterHandle,
    batch: client.BatchV1Api,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("the proof file is read from the host: process nodes only")
    out = tmp_path / "proof.txt"
    token = uuid.uuid4().hex
    batch.create_namespaced_job(
        namespace,
        _job("write-file", ["sh", "-c", f"echo {token} > /out/proof.txt"], host_dir=tmp_path),
    )
    wait_for(
        lambda: batch.read_namespaced_job("write-file", namespace),
        lambda j: job_condition(j, "Complete") or job_condition(j, "Failed"),
        timeout=60,
        what="the Job to finish",
    )
    job = batch.read_namespaced_job("write-file", namespace)
    assert job_condition(job, "Complete"), job.status
    assert out.read_text().split()[0] == token
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=write-file").items
    assert pod.spec.node_name.startswith("train-proc-"), pod.spec.node_name
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0


def test_job_exiting_3_fails_with_exit_code_3(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(
        namespace,
        _job(
            "exit-three",
            ["sh", "-c", "echo 'dataset is empty' > /dev/termination-log; exit 3"],
        ),
    )
    wait_for(
        lambda: batch.read_namespaced_job("exit-three", namespace),
        lambda j: job_condition(j, "Failed"),
        timeout=60,
        what="the Job to fail",
    )
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=exit-three").items
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    assert terminated.message.strip() == "dataset is empty"


@pytest.mark.parametrize("node_index", [0])
def test_http_server_in_a_pod_answers_on_its_pod_ip(
    cluster: ClusterHandle, core: client.CoreV1Api, namespace: str, node_index: int
) -> None:
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    ip = web_pod(core, namespace, f"edge-proc-{node_index}")
    assert ip, "the pod reports no IP"
    assert not ip.startswith("127."), f"expected a real, non-loopback pod IP, got {ip}"
    with urllib.request.urlopen(f"http://{ip}:8080/index.html", timeout=5) as resp:
        assert resp.read().decode().strip() == "hello from web"


FETCH = """
import sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}:8080/index.html", timeout=5) as reply:
    open("/dev/termination-log", "w").write(reply.read().decode())
"""


def test_a_pod_reaches_a_pod_on_another_node_and_nothing_beyond_the_machine(
    cluster: ClusterHandle, core: client.CoreV1Api, namespace: str
) -> None:
    """Kubernetes' network model: every pod reaches every pod (the operator reads the
    edge pods' metrics this way); the host forwards between node bridges only."""
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    ip = web_pod(core, namespace, "edge-proc-0")
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "client"},
            "spec": {
                "nodeName": "edge-proc-1",
                "restartPolicy": "Never",
                "tolerations": [EDGE_TOLERATION],
                "containers": [
                    {"name": "fetch", "image": TEST_IMAGE, "command": ["python", "-c", FETCH, ip]}
                ],
            },
        },
    )
    done = wait_for(
        lambda: core.read_namespaced_pod("client", namespace),
        lambda p: p.status.phase in ("Succeeded", "Failed"),
        timeout=60,
        what="the client pod on edge-proc-1 to finish",
    )
    terminated = done.status.container_statuses[0].state.terminated
    assert done.status.phase == "Succeeded", terminated.message
    assert terminated.message.strip() == "hello from web"
    # Whatever a pod sends elsewhere meets an unreachable default, never the host's route.
    table = subprocess.run(
        ["ip", "route", "show", "table", "4242"], capture_output=True, text=True, check=True
    ).stdout
    assert "unreachable default" in table
    rules = subprocess.run(["ip", "rule", "show"], capture_output=True, text=True, check=True)
    assert "from 10.89.0.0/16 lookup 4242" in rules.stdout


def test_the_api_server_reaches_a_node_by_its_internal_ip_never_its_name(
    cluster: ClusterHandle, core: client.CoreV1Api, namespace: str
) -> None:
    """`kubectl logs` goes from the API server to the node's kubelet port. A process node
    has no kubelet server, so it fails, but at the node's InternalIP: the API server never
    looks the node's name up in the machine's resolver (it did before)."""
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    web_pod(core, namespace, "edge-proc-0")
    internal = {a.type: a.address for a in core.read_node("edge-proc-0").status.addresses}
    with pytest.raises(client.ApiException) as refused:
        core.read_namespaced_pod_log("web", namespace)
    body = str(refused.value.body)
    assert f"{internal['InternalIP']}:10250" in body, body
    assert "lookup" not in body, body
