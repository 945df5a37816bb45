"""The simulated fleet's shape: names, labels and taints of the k3s-like edge nodes."""

from __future__ import annotations

from collections import Counter

from localcluster.fleet import (
    EDGE_ROLE,
    EDGE_TAINT,
    KWOK_TAINT,
    POOL_LABEL,
    SIMULATOR_LABEL,
    kwok_node_manifest,
    plan_fleet,
)
from localcluster.settings import Fleet


def test_default_fleet_has_edge_and_training_pools_of_both_simulators() -> None:
    nodes = plan_fleet(Fleet(kwok_edge=6, kwok_training=2, process_edge=3, process_training=1))
    kinds = Counter((n.simulator, n.labels[POOL_LABEL]) for n in nodes)
    assert kinds == {
        ("process", "edge"): 3,
        ("process", "training"): 1,
        ("kwok", "edge"): 6,
        ("kwok", "training"): 2,
    }
    assert len({n.name for n in nodes}) == len(nodes)


def test_edge_nodes_look_like_k3s_edge_boxes_spread_over_zones() -> None:
    nodes = [n for n in plan_fleet(Fleet(kwok_edge=9)) if n.labels[POOL_LABEL] == "edge"]
    for node in nodes:
        assert node.labels[EDGE_ROLE] == "true"
        assert node.labels["node.kubernetes.io/instance-type"] == "k3s"
        assert EDGE_TAINT in node.taints
    kwok = [n for n in nodes if n.simulator == "kwok"]
    assert Counter(n.labels["topology.kubernetes.io/zone"] for n in kwok) == {
        "site-a": 3,
        "site-b": 3,
        "site-c": 3,
    }
    assert {n.labels["kubernetes.io/arch"] for n in kwok} == {"amd64", "arm64"}


def test_training_pool_real_work_only_lands_on_process_nodes() -> None:
    training = [n for n in plan_fleet(Fleet()) if n.labels[POOL_LABEL] == "training"]
    for node in training:
        assert EDGE_ROLE not in node.labels
        assert (KWOK_TAINT in node.taints) == (node.simulator == "kwok")


def test_process_nodes_have_unique_subnet_indexes() -> None:
    process = [
        n for n in plan_fleet(Fleet(process_edge=5, process_training=2)) if n.simulator == "process"
    ]
    indexes = [n.index for n in process]
    assert len(set(indexes)) == len(indexes)
    assert all(1 <= i <= 200 for i in indexes)


def test_fleet_plan_is_deterministic_and_scales_to_thousands() -> None:
    fleet = Fleet()
    assert plan_fleet(fleet, 1500) == plan_fleet(fleet, 1500)
    names = [n.name for n in plan_fleet(fleet, 1500) if n.simulator == "kwok"]
    assert "edge-kwok-1499" in names


def test_kwok_manifest_is_managed_by_kwok_and_keeps_labels_and_taints() -> None:
    spec = next(n for n in plan_fleet(Fleet()) if n.simulator == "kwok")
    manifest = kwok_node_manifest(spec)
    assert manifest["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert manifest["metadata"]["labels"][SIMULATOR_LABEL] == "kwok"
    assert manifest["spec"]["taints"] == list(spec.taints)
