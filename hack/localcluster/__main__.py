"""`hack/cluster`: up, down, status, build and node offline/online for the local cluster."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from localcluster import build, cluster
from localcluster.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hack/cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build what is missing, start or repair the cluster")
    up.add_argument(
        "--kwok-nodes", type=int, default=None, help="number of KWOK edge nodes (default 6)"
    )
    up.add_argument(
        "--real-nodes",
        type=int,
        default=None,
        metavar="N",
        help="N edge nodes and one training node run by the real kubelet on containerd "
        "(0 removes them; default: as last time, else none)",
    )
    down = sub.add_parser("down", help="stop every process the cluster started")
    down.add_argument("--purge", action="store_true", help="also delete the cluster's state")
    st = sub.add_parser("status", help="show components and nodes; exit 1 if any crashed")
    st.add_argument("--json", action="store_true")
    sub.add_parser("build", help="only build the pinned binaries")
    sub.add_parser("env", help="print the export line for KUBECONFIG")
    node = sub.add_parser("node", help="take a process node offline or bring it back")
    node.add_argument("action", choices=["offline", "online"])
    node.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code."""
    args = _parser().parse_args(argv)
    settings = Settings()
    if args.command == "build":
        return build.main()
    if args.command == "env":
        print(f"export KUBECONFIG={settings.kubeconfig}")
        return 0
    if args.command == "up":
        for flag, value in (("--kwok-nodes", args.kwok_nodes), ("--real-nodes", args.real_nodes)):
            if value is not None and value < 0:
                print(f"error: {flag} must be 0 or more", file=sys.stderr)
                return 2
        # Fleet sizes stick: a later plain `up` keeps a 1,000-node fleet as it is.
        kwok = _sticky(settings, "kwok-edge-nodes", args.kwok_nodes)
        real = _sticky(settings, "real-edge-nodes", args.real_nodes)
        try:
            fleet = settings.fleet
            if real is not None:
                fleet = replace(fleet, real_edge=real, real_training=min(real, 1))
            cluster.up(replace(settings, fleet=fleet), kwok_edge=kwok)
        except cluster.ClusterError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    if args.command == "down":
        left = cluster.down(settings, purge=args.purge)
        if left:
            print("error: still running after down: " + ", ".join(left), file=sys.stderr)
            return 1
        print("local cluster is down; nothing of it is left running")
        return 0
    if args.command == "node":
        try:
            cluster.set_node_offline(settings, args.name, args.action == "offline")
        except (cluster.ClusterError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{args.name} is {args.action} (the node agent acts within a second)")
        return 0
    return _status(settings, args.json)


def _sticky(settings: Settings, name: str, value: int | None) -> int | None:
    """A fleet size given once and kept for later plain `up`s (None: never given)."""
    remembered = settings.cluster_dir / name
    if value is None:
        return int(remembered.read_text()) if remembered.exists() else None
    remembered.parent.mkdir(parents=True, exist_ok=True)
    remembered.write_text(f"{value}\n")
    return value


def _status(settings: Settings, as_json: bool) -> int:
    rows = cluster.status(settings)
    nodes: dict[str, dict[str, int]] = {}
    if any(r.name == "kube-apiserver" and r.state == "running" for r in rows):
        try:
            nodes = cluster.node_summary(settings)
        except Exception as err:  # status must report, not crash, when the API is sick
            print(f"warning: could not list nodes: {err}", file=sys.stderr)
    if as_json:
        print(json.dumps({"components": [r.__dict__ for r in rows], "nodes": nodes}, indent=1))
    else:
        for r in rows:
            print(f"{r.name:<24} {r.state:<8} {r.pid or ''}")
        for key, row in sorted(nodes.items()):
            print(f"nodes {key:<18} {row['ready']}/{row['total']} Ready")
    if any(r.state == "crashed" for r in rows):
        crashed = [r.name for r in rows if r.state == "crashed"]
        print(
            f"error: crashed: {', '.join(crashed)} (logs in {settings.log_dir}); "
            "`hack/cluster up` restarts them",
            file=sys.stderr,
        )
        return 1
    return 0 if all(r.state == "running" for r in rows) else 3


if __name__ == "__main__":
    sys.exit(main())
