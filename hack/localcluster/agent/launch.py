"""The container launcher: run inside the pod's namespaces, set up mounts, exec the command.

The agent starts `ip netns exec <pod netns> python -m localcluster.agent.launch SPEC`:
`ip netns exec` puts this process in the pod's network namespace and a private
mount namespace, so the bind mounts made here are the container's alone and
never show in the host's mount table. Then it execs the container's command, so
its pid is the container's. Standard library only: it runs before anything else.

SPEC is a JSON file: command, env, workingDir, hostname, mounts
[{source, target, readOnly}], mountpointRecord, privateMountNamespace.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OSError(f"mount {' '.join(args)}: {proc.stderr.strip()}")


def _record(path: Path, record: str) -> None:
    if record:
        # O_APPEND: concurrent launchers each add whole lines.
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{path}\n".encode())
        finally:
            os.close(fd)


def ensure_mountpoint(target: Path, is_file: bool, record: str) -> None:
    """Create the mount point (and missing parents) on the host, recording what was created."""
    missing: list[Path] = []
    parent = target.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        try:
            d.mkdir()
            _record(d, record)
        except FileExistsError:
            pass
    if target.exists() or target.is_symlink():
        return
    try:
        if is_file:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
        else:
            target.mkdir()
        _record(target, record)
    except FileExistsError:
        pass


def _runtime_paths() -> list[Path]:
    """Where the command's interpreter and code live: the project checkout (its .venv and
    sources) and the base Python install. The image is ignored on process nodes, so these
    must stay visible whatever the pod mounts (an emptyDir on /tmp would hide a checkout
    under /tmp)."""
    repo = Path(__file__).resolve().parents[3]
    paths = {repo, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    return sorted(p for p in paths if p.is_dir())


def apply_mounts(mounts: list[dict[str, Any]], record: str) -> None:
    """Bind-mount every volume onto its target, read-only where asked.

    Every source is opened before anything is mounted, and mounted from that open
    handle: a source is a host path (as kubelet treats a hostPath), so an earlier mount
    (say an emptyDir on /tmp) must not hide a later source that lives under it. The same
    goes for the runtime the command runs with, re-exposed last if a mount hid it.
    """
    handles = [os.open(str(Path(m["source"])), os.O_PATH) for m in mounts]
    runtime = [(path, os.open(str(path), os.O_PATH)) for path in _runtime_paths()]
    try:
        for m, fd in zip(mounts, handles, strict=True):
            target = Path(m["target"])
            ensure_mountpoint(target, not stat.S_ISDIR(os.fstat(fd).st_mode), record)
            # /proc/<pid>/fd/N resolves to the opened object itself, whatever now covers its path.
            _mount("--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", str(target))
            if m.get("readOnly"):
                _mount("-o", "remount,bind,ro", str(target))
        for path, fd in runtime:
            try:
                seen = os.stat(path)
                visible = (seen.st_dev, seen.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
            except OSError:
                visible = False
            if not visible:
                path.mkdir(parents=True, exist_ok=True)  # inside the volume that hid it
                _mount("--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", str(path))
    finally:
        for fd in handles + [fd for _, fd in runtime]:
            os.close(fd)


def main(argv: list[str]) -> int:
    """Set up the container's namespaces and mounts, then exec its command."""
    if len(argv) != 2:
        print("usage: python -m localcluster.agent.launch SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    try:
        if spec.get("privateMountNamespace"):
            # Host-network pods do not go through `ip netns exec`: make the mount namespace here.
            _unshare(CLONE_NEWNS)
            _mount("--make-rslave", "/")
        if spec.get("hostname"):
            _unshare(CLONE_NEWUTS)
            socket.sethostname(spec["hostname"])
        apply_mounts(spec.get("mounts") or [], spec.get("mountpointRecord") or "")
        workdir = Path(spec.get("workingDir") or "/")
        workdir.mkdir(parents=True, exist_ok=True)
        os.chdir(workdir)
    except OSError as e:
        print(f"edgeml-agent: cannot start container: {e}", file=sys.stderr)
        return 128
    command = spec["command"]
    try:
        os.execvpe(command[0], command, spec.get("env") or {})  # noqa: S606
    except OSError as e:
        print(f"edgeml-agent: exec {command[0]!r}: {e}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
