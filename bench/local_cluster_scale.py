"""Scale check: a local cluster with 1000 KWOK edge nodes, timed and weighed.

On a throwaway cluster (a temporary EDGEML_HOME, every port moved by +300, the
shared build cache, no process nodes) it runs

    python -m localcluster up --kwok-nodes 1000

and, while `up` runs, polls the API server every few seconds to see when the nodes
exist and when they are Ready. After every node is Ready it waits `--settle` seconds
and reads the resident memory (VmRSS, VmHWM) and CPU use of kube-apiserver, etcd
and kwok (and the other components), from the PID files in
$EDGEML_HOME/local/cluster/pids/. Then it times `down`. Results go to stdout and
to a section of docs/local-cluster-measurements.md.

    PYTHONPATH=hack .venv/bin/python bench/local_cluster_scale.py [--kwok-nodes 1000]

If `up` itself gives up (it waits a fixed time for the nodes), this script keeps
polling up to `--timeout` seconds and reports both.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_cluster_measure import (
    COMPONENTS,
    LoadSampler,
    Memory,
    Run,
    cli,
    command_line,
    component_pids,
    machine_line,
    memory_table,
    node_counts,
    now_utc,
    say,
    settle_and_measure,
    throwaway_cluster,
    write_section,
)

from localcluster import fleet
from localcluster.settings import Settings


@dataclass
class Progress:
    """What the poller saw: (seconds since start, nodes, Ready nodes) samples."""

    started: float
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    errors: int = 0

    def first(self, ready_at_least: int) -> float | None:
        """Seconds from start until `ready_at_least` nodes were Ready, if seen."""
        for t, _, ready in self.samples:
            if ready >= ready_at_least:
                return t
        return None

    def first_created(self, total: int) -> float | None:
        """Seconds from start until `total` nodes existed, if seen."""
        for t, created, _ in self.samples:
            if created >= total:
                return t
        return None


def poll(
    settings: Settings,
    names: set[str],
    progress: Progress,
    stop: threading.Event,
    every: float,
    until_ready: bool = True,
) -> None:
    """Record node counts until `stop` is set (or all are Ready, if `until_ready`).

    An API server that is not up yet, or too busy to answer, is just "not yet".
    """
    last = (-1, -1)
    while not stop.is_set():
        try:
            total, ready = node_counts(settings, names)
        except Exception:  # the API server is not up yet, or is too busy to answer
            progress.errors += 1
        else:
            t = time.monotonic() - progress.started
            progress.samples.append((t, total, ready))
            if (total, ready) != last:
                say(f"  poll: {total}/{len(names)} nodes exist, {ready} Ready ({t:.0f}s)")
                last = (total, ready)
            if until_ready and ready >= len(names):
                return
        stop.wait(every)


def _fmt(t: float | None) -> str:
    return "not reached" if t is None else f"{t:.1f}"


def scale(kwok_nodes: int, settle: float, timeout: float, every: float) -> str:
    """Bring the big cluster up, measure it, take it down; return the markdown section."""
    load = LoadSampler()
    with load, throwaway_cluster() as (env, settings):
        specs = fleet.plan_fleet(settings.fleet, kwok_nodes)
        names = {s.name for s in specs if s.simulator == "kwok"}
        say(f"expecting {len(names)} KWOK nodes ({kwok_nodes} edge + the training pool)")
        progress = Progress(time.monotonic())
        stop = threading.Event()
        poller = threading.Thread(
            target=poll, args=(settings, names, progress, stop, every), daemon=True
        )
        poller.start()
        up = cli(["up", "--kwok-nodes", str(kwok_nodes)], env)
        say(f"`up` returned {up.code} after {up.seconds:.1f}s; waiting for every node")
        poller.join(timeout=max(0.0, timeout - (time.monotonic() - progress.started)))
        stop.set()
        poller.join()
        all_ready = progress.first(len(names))
        final = progress.samples[-1] if progress.samples else (0.0, 0, 0)
        mem: list[Memory] = []
        settled = Progress(time.monotonic())
        etcd_mib = 0.0
        if all_ready is not None:
            # Keep polling while it settles: a node whose lease is renewed too late flaps.
            stop = threading.Event()
            watcher = threading.Thread(
                target=poll, args=(settings, names, settled, stop, every, False), daemon=True
            )
            watcher.start()
            pids = {n: p for n, p in component_pids(settings).items() if n in COMPONENTS}
            mem = settle_and_measure(pids, settle)
            stop.set()
            watcher.join()
            print(memory_table(mem), flush=True)
            total, ready = node_counts(settings, names)
            say(f"after settling: {ready}/{total} nodes Ready")
            final = (time.monotonic() - progress.started, total, ready)
            db = settings.cluster_dir / "etcd" / "member" / "snap" / "db"
            etcd_mib = db.stat().st_size / 2**20 if db.exists() else 0.0
        down = cli(["down"], env)
    result = Result(kwok_nodes, len(names), up, down, progress, settled, all_ready, final, etcd_mib)
    return _section(result, mem, settle, load)


@dataclass(frozen=True)
class Result:
    """What one scale run saw."""

    kwok_nodes: int
    expected: int
    up: Run
    down: Run
    progress: Progress  # from the start of `up`
    settled: Progress  # while settling, after every node was Ready
    all_ready: float | None
    final: tuple[float, int, int]
    etcd_mib: float


def _section(r: Result, mem: Sequence[Memory], settle: float, load: LoadSampler) -> str:
    kwok_nodes, expected, up, progress = r.kwok_nodes, r.expected, r.up, r.progress
    ready_while_settling = [ready for _, _, ready in r.settled.samples]
    marks = [m for m in (expected // 4, expected // 2, 3 * expected // 4) if m > 0]
    up_state = "0 (success)" if up.code == 0 else f"{up.code} (failure)"
    lines = [
        f"## Scale: {kwok_nodes} KWOK edge nodes",
        "",
        f"Measured {now_utc()} on {machine_line()}; load average during the run: "
        f"{load.summary()} (the main cluster and other work share the machine).",
        "",
        f"Command: `{command_line()}`, which runs "
        f"`python -m localcluster up --kwok-nodes {kwok_nodes}` on a throwaway cluster "
        "(temporary EDGEML_HOME, ports + 300, the shared build cache, no process nodes).",
        "",
        "| what | value |",
        "| --- | ---: |",
        f"| KWOK nodes expected ({kwok_nodes} edge + training pool) | {expected} |",
        f"| `up` exit code | {up_state} |",
        f"| `up` wall time, s | {up.seconds:.1f} |",
        f"| CPU used by the `up` process itself, s | {up.cpu_seconds:.1f} |",
        f"| all {expected} nodes created, s after start | "
        f"{_fmt(progress.first_created(expected))} |",
        *[f"| {m} nodes Ready, s after start | {_fmt(progress.first(m))} |" for m in marks],
        f"| all {expected} nodes Ready, s after start | {_fmt(r.all_ready)} |",
        f"| fewest nodes Ready while settling ({len(ready_while_settling)} polls) | "
        f"{min(ready_while_settling, default=0)}/{expected} |",
        f"| nodes Ready at the end | {r.final[2]}/{expected} |",
        f"| etcd database file (member/snap/db) after settling, MiB | {r.etcd_mib:.0f} |",
        f"| `down` wall time, s | {r.down.seconds:.1f} (exit {r.down.code}) |",
        "",
    ]
    tail = [line for line in up.output.splitlines() if line.strip()][-3:]
    if up.code != 0:
        lines += ["`up` failed; the end of its output:", "", "```", *tail, "```", ""]
    if mem:
        lines += [
            f"Memory {settle:.0f} s after every node was Ready (CPU over those {settle:.0f} s, "
            "in % of one core; the nodes' heartbeats and leases keep them busy):",
            "",
            memory_table(mem),
            "",
        ]
    else:
        lines += ["Not every node became Ready, so memory was not measured.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the scale check, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kwok-nodes", type=int, default=1000, help="KWOK edge nodes (1000)")
    parser.add_argument(
        "--settle", type=float, default=60, help="seconds to wait before reading memory (60)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="give up waiting for Ready nodes after (900)"
    )
    parser.add_argument("--poll", type=float, default=2, help="seconds between polls (2)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    args = parser.parse_args(argv)
    section = scale(args.kwok_nodes, args.settle, args.timeout, args.poll)
    print("\n" + section, flush=True)
    if not args.no_write:
        write_section(f"scale-{args.kwok_nodes}", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
