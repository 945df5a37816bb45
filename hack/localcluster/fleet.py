"""The simulated fleet: which nodes exist, with the labels and taints of k3s edge boxes.

Edge nodes, KWOK, process and real alike, carry `node-role.kubernetes.io/edge=true` and
the matching NoSchedule taint, so only workloads meant for the edge land there. Nodes of
the real-kubelet tier also carry `edgeml.io/runtime=containerd:NoSchedule`: only pods
that tolerate it (whose images exist on them) land there.
KWOK nodes of the training pool are tainted as fake: pods there would "complete"
without running, so real training only lands on the process training node.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from localcluster.settings import Fleet

EDGE_ROLE = "node-role.kubernetes.io/edge"
POOL_LABEL = "edgeml.io/pool"
SIMULATOR_LABEL = "edgeml.io/simulator"
EDGE_TAINT = {"key": EDGE_ROLE, "value": "true", "effect": "NoSchedule"}
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
RUNTIME_TAINT = {"key": "edgeml.io/runtime", "value": "containerd", "effect": "NoSchedule"}
REAL_TRAINING_OFFSET = 20
"""Real training nodes' subnet numbers start this far after the real edge nodes'."""


@dataclass(frozen=True)
class NodeSpec:
    """A simulated node: its name, labels and taints, and which simulator runs it."""

    name: str
    simulator: str  # "kwok", "process" or "kubelet"
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    index: int = 0  # process and real nodes: the node's subnet number

    def to_agent_json(self) -> dict[str, Any]:
        """The shape the node agent reads from its nodes file."""
        return {
            "name": self.name,
            "labels": self.labels,
            "taints": list(self.taints),
            "index": self.index,
        }


def _labels(name: str, simulator: str, pool: str, zone: str, arch: str) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "node.kubernetes.io/instance-type": "k3s",
        "topology.kubernetes.io/region": "edge" if pool == "edge" else "core",
        "topology.kubernetes.io/zone": zone,
        POOL_LABEL: pool,
        SIMULATOR_LABEL: simulator,
    }
    if pool == "edge":
        labels[EDGE_ROLE] = "true"
    else:
        labels["node-role.kubernetes.io/worker"] = "true"
    return labels


def plan_fleet(fleet: Fleet, kwok_edge: int | None = None) -> list[NodeSpec]:
    """Every node of the fleet; deterministic, so `up` twice names the same nodes."""
    nodes: list[NodeSpec] = []
    for i in range(fleet.process_edge):
        name = f"edge-proc-{i}"
        zone = fleet.zones[i % len(fleet.zones)]
        nodes.append(
            NodeSpec(
                name,
                "process",
                _labels(name, "process", "edge", zone, "amd64"),
                (EDGE_TAINT,),
                index=1 + i,
            )
        )
    for i in range(fleet.process_training):
        name = f"train-proc-{i}"
        nodes.append(
            NodeSpec(
                name,
                "process",
                _labels(name, "process", "training", "core-a", "amd64"),
                index=100 + i,
            )
        )
    for i in range(fleet.real_edge):
        name = f"edge-real-{i}"
        zone = fleet.zones[i % len(fleet.zones)]
        nodes.append(
            NodeSpec(
                name,
                "kubelet",
                _labels(name, "kubelet", "edge", zone, "amd64"),
                (EDGE_TAINT, RUNTIME_TAINT),
                index=fleet.real_index + i,
            )
        )
    for i in range(fleet.real_training):
        name = f"train-real-{i}"
        nodes.append(
            NodeSpec(
                name,
                "kubelet",
                _labels(name, "kubelet", "training", "core-a", "amd64"),
                (RUNTIME_TAINT,),
                index=fleet.real_index + REAL_TRAINING_OFFSET + i,
            )
        )
    for i in range(fleet.kwok_edge if kwok_edge is None else kwok_edge):
        name = f"edge-kwok-{i:04d}"
        zone = fleet.zones[i % len(fleet.zones)]
        # Roughly a third of the fleet is ARM, as in shops mixing Pis and NUCs.
        arch = "arm64" if i % 3 == 2 else "amd64"
        nodes.append(
            NodeSpec(name, "kwok", _labels(name, "kwok", "edge", zone, arch), (EDGE_TAINT,))
        )
    for i in range(fleet.kwok_training):
        name = f"train-kwok-{i}"
        nodes.append(
            NodeSpec(
                name,
                "kwok",
                _labels(name, "kwok", "training", "core-a", "amd64"),
                (KWOK_TAINT,),
            )
        )
    return nodes


def kwok_node_manifest(spec: NodeSpec) -> dict[str, Any]:
    """The Node object KWOK takes over (it manages nodes with the `fake` annotation)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": spec.labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": list(spec.taints)},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        },
    }


def apply_kwok_nodes(core_v1: Any, specs: list[NodeSpec], parallelism: int = 8) -> int:
    """Create the KWOK nodes that do not exist yet; return how many were created."""
    existing = {
        n.metadata.name for n in core_v1.list_node(label_selector=f"{SIMULATOR_LABEL}=kwok").items
    }
    todo = [s for s in specs if s.simulator == "kwok" and s.name not in existing]

    def create(spec: NodeSpec) -> None:
        core_v1.create_node(kwok_node_manifest(spec))

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(create, todo))
    return len(todo)
