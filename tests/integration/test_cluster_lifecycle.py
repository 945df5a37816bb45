"""up / status / down of a second, throwaway local cluster, with the faults users meet.

It runs on its own ports and state directory (sharing only the build cache), with
KWOK nodes but no process nodes, so it never touches the cluster the other tests use.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.cluster import leftovers
from localcluster.processes import find_strays
from localcluster.settings import Settings
from support.cluster import cluster_cli, spare_cluster, spare_env

PORT_OFFSET = 200


@pytest.fixture
def spare(tmp_path: Path) -> Iterator[tuple[dict[str, str], Settings]]:
    """The environment and settings of a second cluster; always torn down."""
    env = spare_env(tmp_path / "home", PORT_OFFSET)
    with spare_cluster(env) as settings:
        yield env, settings


def test_up_twice_status_crash_and_down_leave_nothing(
    spare: tuple[dict[str, str], Settings],
) -> None:
    env, settings = spare
    apiserver_port = settings.ports.apiserver

    # A port already taken: a clear message and a non-zero exit.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", apiserver_port))
        squatter.listen()
        blocked = cluster_cli("up", env=env)
    assert blocked.returncode == 1
    assert f"port {apiserver_port} on 127.0.0.1 is already taken" in blocked.stderr
    assert "hack/cluster down" in blocked.stderr

    # A stale PID file (a PID that is not ours) is not trusted, and up proceeds.
    settings.pid_dir.mkdir(parents=True, exist_ok=True)
    (settings.pid_dir / "kube-scheduler.pid").write_text(f"{os.getpid()}\n")
    first = cluster_cli("up", env=env)
    assert first.returncode == 0, first.stderr
    assert "etcd                     already running" in first.stdout
    assert "kube-scheduler           had stopped unexpectedly" in first.stdout
    assert cluster_cli("status", env=env).returncode == 0

    # up twice is harmless: everything is already running.
    second = cluster_cli("up", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already running") == 7, second.stdout  # s3 too

    # A component that dies is reported by status, and up restarts it.
    scheduler_pid = int((settings.pid_dir / "kube-scheduler.pid").read_text())
    os.kill(scheduler_pid, signal.SIGKILL)
    crashed = cluster_cli("status", env=env)
    assert crashed.returncode == 1
    assert "crashed: kube-scheduler" in crashed.stderr
    repaired = cluster_cli("up", env=env)
    assert repaired.returncode == 0, repaired.stderr
    assert "kube-scheduler           had stopped unexpectedly" in repaired.stdout

    # down stops everything, by PID, and leaves no process, port or link behind.
    down = cluster_cli("down", env=env)
    assert down.returncode == 0, down.stderr
    assert "nothing of it is left running" in down.stdout
    assert find_strays(str(settings.cluster_dir)) == []
    assert leftovers(settings) == []
    assert cluster_cli("status", env=env).returncode == 3


def test_component_dying_at_start_is_reported_and_down_cleans_up(
    spare: tuple[dict[str, str], Settings],
) -> None:
    env, settings = spare
    assert cluster_cli("up", env=env).returncode == 0
    assert cluster_cli("down", env=env).returncode == 0
    # A damaged serving certificate makes kube-apiserver exit as it starts.
    (settings.pki_dir / "apiserver.crt").write_text("not a certificate\n")
    broken = cluster_cli("up", env=env)
    assert broken.returncode == 1
    assert "kube-apiserver exited with code" in broken.stderr
    assert "while starting" in broken.stderr
    down = cluster_cli("down", env=env)
    assert down.returncode == 0, down.stderr
    assert find_strays(str(settings.cluster_dir)) == []
    assert leftovers(settings) == []


def test_install_on_a_cluster_that_never_had_the_crds(
    spare: tuple[dict[str, str], Settings],
) -> None:
    """hack/install, as the demo runs it, on a brand-new cluster: CRDs first, then the rest."""
    import subprocess

    from localcluster.build import binary

    env, settings = spare
    assert cluster_cli("up", env=env).returncode == 0
    # The binaries are the shared build's (Settings' bin_dir reads the environment).
    kubectl = [str(binary(Settings(), "kubectl")), "--kubeconfig", str(settings.kubeconfig)]
    crds = subprocess.run(
        [*kubectl, "get", "crds", "-o", "name"], capture_output=True, text=True, check=True
    )
    assert crds.stdout.strip() == "", f"a new cluster has no CRDs, this one has {crds.stdout}"
    installed = subprocess.run(
        [str(Path(__file__).resolve().parents[2] / "hack" / "install")],
        env={**os.environ, **env, "KUBECONFIG": str(settings.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The objects that need the CRDs first are applied with them (the leader-election
    # Role here; kopf's ClusterKopfPeering when the chart renders peering instead).
    role = subprocess.run(
        [*kubectl, "-n", "edgeml-system", "get", "role", "edgeml-leader-election", "-o", "name"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert role.returncode == 0, role.stderr
    deployment = subprocess.run(
        [*kubectl, "-n", "edgeml-system", "get", "deployment", "edgeml", "-o", "name"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert deployment.returncode == 0, deployment.stderr
