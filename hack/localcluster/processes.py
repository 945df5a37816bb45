"""Start, find and stop the cluster's processes by PID file, and nothing else.

Every process gets the marker variable in its environment, so a PID file is
trusted only when the PID still belongs to this cluster (PIDs are reused), and
`down` can find strays that lost their PID file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.settings import MARKER_ENV


class ComponentError(RuntimeError):
    """A component that could not be started or is not healthy; the message says why."""


@dataclass(frozen=True)
class Component:
    """A long-running process of the cluster and how to tell it is ready."""

    name: str
    argv: Sequence[str]
    ports: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] = lambda: True
    ready_timeout: float = 60.0
    cwd: Path | None = None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def belongs_to(pid: int, cluster_id: str) -> bool:
    """True when `pid` is alive and was started by the cluster identified by `cluster_id`."""
    marker = f"{MARKER_ENV}={cluster_id}".encode()
    return marker in _environ(pid).split(b"\0") and not _is_zombie(pid)


def find_strays(cluster_id: str) -> list[int]:
    """Every live process carrying this cluster's marker, whatever its PID files say."""
    own = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and int(entry.name) != own
            and belongs_to(int(entry.name), cluster_id)
        ):
            pids.append(int(entry.name))
    return sorted(pids)


@dataclass(frozen=True)
class Supervisor:
    """PID files and logs of one cluster's processes."""

    cluster_id: str
    pid_dir: Path
    log_dir: Path

    def pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The component's PID if its PID file names a live process of ours."""
        try:
            pid = int(self.pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if belongs_to(pid, self.cluster_id) else None

    def state(self, name: str) -> str:
        """`running`, `stopped` (no PID file) or `crashed` (a PID file whose process is gone)."""
        if self.pid(name) is not None:
            return "running"
        return "crashed" if self.pid_file(name).exists() else "stopped"

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines of a component's log, for error messages."""
        try:
            text = self.log_file(name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, comp: Component) -> int:
        """Start `comp` detached, wait until it is ready, return its PID."""
        for port in comp.ports:
            if port_in_use(port):
                raise ComponentError(
                    f"{comp.name}: port {port} on 127.0.0.1 is already taken by another process "
                    f"(`ss -ltnp 'sport = :{port}'` shows which). Stop it, or move {comp.name} "
                    "with the EDGEML_*_PORT variables (see docs/local-cluster.md)."
                )
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **comp.env, MARKER_ENV: self.cluster_id}
        with self.log_file(comp.name).open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(comp.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=comp.cwd,
                start_new_session=True,
            )
        self.pid_file(comp.name).write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + comp.ready_timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise ComponentError(
                    f"{comp.name} exited with code {code} while starting; the end of its log "
                    f"({self.log_file(comp.name)}):\n{self.log_tail(comp.name)}"
                )
            with contextlib.suppress(Exception):
                if comp.ready():
                    return proc.pid
            if time.monotonic() > deadline:
                raise ComponentError(
                    f"{comp.name} did not become ready within {comp.ready_timeout:.0f}s; the end "
                    f"of its log ({self.log_file(comp.name)}):\n{self.log_tail(comp.name)}"
                )
            time.sleep(0.2)

    def stop(self, name: str, grace: float = 15.0) -> bool:
        """Stop a component: SIGTERM its process group, SIGKILL after `grace` s. True if it ran."""
        pid = self.pid(name)
        self.pid_file(name).unlink(missing_ok=True)
        if pid is None:
            return False
        terminate([pid], grace, self.cluster_id)
        return True


def terminate(pids: Sequence[int], grace: float, cluster_id: str) -> None:
    """SIGTERM each PID's process group, wait up to `grace` s, then SIGKILL what is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(belongs_to(p, cluster_id) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if belongs_to(pid, cluster_id):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
