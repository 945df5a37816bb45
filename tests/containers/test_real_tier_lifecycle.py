"""`hack/cluster down` after the real-kubelet tier, even after a crash, leaves nothing.

A second cluster (own ports, state directory, subnet numbers and cgroup names) with one
real node runs a pod, then its kubelet, containerd and the pod's shim are SIGKILLed as
a crash would; `down` must leave no process, mount, cgroup, iptables chain, bridge,
netns or host path behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from localcluster import realnodes
from localcluster.agent import network
from localcluster.cluster import leftovers
from localcluster.processes import find_strays
from support.cluster import cluster_cli, spare_cluster, spare_env
from support.containers import tolerate_real_nodes
from support.kube import pod_ready
from support.wait import wait_for

PORT_OFFSET = 300
NODE_INDEX = 190


def _mounts_mentioning(text: str) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if text in line]


def _iptables_chains() -> set[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return {line[1:].split()[0] for line in out.splitlines() if line.startswith(":")}


@pytest.fixture
def short_home() -> Iterator[Path]:
    """A state directory with a short path: the kubelet's unix sockets live under its
    --root-dir and a socket path must stay under 104 bytes (pytest's tmp_path is long)."""
    home = Path(tempfile.mkdtemp(prefix="eml-", dir="/tmp"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_down_after_a_crash_leaves_nothing_behind(short_home: Path) -> None:
    chains_before = _iptables_chains()
    env = spare_env(
        short_home,
        PORT_OFFSET,
        KWOK_EDGE_NODES=0,
        REAL_EDGE_NODES=1,
        REAL_TRAINING_NODES=0,
        REAL_NODE_INDEX=NODE_INDEX,
    )
    with spare_cluster(env) as settings:
        up = cluster_cli("up", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(settings.kubeconfig)))
        core.create_namespace({"metadata": {"name": "crash"}})
        name = f"held-{uuid.uuid4().hex[:4]}"
        core.create_namespaced_pod(
            "crash",
            {
                "metadata": {"name": name},
                "spec": {
                    "nodeName": "edge-real-0",
                    "tolerations": tolerate_real_nodes(),
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "p", "image": "localhost/edgeml/pause:3.10"}],
                    "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
                },
            },
        )
        wait_for(
            lambda: core.read_namespaced_pod(name, "crash"),
            pod_ready,
            timeout=90,
            what="a pod on the spare cluster's real node",
        )
        node = realnodes.known_nodes(settings)[0]
        assert node.spec.index == NODE_INDEX
        assert network.link_exists(network.bridge_name(NODE_INDEX))
        assert _mounts_mentioning(str(settings.cluster_dir)), "the pod mounted nothing?"

        # The crash: the node's kubelet, containerd and shims die without cleaning up.
        for pid in find_strays(str(settings.cluster_dir)):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if any(b in cmdline for b in (b"kubelet", b"containerd")):
                os.kill(pid, signal.SIGKILL)

        down = cluster_cli("down", env=env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert find_strays(str(settings.cluster_dir)) == []
        assert leftovers(settings) == []
        assert _mounts_mentioning(str(settings.cluster_dir)) == []
        assert not network.link_exists(network.bridge_name(NODE_INDEX))
        assert list(Path("/sys/fs/cgroup/memory").glob(f"{node.cgroup_name}*")) == []
        assert _iptables_chains() == chains_before
