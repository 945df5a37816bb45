"""Container processes: start through the launcher, signal, reap, pid files, messages.

Each container is its own session (process group), so signalling the group
reaches everything it started; its pid file (pid and kernel start time) lets a
later agent find and kill it if this agent dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HACK_DIR = str(Path(__file__).resolve().parents[2])
MAX_MESSAGE = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048


@dataclass(frozen=True)
class Launch:
    """Everything the launcher needs to start one container."""

    command: list[str]
    env: dict[str, str]
    working_dir: str
    hostname: str
    mounts: list[dict[str, Any]]
    mountpoint_record: str
    netns: str | None  # None: host network, the launcher makes its own mount namespace


def start(launch: Launch, spec_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the container; the returned Popen's pid is the container's own process."""
    spec = {
        "command": launch.command,
        "env": launch.env,
        "workingDir": launch.working_dir,
        "hostname": launch.hostname,
        "mounts": launch.mounts,
        "mountpointRecord": launch.mountpoint_record,
        "privateMountNamespace": launch.netns is None,
    }
    spec_path.unlink(missing_ok=True)
    # 0600 from the start: it holds the container's env, secrets included.
    fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    argv = [sys.executable, "-m", "localcluster.agent.launch", str(spec_path)]
    if launch.netns:
        argv = ["ip", "netns", "exec", launch.netns, *argv]
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                "PYTHONPATH": HACK_DIR,
            },
            cwd=str(spec_path.parent),
            start_new_session=True,
        )


def exit_status(returncode: int) -> tuple[int, int]:
    """(exitCode, signal) as a container runtime reports them: killed by N is 128+N."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, 0


def signal_group(pid: int, sig: int) -> bool:
    """Signal the container's process group; False if it is already gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def start_ticks(pid: int) -> int | None:
    """The kernel start time of a process (field 22 of /proc/PID/stat), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parens: split after its last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[19])


def write_pid_file(path: Path, pid: int) -> None:
    """Record a container process so a later agent can find it."""
    path.write_text(json.dumps({"pid": pid, "start": start_ticks(pid)}))


def kill_recorded(path: Path) -> int | None:
    """Kill the process group recorded in a pid file if that very process still runs.

    Returns the pid that was killed, or None. The file is removed either way.
    """
    try:
        record = json.loads(path.read_text())
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    killed = None
    ticks = start_ticks(pid)
    if ticks is not None and ticks == record.get("start"):
        signal_group(pid, signal.SIGKILL)
        killed = pid
    with contextlib.suppress(OSError):
        path.unlink()
    return killed


def termination_message(
    message_file: Path, policy: str, log_path: Path, log_offset: int, exit_code: int
) -> str:
    """The termination message: its file, or (FallbackToLogsOnError) the last log lines."""
    try:
        with open(message_file, "rb") as f:
            message = f.read(MAX_MESSAGE).decode(errors="replace")
    except OSError:
        message = ""
    if not message and policy == "FallbackToLogsOnError" and exit_code != 0:
        message = _tail_since(log_path, log_offset)
    return message


def _tail_since(path: Path, offset: int) -> str:
    """The last log lines this container instance wrote (the log spans restarts)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(offset, size - FALLBACK_BYTES))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-FALLBACK_LINES:])
