"""A process node taken offline goes NotReady within its lease time and comes back Ready."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from support.cluster import ClusterHandle
from support.kube import node_ready
from support.wait import wait_for

NODE = "edge-proc-2"
# Lease 20 s (node-monitor-grace-period) plus the node lifecycle controller's 2 s period.
NOT_READY_WITHIN = 40


def test_offline_process_node_goes_not_ready_and_comes_back(
    cluster: ClusterHandle, core: client.CoreV1Api
) -> None:
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    wait_for(
        lambda: core.read_node(NODE),
        lambda n: node_ready(n) == "True",
        timeout=30,
        what=f"{NODE} Ready",
    )
    result = cluster.cli("node", "offline", NODE)
    assert result.returncode == 0, result.stderr
    went_offline = time.monotonic()
    try:
        wait_for(
            lambda: core.read_node(NODE),
            lambda n: node_ready(n) in ("False", "Unknown"),
            timeout=NOT_READY_WITHIN,
            what=f"{NODE} to go NotReady after its lease expired",
        )
        took = time.monotonic() - went_offline
        print(f"{NODE} NotReady {took:.1f}s after going offline")
    finally:
        result = cluster.cli("node", "online", NODE)
        assert result.returncode == 0, result.stderr
    wait_for(
        lambda: core.read_node(NODE),
        lambda n: node_ready(n) == "True",
        timeout=30,
        what=f"{NODE} to be Ready again after coming back online",
    )


def test_unknown_node_is_refused_with_a_clear_message(cluster: ClusterHandle) -> None:
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    result = cluster.cli("node", "offline", "no-such-node")
    assert result.returncode == 2
    assert "no-such-node is not a process node" in result.stderr
