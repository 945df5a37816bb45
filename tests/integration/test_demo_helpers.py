"""The demo's helpers never outlive it: its edge clients end with the shell that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster.processes import belongs_to
from localcluster.settings import Settings
from support.cluster import ClusterHandle
from support.processes import alive
from support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_traffic_client_ends_when_the_demo_shell_is_killed(
    cluster: ClusterHandle, namespace: str
) -> None:
    if not cluster.local:
        pytest.skip("the demo runs on the local cluster")
    # The demo's own lines: source the helper and start the clients; the shell then waits
    # until the test has looked, and dies without running its EXIT trap (SIGKILL), as a
    # closed terminal or a CI timeout would have it.
    script = (
        f"VENV={Path(sys.executable).parent.parent}; REPO_ROOT={REPO}; "
        f"source {REPO}/hack/lib/traffic.sh; "
        f"start_traffic {namespace} no-such-deployment vibration; "
        'echo "$traffic"; read -r _'
    )
    shell = subprocess.Popen(
        ["bash", "-c", script],
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert shell.stdout is not None
    pid = int(shell.stdout.readline())
    try:
        # `$traffic` is the client itself, not a subshell around it (until the forked
        # shell execs, /proc shows bash: wait for the exec) ...
        wait_for(
            lambda: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"),
            # (`env` execs it in turn: its own command line names the script too)
            lambda cmdline: (
                not cmdline[0].endswith(b"env")
                and any(part.endswith(b"hack/demo_canary.py") for part in cmdline)
            ),
            timeout=10,
            what=f"PID {pid} to be the demo's traffic client",
        )
        # ... it carries the cluster's marker, so `hack/cluster down` would stop it ...
        assert belongs_to(pid, str(Settings().cluster_dir))
        shell.kill()
        shell.wait(10)
        # ... and it ends by itself once its shell is gone.
        wait_for(
            lambda: alive(pid),
            lambda alive: not alive,
            timeout=15,
            what=f"the demo's traffic client (PID {pid}) to end after its shell was killed",
        )
    finally:
        shell.kill()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
