"""`python -m localcluster.agent`: run the process node agent in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import threading
from pathlib import Path

from localcluster.agent import log, netns
from localcluster.agent.context import NodeContext
from localcluster.agent.kube import Kube
from localcluster.agent.nodes import NodeAgent, load_nodes


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The agent's command line."""
    p = argparse.ArgumentParser(
        prog="python -m localcluster.agent",
        description="Simulated kubelet: pods run as local processes, one netns each.",
    )
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the agent's identity")
    p.add_argument("--state-dir", required=True, type=Path, help="pod dirs, logs, offline flags")
    p.add_argument(
        "--nodes-file", required=True, type=Path, help="JSON list of {name, labels, taints, index}"
    )
    p.add_argument(
        "--forward-port",
        action="append",
        type=int,
        default=[],
        help="host 127.0.0.1 port made reachable at 127.0.0.1 in every pod (first: the API server)",
    )
    p.add_argument(
        "--python-bin-dir",
        default=str(Path(sys.executable).parent),
        help="put first on the containers' PATH (default: this Python's bin dir)",
    )
    return p.parse_args(argv)


def remove_created_mountpoints(record: Path) -> None:
    """Remove the empty mount points launchers created on the host (deepest first)."""
    if not record.exists():
        return
    for line in reversed(record.read_text().splitlines()):
        path = Path(line.strip())
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
                path.rmdir()
            elif path.is_file() and path.stat().st_size == 0:
                path.unlink()
    record.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """Run the agent; returns the exit code."""
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("the node agent needs root (network namespaces, bridges, mounts)", file=sys.stderr)
        return 2
    netns.init_root()
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = open(state_dir / "agent.lock", "w")  # noqa: SIM115 -- held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"another node agent is running on {state_dir}", file=sys.stderr)
        return 2
    configs = load_nodes(args.nodes_file)
    kube = Kube(args.kubeconfig)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agents = [
        NodeAgent(
            cfg,
            NodeContext(
                name=cfg.name,
                index=cfg.index,
                kube=kube,
                state_dir=state_dir,
                forward_ports=tuple(args.forward_port),
                python_bin_dir=args.python_bin_dir,
            ),
        )
        for cfg in configs
    ]
    log.info("agent", f"starting {len(agents)} node(s): {', '.join(c.name for c in configs)}")
    started: list[NodeAgent] = []
    try:
        for agent in agents:
            agent.start()
            started.append(agent)
        while not stop.wait(1.0):
            pass
        log.info("agent", "stopping: killing pods' processes, removing network namespaces")
    finally:
        threads = [threading.Thread(target=a.stop, daemon=True) for a in started]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        remove_created_mountpoints(state_dir / "created-mountpoints.txt")
    log.info("agent", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
