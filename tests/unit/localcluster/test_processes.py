"""PID files are trusted only for live processes of this cluster; strays are found by marker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster.processes import (
    Component,
    ComponentError,
    Supervisor,
    belongs_to,
    find_strays,
    port_in_use,
)


@pytest.fixture
def supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(str(tmp_path), tmp_path / "pids", tmp_path / "logs")


def _sleeper(name: str = "sleeper") -> Component:
    return Component(name, [sys.executable, "-c", "import time; time.sleep(60)"])


def test_started_process_is_running_and_stopped_by_pid(supervisor: Supervisor) -> None:
    pid = supervisor.start(_sleeper())
    assert supervisor.state("sleeper") == "running"
    assert belongs_to(pid, supervisor.cluster_id)
    assert find_strays(supervisor.cluster_id) == [pid]
    assert supervisor.stop("sleeper", grace=5)
    assert supervisor.state("sleeper") == "stopped"
    assert find_strays(supervisor.cluster_id) == []


def test_pid_file_of_a_foreign_process_is_stale(supervisor: Supervisor) -> None:
    supervisor.pid_dir.mkdir(parents=True)
    supervisor.pid_file("etcd").write_text(f"{os.getpid()}\n")
    assert supervisor.pid("etcd") is None
    assert supervisor.state("etcd") == "crashed"
    assert not supervisor.stop("etcd")  # nothing of ours to stop, and the test lives on


def test_process_dying_at_start_is_reported_with_its_log(supervisor: Supervisor) -> None:
    argv = [sys.executable, "-c", "print('no config'); raise SystemExit(7)"]
    comp = Component("broken", argv, ready=lambda: False, ready_timeout=30)
    with pytest.raises(
        ComponentError, match=r"broken exited with code 7 while starting(.|\n)*no config"
    ):
        supervisor.start(comp)


def test_process_never_ready_is_reported(supervisor: Supervisor) -> None:
    comp = Component("slow", _sleeper().argv, ready=lambda: False, ready_timeout=0.5)
    with pytest.raises(ComponentError, match="slow did not become ready within 0s"):
        supervisor.start(comp)
    supervisor.stop("slow", grace=5)


def test_taken_port_is_refused_before_starting(supervisor: Supervisor) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split("port ")[1].split()[0])
        assert port_in_use(port)
        with pytest.raises(ComponentError, match=f"port {port} on 127.0.0.1 is already taken"):
            supervisor.start(Component("clash", _sleeper().argv, ports=(port,)))
        assert supervisor.state("clash") == "stopped"
    finally:
        server.kill()
        server.wait()
