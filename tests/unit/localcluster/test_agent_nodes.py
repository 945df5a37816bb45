"""Node, Lease and status bodies, and the nodes file."""

import json
from pathlib import Path

import pytest

from localcluster.agent.nodes import (
    NodeConfig,
    lease_object,
    load_nodes,
    merge_taints,
    node_object,
    node_status,
)

pytestmark = pytest.mark.unit

CFG = NodeConfig(
    name="edge-proc-0",
    index=4,
    labels={"kubernetes.io/arch": "arm64", "edge": "true"},
    taints=({"key": "edge", "value": "true", "effect": "NoSchedule"},),
)


def test_load_nodes(tmp_path: Path) -> None:
    f = tmp_path / "nodes.json"
    f.write_text(
        json.dumps(
            [
                {"name": "a", "index": 1, "labels": {"x": "y"}, "taints": []},
                {"name": "b", "index": 2},
            ]
        )
    )
    nodes = load_nodes(f)
    assert [n.name for n in nodes] == ["a", "b"]
    assert nodes[0].labels == {"x": "y"}
    f.write_text(json.dumps([{"name": "a", "index": 1}, {"name": "b", "index": 1}]))
    with pytest.raises(ValueError, match="unique"):
        load_nodes(f)
    f.write_text(json.dumps([{"name": "a", "index": 201}]))
    with pytest.raises(ValueError, match=r"1\.\.200"):
        load_nodes(f)


def test_node_object_and_status() -> None:
    obj = node_object(CFG)
    assert obj["metadata"] == {"name": "edge-proc-0", "labels": CFG.labels}
    assert obj["spec"]["taints"] == [{"key": "edge", "value": "true", "effect": "NoSchedule"}]
    status = node_status(CFG, [], "T1")
    assert status["capacity"] == {
        "cpu": "4",
        "memory": "8Gi",
        "pods": "110",
        "ephemeral-storage": "50Gi",
    }
    assert status["allocatable"] == status["capacity"]
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "10.89.4.1"},
        {"type": "Hostname", "address": "edge-proc-0"},
    ]
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.35.4"
    assert info["containerRuntimeVersion"] == "process://edgeml-agent"
    assert info["architecture"] == "arm64"
    ready = {c["type"]: c for c in status["conditions"]}
    assert ready["Ready"]["status"] == "True"
    assert ready["Ready"]["reason"] == "KubeletReady"
    assert {ready[t]["status"] for t in ("MemoryPressure", "DiskPressure", "PIDPressure")} == {
        "False"
    }


def test_transition_times_kept_only_while_unchanged() -> None:
    previous = [
        {"type": "Ready", "status": "Unknown", "lastTransitionTime": "T0"},
        {"type": "DiskPressure", "status": "False", "lastTransitionTime": "T0"},
    ]
    conds = {c["type"]: c for c in node_status(CFG, previous, "T1")["conditions"]}
    assert conds["Ready"]["lastTransitionTime"] == "T1"
    assert conds["DiskPressure"]["lastTransitionTime"] == "T0"
    assert conds["Ready"]["lastHeartbeatTime"] == "T1"


def test_merge_taints_keeps_the_controllers() -> None:
    existing = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"key": "old-ours", "effect": "NoSchedule"},
        {"key": "edge", "value": "old", "effect": "NoSchedule"},
    ]
    assert merge_taints(CFG.taints, existing) == [
        {"key": "edge", "value": "true", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
    ]


def test_lease_like_kubelets() -> None:
    lease = lease_object("edge-proc-0", "uid-1", "2026-01-01T00:00:00.000000Z")
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "edge-proc-0", "uid": "uid-1"}
    ]
    assert lease["spec"] == {
        "holderIdentity": "edge-proc-0",
        "leaseDurationSeconds": 20,
        "renewTime": "2026-01-01T00:00:00.000000Z",
    }
