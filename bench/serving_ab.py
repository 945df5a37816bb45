"""A/B of `edgeml serve` across source revisions: throughput and CPU per request, alternated.

bench/serving.py measures one tree against its peers; this compares trees of our own,
for a change to the serving path. Each revision is checked out in a temporary git
worktree and served with the development venv (its `operator/` first on PYTHONPATH),
all at once, on CPU 1; the client is on CPU 0, as in bench/serving.py. Rounds alternate
the servers, so the VM's drift (tens of percent over minutes here) falls on all alike.
Per round and server: requests per second on `--connections` keep-alive connections
for `--seconds` (or with `--sequential`, the p50 of 2,000 sequential requests), and the
server's user and system CPU per request from /proc. Prints the medians.

    .venv/bin/python bench/serving_ab.py 7018118 HEAD
    .venv/bin/python bench/serving_ab.py HEAD~1 HEAD --sequential --rounds 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving  # bench/serving.py: the model, the client, the helpers

REPO = serving.REPO
CLIENT_CPU, SERVER_CPU = 0, 1


def _cpu_ticks(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("revisions", nargs="+", help="git revisions to compare")
    parser.add_argument("--model", choices=("lr", "rf"), default="lr")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sequential", action="store_true", help="p50 µs, not throughput")
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("needs 2 CPUs (client and servers on different ones)")
    os.sched_setaffinity(0, {CLIENT_CPU})
    ticks = os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory(prefix="edgeml-serving-ab-") as tmp:
        work = Path(tmp)
        (model,) = serving.prepare_models(work, [args.model])
        request = serving.edgeml_request(model)
        servers: list[tuple[str, int, subprocess.Popen[bytes]]] = []
        try:
            for index, revision in enumerate(args.revisions):
                tree = work / f"tree{index}"
                subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach",
                                str(tree), revision], check=True)  # fmt: skip
                port = serving._free_port()
                argv_ = [
                    str(serving.VENV_BIN / "edgeml"), "serve", "--model-path",
                    str(model.onnx_path), "--model-name", serving.MODEL_NAME, "--host",
                    "127.0.0.1", "--port", str(port), "--cache-dir", str(work / f"cache{index}"),
                    "--log-level", "WARNING", "--no-window-state",
                ]  # fmt: skip
                env = {**os.environ, "PYTHONPATH": str(tree / "operator")}
                process = subprocess.Popen(
                    argv_, env=env, start_new_session=True,
                    preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
                )  # fmt: skip
                servers.append((revision, port, process))
            for revision, port, process in servers:
                deadline = time.monotonic() + serving.READY_TIMEOUT
                while True:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{revision}: the server did not become ready")
                    try:
                        if serving._http_get(port, f"/v2/models/{serving.MODEL_NAME}/ready") == 200:
                            break
                    except OSError:
                        pass
                    time.sleep(0.1)
                serving.throughput_raw(port, request, 1.0, args.connections)  # warm up
            results: dict[str, list[tuple[float, float, float]]] = {r: [] for r in args.revisions}
            for _ in range(args.rounds):
                for revision, port, process in servers:
                    user0, system0 = _cpu_ticks(process.pid)
                    if args.sequential:
                        value = serving.sequential_raw(port, request, 2000)[0]
                        count = 2000.0
                    else:
                        value = serving.throughput_raw(port, request, args.seconds,
                                                       args.connections)  # fmt: skip
                        count = value * args.seconds
                    user1, system1 = _cpu_ticks(process.pid)
                    results[revision].append((
                        value,
                        1e6 * (user1 - user0) / ticks / count,
                        1e6 * (system1 - system0) / ticks / count,
                    ))  # fmt: skip
        finally:
            for _, _, process in servers:
                process.terminate()
                process.wait(10)
            subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False)
    what = "p50 µs, sequential" if args.sequential else f"rps, {args.connections} connections"
    print(f"{args.model}, {args.rounds} rounds, medians: {what}; CPU µs per request")
    for revision in args.revisions:
        rows = results[revision]
        value = statistics.median(r[0] for r in rows)
        user = statistics.median(r[1] for r in rows)
        system = statistics.median(r[2] for r in rows)
        print(f"{revision:>12}  {value:>10,.0f}  user {user:5.1f}  system {system:5.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
