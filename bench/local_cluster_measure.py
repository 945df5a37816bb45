"""Time `up`/`down` of the local cluster and measure its components' memory.

Runs on a throwaway cluster of its own (a temporary EDGEML_HOME, every port moved
by +300, the shared build cache, the default small fleet of 6 KWOK edge and 2 KWOK
training nodes, no process nodes), so it never touches the cluster at the default
ports. For each round it times:

- `up` on a fresh state directory (certificates made, etcd initialised; binaries cached),
- `up` again with everything already running,
- `down`,
- `up` from the stopped state (certificates and etcd data kept), and `down` again.

After the first fresh `up` it waits `--settle` seconds and reads every component's
resident memory (VmRSS now, VmHWM the peak; summed over the component's process
tree, since mlflow runs uvicorn as a child) and CPU use over the settle window.
It also reads, without touching anything, the node agent of the main cluster
(~/.cache/edgeml/local/cluster/pids/node-agent.pid), since a throwaway cluster has no
process nodes. Results go to stdout and to a section of
docs/local-cluster-measurements.md.

    PYTHONPATH=hack .venv/bin/python bench/local_cluster_measure.py [--rounds 3]

With `--cold-build` it instead times `python -m localcluster build` from an empty Go
build cache and binary cache (both temporary) with the warm module cache and
GOPROXY=off: the compile a new developer waits for. It takes minutes of both cores.

The helpers here are shared with bench/local_cluster_scale.py.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HACK_DIR = REPO_ROOT / "hack"
if str(HACK_DIR) not in sys.path:
    sys.path.insert(0, str(HACK_DIR))

from localcluster import components  # noqa: E402
from localcluster.processes import belongs_to, port_in_use  # noqa: E402
from localcluster.settings import Settings  # noqa: E402

DOCS_FILE = REPO_ROOT / "docs" / "local-cluster-measurements.md"
PORT_OFFSET = 300
PORT_NAMES = (
    "ETCD",
    "ETCD_PEER",
    "APISERVER",
    "CONTROLLER_MANAGER",
    "SCHEDULER",
    "KWOK",
    "MLFLOW",
    "S3",
)
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "mlflow",
    "s3",
)
MAIN_CLUSTER_DIR = Path.home() / ".cache" / "edgeml" / "local" / "cluster"
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_LINE = re.compile(r"^\s+(\S+)\s+ready in\s+([\d.]+)s")


def say(msg: str) -> None:
    """Print a progress line at once (output may be piped to a file)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the throwaway cluster -------------------------------------------------------------


def throwaway_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables that put a cluster in `home` on the default ports + 300, no process nodes."""
    base = Settings()
    env = {
        "EDGEML_HOME": str(home),
        "EDGEML_BIN_DIR": str(base.bin_dir),
        "EDGEML_PROCESS_EDGE_NODES": "0",
        "EDGEML_PROCESS_TRAINING_NODES": "0",
    }
    default_ports = {
        "ETCD": base.ports.etcd,
        "ETCD_PEER": base.ports.etcd_peer,
        "APISERVER": base.ports.apiserver,
        "CONTROLLER_MANAGER": base.ports.controller_manager,
        "SCHEDULER": base.ports.scheduler,
        "KWOK": base.ports.kwok,
        "MLFLOW": base.ports.mlflow,
        "S3": base.ports.s3,
    }
    for name in PORT_NAMES:
        env[f"EDGEML_{name}_PORT"] = str(default_ports[name] + PORT_OFFSET)
    env.update(extra or {})
    return env


def settings_for(env: Mapping[str, str]) -> Settings:
    """The Settings a `python -m localcluster` run by `cli` with `env` reads.

    Like `cli`, it ignores the caller's own EDGEML_* variables.
    """
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("EDGEML_")]:
        del os.environ[key]
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def check_safe(settings: Settings) -> None:
    """Refuse to run on the main cluster's state or on ports something else holds."""
    if settings.cluster_dir.resolve() == MAIN_CLUSTER_DIR.resolve():
        raise SystemExit("refusing: the throwaway cluster would use the main cluster's state")
    p = settings.ports
    busy = [
        port
        for port in (
            p.etcd,
            p.etcd_peer,
            p.apiserver,
            p.controller_manager,
            p.scheduler,
            p.kwok,
            p.mlflow,
        )
        if port_in_use(port)
    ]
    if busy:
        raise SystemExit(
            f"refusing: ports {busy} (the default ports + {PORT_OFFSET}) are already in use; "
            "is another throwaway cluster or bench still running?"
        )


@dataclass(frozen=True)
class Run:
    """One `python -m localcluster ...` run: exit code, output, wall and CPU time."""

    args: tuple[str, ...]
    code: int
    output: str
    seconds: float
    cpu_seconds: float  # of the localcluster process itself (components run detached)

    def component_times(self) -> dict[str, float]:
        """Per-component start times from `up`'s "NAME ready in X s" lines."""
        found = {}
        for line in self.output.splitlines():
            m = READY_LINE.match(line)
            if m:
                found[m.group(1)] = float(m.group(2))
        return found


def cli(args: Sequence[str], env: Mapping[str, str], echo: bool = True) -> Run:
    """Run `python -m localcluster ARGS` with `env`, echoing its output as it comes."""
    cmd = [sys.executable, "-m", "localcluster", *args]
    # Only `env`'s EDGEML_* settings apply: none leak in from the caller's shell.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("EDGEML_")}
    full_env = {**inherited, "PYTHONPATH": str(HACK_DIR), "PYTHONUNBUFFERED": "1", **env}
    say("$ python -m localcluster " + " ".join(args))
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        cmd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            print("    | " + line.rstrip(), flush=True)
    code = proc.wait()
    took = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    say(f"  exit {code} after {took:.1f}s ({cpu:.1f}s CPU)")
    return Run(tuple(args), code, "".join(lines), took, cpu)


@contextlib.contextmanager
def throwaway_cluster(
    extra_env: Mapping[str, str] | None = None, keep: bool = False
) -> Iterator[tuple[dict[str, str], Settings]]:
    """A temporary EDGEML_HOME for a throwaway cluster; always `down` and removed after."""
    home = Path(tempfile.mkdtemp(prefix="edgeml-bench-"))
    env = throwaway_env(home, extra_env)
    settings = settings_for(env)
    check_safe(settings)
    say(f"throwaway cluster in {home}, apiserver port {settings.ports.apiserver}")
    try:
        yield env, settings
    finally:
        run = cli(["down"], env)
        if run.code != 0:
            say("WARNING: down reported leftovers; see the output above")
        if keep:
            say(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


# --- the API and the processes -----------------------------------------------------------


def node_counts(settings: Settings, names: set[str] | None = None) -> tuple[int, int]:
    """(nodes, Ready nodes), optionally among `names`, read straight from the API as JSON."""
    url = f"https://127.0.0.1:{settings.ports.apiserver}/api/v1/nodes"
    with urllib.request.urlopen(url, timeout=30, context=components.admin_ssl(settings)) as resp:
        items = json.load(resp)["items"]
    total = ready = 0
    for node in items:
        if names is not None and node["metadata"]["name"] not in names:
            continue
        total += 1
        conds = node.get("status", {}).get("conditions") or []
        ready += any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
    return total, ready


def component_pids(settings: Settings) -> dict[str, int]:
    """Live PIDs of the cluster's components, from its PID files (checked by marker)."""
    found = {}
    for pid_file in sorted(settings.pid_dir.glob("*.pid")):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if belongs_to(pid, str(settings.cluster_dir)):
                found[pid_file.stem] = pid
    return found


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _ppid_map() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for child, parent in _ppid_map().items():
        children.setdefault(parent, []).append(child)
    tree, todo = [], [pid]
    while todo:
        cur = todo.pop()
        tree.append(cur)
        todo.extend(children.get(cur, []))
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by `pids`."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


@dataclass(frozen=True)
class Memory:
    """Resident memory of one component: the main process and its whole tree, in MiB."""

    name: str
    pid: int
    processes: int
    rss: float  # VmRSS of the main process
    hwm: float  # VmHWM (peak RSS) of the main process
    tree_rss: float  # VmRSS summed over the process and its descendants
    cpu_percent: float | None = None  # of one core, over the settle window


def memory(name: str, pid: int, cpu_percent: float | None = None) -> Memory:
    """Read /proc/<pid>/status (and the descendants') now."""
    tree = process_tree(pid)
    tree_kb = 0
    for p in tree:
        with contextlib.suppress(OSError):
            tree_kb += _status_kb(p, "VmRSS")
    return Memory(
        name,
        pid,
        len(tree),
        _status_kb(pid, "VmRSS") / 1024,
        _status_kb(pid, "VmHWM") / 1024,
        tree_kb / 1024,
        cpu_percent,
    )


def settle_and_measure(pids: Mapping[str, int], seconds: float) -> list[Memory]:
    """Wait `seconds`, then read each component's memory and its CPU use over the wait."""
    trees = {name: process_tree(pid) for name, pid in pids.items()}
    before = {name: cpu_seconds(tree) for name, tree in trees.items()}
    say(f"letting the cluster settle for {seconds:.0f}s before reading memory")
    time.sleep(seconds)
    rows = []
    for name, pid in pids.items():
        used = cpu_seconds(trees[name]) - before[name]
        rows.append(memory(name, pid, 100 * used / seconds if seconds else None))
    return rows


def memory_table(rows: Sequence[Memory]) -> str:
    """A markdown table of `rows`."""
    out = [
        "| component | VmRSS MiB | VmHWM MiB | tree VmRSS MiB (processes) | CPU % of a core |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cpu = "" if r.cpu_percent is None else f"{r.cpu_percent:.1f}"
        out.append(
            f"| {r.name} | {r.rss:.0f} | {r.hwm:.0f} | {r.tree_rss:.0f} ({r.processes}) | {cpu} |"
        )
    total = sum(r.tree_rss for r in rows)
    out.append(f"| **total** | | | **{total:.0f}** | |")
    return "\n".join(out)


class LoadSampler:
    """Samples the machine's 1-minute load average in the background (others share it)."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "n/a"
        return f"median {statistics.median(self.samples):.2f}, max {max(self.samples):.2f}"


# --- the results file -------------------------------------------------------------------

DOCS_HEADER = """# Local cluster measurements

Numbers measured on the development machine by the scripts in `bench/` (see
`bench/README.md`). Each section is rewritten whole when its script runs again.
Memory is resident set size read from `/proc/<pid>/status` (VmRSS now, VmHWM the
peak); "tree" sums the process and its children. The machine is shared, so the load
average during each run is given: other work on it slows the timings.
"""


def machine_line() -> str:
    """CPU count, memory and kernel of this machine, for the record."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return (
        f"{os.cpu_count()} CPUs, {mem_kb / 1024 / 1024:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def now_utc() -> str:
    """The current date and time, UTC, to the minute."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_section(key: str, body: str, path: Path = DOCS_FILE) -> None:
    """Put `body` into `path` between this key's markers, replacing an earlier run's."""
    begin, end = f"<!-- bench:{key} begin -->", f"<!-- bench:{key} end -->"
    block = f"{begin}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else DOCS_HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    say(f"wrote section '{key}' of {path.relative_to(REPO_ROOT)}")


def command_line(pythonpath: str = "hack") -> str:
    """How this script was run, as one would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO_ROOT)
    return f"PYTHONPATH={pythonpath} .venv/bin/python " + " ".join([str(script), *sys.argv[1:]])


def run_section(title: str, body: str) -> str:
    """A results section of docs/benchmarks.md for the operator benches: a heading, when
    and where it ran, the command (operator and tests on PYTHONPATH), then `body`."""
    return (
        f"### {title}\n\n"
        f"Run {now_utc()} on {machine_line()}:\n\n"
        f"    {command_line('hack:operator:tests')}\n\n"
        f"{body}"
    )


# --- this script -----------------------------------------------------------------------


def _stats(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


AGENT = "node-agent (main cluster)"
UP_FRESH = "`up` on a fresh state directory"
UP_AGAIN = "`up` again, all already running"
DOWN = "`down`"
UP_STOPPED = "`up` from stopped (certificates, etcd data kept)"
DOWN_AGAIN = "`down` again"


def main_cluster_agent() -> tuple[int | None, str]:
    """The main cluster's node agent PID (None if not running) and its process nodes.

    Read-only: its PID file, checked against the process's marker, and its nodes file.
    """
    try:
        pid = int((MAIN_CLUSTER_DIR / "pids" / "node-agent.pid").read_text().strip())
        nodes = json.loads((MAIN_CLUSTER_DIR / "process-nodes.json").read_text())
    except (OSError, ValueError):
        return None, ""
    if not belongs_to(pid, str(MAIN_CLUSTER_DIR)):
        return None, ""
    return pid, ", ".join(n["name"] for n in nodes)


def _require(run: Run) -> Run:
    if run.code != 0:
        raise SystemExit(f"`localcluster {' '.join(run.args)}` failed (exit {run.code})")
    return run


def measure(rounds: int, settle: float) -> str:
    """Run the rounds and return the markdown section."""
    timings: dict[str, list[float]] = {
        UP_FRESH: [],
        UP_AGAIN: [],
        DOWN: [],
        UP_STOPPED: [],
        DOWN_AGAIN: [],
    }
    starts: dict[str, list[float]] = {}
    mem: list[Memory] = []
    nodes = ""
    agent_pid, agent_nodes = main_cluster_agent()
    agent: list[Memory] = []
    load = LoadSampler()
    with load:
        for i in range(rounds):
            say(f"round {i + 1} of {rounds}")
            with throwaway_cluster() as (env, settings):
                first = _require(cli(["up"], env))
                timings[UP_FRESH].append(first.seconds)
                for name, secs in first.component_times().items():
                    starts.setdefault(name, []).append(secs)
                if i == 0:
                    total, ready = node_counts(settings)
                    nodes = f"{ready}/{total} nodes Ready"
                    pids = component_pids(settings)
                    if agent_pid is not None:
                        pids[AGENT] = agent_pid
                    mem = settle_and_measure(pids, settle)
                    agent = [m for m in mem if m.name == AGENT]
                    mem = [m for m in mem if m.name != AGENT]
                    print(memory_table(mem + agent), flush=True)
                timings[UP_AGAIN].append(_require(cli(["up"], env)).seconds)
                timings[DOWN].append(_require(cli(["down"], env)).seconds)
                timings[UP_STOPPED].append(_require(cli(["up"], env)).seconds)
                timings[DOWN_AGAIN].append(_require(cli(["down"], env)).seconds)
    lines = [
        "## Default fleet: up/down times and memory per component",
        "",
        f"Measured {now_utc()} on {machine_line()}; load average during the run: "
        f"{load.summary()} (the main cluster and other work share the machine).",
        "",
        f"Command: `{command_line()}`",
        "",
        "A throwaway cluster (temporary EDGEML_HOME, ports + 300, the shared build cache, so "
        "binaries were already built) with the default fleet on KWOK: 6 edge + 2 training "
        f"nodes, no process nodes ({nodes} after the first `up`). Wall time of "
        f"`python -m localcluster ...`, seconds, median (min-max) of {rounds} rounds:",
        "",
        "| step | seconds |",
        "| --- | ---: |",
        *[f"| {k} | {_stats(v)} |" for k, v in timings.items()],
        "",
        "Start time of each component within a fresh `up` (until its health check passes):",
        "",
        "| component | seconds |",
        "| --- | ---: |",
        *[f"| {k} | {_stats(v)} |" for k, v in starts.items()],
        "",
        f"Memory {settle:.0f} s after the first `up` returned (CPU over those {settle:.0f} s):",
        "",
        memory_table(mem),
        "",
    ]
    if agent:
        a = agent[0]
        lines += [
            "The throwaway cluster has no process nodes, so the main cluster's node agent "
            f"(process nodes {agent_nodes}) was read instead, from its PID file, over the same "
            f"window: VmRSS {a.rss:.0f} MiB, VmHWM {a.hwm:.0f} MiB, CPU "
            f"{a.cpu_percent or 0:.1f}% of a core; with the pods it was running as processes "
            f"at that moment, {a.tree_rss:.0f} MiB in {a.processes} "
            + ("process." if a.processes == 1 else "processes."),
            "",
        ]
    else:
        lines += ["The main cluster's node agent was not running, so it was not measured.", ""]
    return "\n".join(lines)


BUILT_LINE = re.compile(r"^\s+built (\S+) in (\d+)s")


def _du_mib(path: Path) -> float:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**20


def cold_build() -> str:
    """Time `python -m localcluster build` with an empty Go build cache and binary cache.

    The Go module cache is the usual (warm) one, and GOPROXY=off proves nothing is
    downloaded: this is the compile alone, as a new developer with modules already
    fetched would see it. Nothing shared is written: both caches are temporary.
    """
    modcache = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    gocache = Path(tempfile.mkdtemp(prefix="edgeml-bench-gocache-"))
    bin_dir = Path(tempfile.mkdtemp(prefix="edgeml-bench-bin-"))
    env = {
        "GOCACHE": str(gocache),
        "GOMODCACHE": modcache,
        "GOPROXY": "off",
        "EDGEML_BIN_DIR": str(bin_dir),
    }
    say(f"cold build: GOCACHE={gocache} (empty), GOMODCACHE={modcache} (warm), GOPROXY=off")
    try:
        with LoadSampler() as load:
            run = _require(cli(["build"], env))
        gocache_mib, bin_mib = _du_mib(gocache), _du_mib(bin_dir)
    finally:
        shutil.rmtree(gocache, ignore_errors=True)
        shutil.rmtree(bin_dir, ignore_errors=True)
    built = [m.groups() for m in map(BUILT_LINE.match, run.output.splitlines()) if m]
    go_version = subprocess.run(
        ["go", "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return "\n".join(
        [
            "## Cold build of the cluster's binaries",
            "",
            f"Measured {now_utc()} on {machine_line()}, {go_version}; load average during "
            f"the build: {load.summary()} (the main cluster and other work share the machine).",
            "",
            f"Command: `{command_line()}`, which runs `python -m localcluster build` with "
            "an empty GOCACHE and EDGEML_BIN_DIR (both temporary, removed after) and the "
            "warm Go module cache (GOMODCACHE as `go env` has it, GOPROXY=off, so nothing "
            "was downloaded): the compile alone. A first build that must also download the "
            "modules takes longer by the download time.",
            "",
            "| binary | seconds |",
            "| --- | ---: |",
            *[f"| {name} | {secs} |" for name, secs in built],
            f"| **total wall time** | **{run.seconds:.0f}** |",
            "",
            f"CPU time of the build: {run.cpu_seconds:.0f} s; Go build cache afterwards: "
            f"{gocache_mib:.0f} MiB; binaries: {bin_mib:.0f} MiB.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh clusters to time (3)")
    parser.add_argument(
        "--settle", type=float, default=60, help="seconds to wait before reading memory (60)"
    )
    parser.add_argument(
        "--cold-build",
        action="store_true",
        help="instead, time a build of the binaries from an empty Go build cache (minutes)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    args = parser.parse_args(argv)
    if args.cold_build:
        key, section = "cold-build", cold_build()
    else:
        key, section = "measure", measure(max(1, args.rounds), args.settle)
    print("\n" + section, flush=True)
    if not args.no_write:
        write_section(key, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
