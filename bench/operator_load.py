"""The operator under load: 1,000 EdgeModels, EdgeDeployments and DriftPolicies, at rest
and while 10% of them change; memory, CPU and reconcile latency.

On a throwaway cluster (see bench/README.md) with `--kwok-nodes` KWOK edge nodes (200:
with 1,000, this 2-core machine let their heartbeats lapse and half went NotReady) put in
sites of two (label `bench.edgeml.io/site`), it installs the CRDs, registers two versions
of a small model in the cluster's MLflow, starts the operator (`edgeml run --standalone`
in the bench namespace, admin kubeconfig) and creates `--objects` of each kind:
EdgeModel i (Manual promotion, registered model i: the same two versions copied into each,
one registered model per EdgeModel as the operator requires), EdgeDeployment i (pinned to
version 1 on the two nodes of site i mod sites, one wave, metrics from a Prometheus
address on loopback where nothing listens, so no request goes to a KWOK pod's address,
which is not on this machine) and DriftPolicy i (Alert only) watching it. Then:

- **converge**: the time until every object's status has observed its generation and
  every EdgeDeployment is Healthy;
- **at rest** for `--rest-seconds`: the operator's resident memory and CPU;
- **10% change**: EdgeModel versionHistoryLimit, EdgeDeployment version 1 to 2 (two
  pods replaced), DriftPolicy threshold, each on every tenth object at once; the time
  from the patch to a status that observed it (p50, p99, max) per kind;
- the reconcile duration of each kind over both windows, from the operator's own
  `edgeml_reconcile_duration_seconds` histogram (quantiles interpolated within its
  buckets, as PromQL's histogram_quantile does), the most resident memory seen during
  the change (sampled every 0.5 s) and the peak since start, settle included (VmHWM).

The operator runs as its image ships it: from a venv holding only the package's
dependencies (pyproject.toml's `dependencies`, pinned by images/constraints.txt, as
images/operator/Containerfile installs them), made once per set of dependencies under
~/.cache/edgeml/bench-venvs; not from the development venv, whose test libraries the
operator's imports would load too (kopf imports the kubernetes client when it is there).

`--compare REV` runs the same load again with the operator from git revision REV (a
temporary worktree), on a fresh throwaway cluster, so both are measured in one run on
the same machine; `--variant KEY=VALUE[,KEY=VALUE]` (repeatable) runs this tree's
operator once more per variant with those environment variables (allocator settings).
Results go to stdout and the `operator-load` section of docs/benchmarks.md.

    PYTHONPATH=hack:operator:tests .venv/bin/python bench/operator_load.py \
        [--compare REV] [--variant MALLOC_ARENA_MAX=2]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client, config
from local_cluster_measure import REPO_ROOT, cli, run_section, say, throwaway_cluster, write_section
from rollout_scale import install_crds, peak_rss_mb, wait

from support.models import Trained, register_again, train_version
from support.objects import DELETE, drift_policy, edge_deployment, edge_model
from support.operator import OperatorProcess

GROUP, VERSION = "edgeml.io", "v1alpha1"
NAMESPACE = "bench"
SITE_LABEL = "bench.edgeml.io/site"
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, refused at once
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
PLURALS = ("edgemodels", "edgedeployments", "driftpolicies")
KIND_OF = {"edgemodels": "EdgeModel", "edgedeployments": "EdgeDeployment",
           "driftpolicies": "DriftPolicy"}  # fmt: skip
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# --- what is measured ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


Buckets = dict[str, dict[float, float]]  # kind -> upper bound -> cumulative count


def reconcile_buckets(metrics_port: int) -> Buckets:
    """The operator's reconcile-duration histogram, per kind, as scraped now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: Buckets = {}
    pattern = r"^edgeml_reconcile_duration_seconds_bucket\{(.*)\} (\S+)$"
    for labels, value in re.findall(pattern, text, flags=re.M):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        bound = float("inf") if pairs["le"] == "+Inf" else float(pairs["le"])
        out.setdefault(pairs["kind"], {})[bound] = float(value)
    return out


def histogram_quantile(
    q: float, before: Mapping[float, float], after: Mapping[float, float]
) -> tuple[float, float]:
    """(quantile, count) of the observations between two scrapes of one histogram,
    interpolated linearly within the bucket it falls in (PromQL's histogram_quantile)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan"), 0.0
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower, total  # beyond the last finite bucket: its bound, as PromQL
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0), total
        lower, below = bound, cumulative
    return lower, total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Window:
    """Memory, CPU and reconcile durations of the operator over one phase."""

    seconds: float
    cpu: float
    rss_mb: float
    """Resident memory at the window's end."""
    max_rss_mb: float
    """The most resident memory seen within the window (sampled every 0.5 s)."""
    reconciles: dict[str, tuple[float, float, float]]  # kind -> (count, p50, p99)


@contextmanager
def window(operator: OperatorProcess) -> Iterator[Callable[[], Window]]:
    assert operator.proc is not None
    pid, started, cpu0 = operator.proc.pid, time.monotonic(), cpu_seconds(operator.proc.pid)
    before = reconcile_buckets(operator.metrics_port)
    result: list[Window] = []
    highest = [peak_rss_mb(pid)[0]]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            highest[0] = max(highest[0], peak_rss_mb(pid)[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def get() -> Window:
        return result[0]

    try:
        yield get
    finally:
        done.set()
        sampler.join()
    after = reconcile_buckets(operator.metrics_port)
    seconds = time.monotonic() - started
    reconciles = {}
    for kind, buckets in sorted(after.items()):
        p50, count = histogram_quantile(0.5, before.get(kind, {}), buckets)
        p99, _ = histogram_quantile(0.99, before.get(kind, {}), buckets)
        reconciles[kind] = (count, p50, p99)
    result.append(
        Window(
            seconds,
            (cpu_seconds(pid) - cpu0) / seconds,
            peak_rss_mb(pid)[0],
            max(highest[0], peak_rss_mb(pid)[0]),
            reconciles,
        )
    )


@dataclass
class Result:
    label: str
    objects: int
    nodes: int
    pods: int = 0
    converge_seconds: float = 0.0
    rest: Window | None = None
    change: Window | None = None
    change_latency: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    peak_mb: float = 0.0
    leaks: int = 0


# --- the load -----------------------------------------------------------------------------


def copy_versions(
    mlflow_uri: str, source: str, targets: list[str], versions: tuple[Trained, ...]
) -> None:
    """Register `versions` of `source` (the same bytes and run) into each of `targets`."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)

    def copy(target: str) -> None:
        client.create_registered_model(target)
        for version in versions:
            register_again(target, mlflow_uri, version, source_model=source)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(copy, targets))


def objects_of(
    i: int, sites: int, registered: str, version: int
) -> list[tuple[str, dict[str, Any]]]:
    name = f"m{i:04d}"
    model = edge_model(name, registry={"registeredModel": registered},
                       promotion={"mode": "Manual", "gates": DELETE})  # fmt: skip
    source = {"type": "Prometheus", "prometheus": {"address": NOWHERE}}
    deployment = edge_deployment(
        f"d{i:04d}", name,
        modelRef={"alias": DELETE, "version": version},
        nodeSelector={"edgeml.io/simulator": "kwok", SITE_LABEL: f"s{i % sites:04d}"},
        strategy={"canary": {"maxUnavailable": "50%", "steps": [{"nodes": "100%"}],
                             "analysis": {"source": source, "interval": "15s",
                                          "metrics": [{"name": "error-rate", "max": 0.05}]}}},
    )  # fmt: skip
    policy = drift_policy(f"p{i:04d}", f"d{i:04d}")
    return [("edgemodels", model), ("edgedeployments", deployment), ("driftpolicies", policy)]


def list_all(custom: client.CustomObjectsApi, plural: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = custom.list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, plural
    )["items"]
    return items


def settled(obj: Mapping[str, Any], plural: str) -> bool:
    status = obj.get("status") or {}
    observed = status.get("observedGeneration") == obj["metadata"].get("generation")
    if plural == "edgedeployments":
        return observed and status.get("phase") == "Healthy"
    return observed


def converge(custom: client.CustomObjectsApi, started: float, timeout: float) -> float:
    def done() -> bool:
        waiting = {p: sum(not settled(o, p) for o in list_all(custom, p)) for p in PLURALS}
        if int(time.monotonic() - started) % 15 == 0:
            say(f"  not settled yet: {waiting}")
        return not any(waiting.values())

    wait("every object to settle", done, timeout, every=2.0)
    return time.monotonic() - started


def change_tenth(
    custom: client.CustomObjectsApi, objects: int, version: int
) -> dict[str, tuple[float, float, float]]:
    """Patch every tenth object of each kind at once; seconds from each patch to a status
    that observed it, (p50, p99, max) per kind."""
    patches = {
        "edgemodels": lambda i: (f"m{i:04d}", {"spec": {"versionHistoryLimit": 11}}),
        "edgedeployments": lambda i: (f"d{i:04d}", {"spec": {"modelRef": {"version": version}}}),
        "driftpolicies": lambda i: (f"p{i:04d}", {"spec": {"dataDrift": {"threshold": 0.25}}}),
    }
    patched: dict[tuple[str, str], tuple[float, int]] = {}

    def patch(item: tuple[str, int]) -> None:
        plural, i = item
        name, body = patches[plural](i)
        at = time.monotonic()
        obj = custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name, body)
        patched[(plural, name)] = (at, int(obj["metadata"]["generation"]))

    work = [(p, i) for i in range(0, objects, 10) for p in PLURALS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(patch, work))
    seen: dict[tuple[str, str], float] = {}
    deadline = time.monotonic() + 600
    while len(seen) < len(patched) and time.monotonic() < deadline:
        for plural in PLURALS:
            for obj in list_all(custom, plural):
                key = (plural, obj["metadata"]["name"])
                if key in patched and key not in seen:
                    status = obj.get("status") or {}
                    if (status.get("observedGeneration") or 0) >= patched[key][1] and (
                        plural != "edgedeployments"
                        or ((status.get("stable") or {}).get("version") == version
                            and status.get("phase") == "Healthy")
                    ):  # fmt: skip
                        seen[key] = time.monotonic() - patched[key][0]
        time.sleep(0.5)
    if len(seen) < len(patched):
        raise TimeoutError(f"{len(patched) - len(seen)} changed objects never settled")
    out = {}
    for plural in PLURALS:
        took = [s for (p, _), s in seen.items() if p == plural]
        out[KIND_OF[plural]] = (percentile(took, 0.5), percentile(took, 0.99), max(took))
    return out


def label_sites(core: client.CoreV1Api, nodes: list[str]) -> int:
    sites = len(nodes) // 2

    def label(item: tuple[int, str]) -> None:
        i, name = item
        core.patch_node(name, {"metadata": {"labels": {SITE_LABEL: f"s{i // 2 % sites:04d}"}}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(label, enumerate(sorted(nodes))))
    return sites


def shipped_venv(src: Path) -> Path:
    """A venv with what the operator image of `src` installs, made on first use."""
    import hashlib
    import tomllib

    deps = tomllib.loads((src / "pyproject.toml").read_text())["project"]["dependencies"]
    constraints = (src / "images" / "constraints.txt").read_text()
    key = hashlib.sha256("\n".join([*deps, constraints]).encode()).hexdigest()[:12]
    root = Path(os.environ.get("EDGEML_BENCH_VENVS", Path.home() / ".cache/edgeml/bench-venvs"))
    venv = root / f"operator-{key}"
    if not (venv / ".complete").exists():
        say(f"making the operator's venv {venv}")
        subprocess.run(["rm", "-rf", str(venv)], check=True)
        subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "requirements.txt").write_text("\n".join(deps) + "\n")
            (Path(tmp) / "constraints.txt").write_text(constraints)
            pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, "-r", f"{tmp}/requirements.txt", "-c", f"{tmp}/constraints.txt"],
                           check=True)  # fmt: skip
        (venv / ".complete").touch()
    return venv


def run_load(
    label: str,
    operator_src: Path,
    kwok_nodes: int,
    objects: int,
    rest_seconds: int,
    extra_env: dict[str, str] | None = None,
) -> Result:
    say(f"== {label}: the operator from {operator_src}")
    with throwaway_cluster() as (env, settings):
        if cli(["up", "--kwok-nodes", str(kwok_nodes)], env).code != 0:
            raise SystemExit("the throwaway cluster did not come up")
        api = config.new_client_from_config(config_file=str(settings.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        selector = "edgeml.io/simulator=kwok,node-role.kubernetes.io/edge=true"
        names = wait(
            f"{kwok_nodes} KWOK edge nodes",
            lambda: (n := [x.metadata.name for x in core.list_node(label_selector=selector).items])
            and len(n) >= kwok_nodes and n,
            300, every=2.0,
        )  # fmt: skip
        sites = label_sites(core, names)
        install_crds(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        stem = f"load-{uuid.uuid4().hex[:6]}"
        registered = [f"{stem}-{i:04d}" for i in range(objects)]
        with tempfile.TemporaryDirectory() as tmp:
            first = train_version(registered[0], settings.mlflow_uri, Path(tmp))
        second = register_again(registered[0], settings.mlflow_uri, first)
        say(f"copying the two versions into {objects - 1} more registered models")
        copy_versions(settings.mlflow_uri, registered[0], registered[1:], (first, second))
        log = Path(tempfile.mkstemp(prefix="edgeml-bench-load-", suffix=".log")[1])
        operator = OperatorProcess(
            settings.kubeconfig, NAMESPACE, log,
            env={"EDGEML_MLFLOW_TRACKING_URI": settings.mlflow_uri,
                 "PYTHONPATH": str(operator_src / "operator"), **(extra_env or {})},
            program=(str(shipped_venv(operator_src) / "bin" / "python"), "-m", "edgeml.cli"),
        )  # fmt: skip
        operator.start()
        result = Result(label, objects, len(names))
        try:
            work = [
                o
                for i in range(objects)
                for o in objects_of(i, sites, registered[i], first.version)
            ]
            say(f"creating {len(work)} objects")
            started = time.monotonic()

            def create(item: tuple[str, dict[str, Any]]) -> None:
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, item[0], item[1])

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(create, work))
            say(f"  created in {time.monotonic() - started:.0f} s; waiting for every status")
            result.converge_seconds = converge(custom, started, 1800)
            result.pods = len(core.list_namespaced_pod(NAMESPACE).items)
            say(f"  settled in {result.converge_seconds:.0f} s ({result.pods} pods)")
            say(f"at rest for {rest_seconds} s")
            with window(operator) as rest:
                time.sleep(rest_seconds)  # the phase being measured: nothing changes
            result.rest = rest()
            say("10% change")
            with window(operator) as change:
                result.change_latency = change_tenth(custom, objects, second.version)
            result.change = change()
            assert operator.proc is not None
            result.peak_mb = peak_rss_mb(operator.proc.pid)[1]
        finally:
            operator.stop()
        # Nothing may have been sent to a KWOK pod's address (10.90.0.0/16, not here).
        result.leaks = len(re.findall(r"\b10\.90\.\d+\.\d+", log.read_text(errors="replace")))
        say(f"  operator log {log}: {result.leaks} mentions of a KWOK pod address")
        print(table([result]), flush=True)  # before `down`: a failing down loses nothing
    return result


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="edgeml-bench-rev-"))
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(path), rev],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(path)],
                       check=False, capture_output=True)  # fmt: skip


def table(results: list[Result]) -> str:
    def ms(s: float) -> str:
        return f"{s * 1000:.0f} ms"

    lines = [
        "| operator | objects of each kind | pods | settle from zero | memory at rest "
        "| most memory during the change | peak from zero (VmHWM) | CPU at rest "
        "| CPU during the change |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        assert r.rest is not None
        assert r.change is not None
        lines.append(
            f"| {r.label} | {r.objects} | {r.pods} | {r.converge_seconds:.0f} s | "
            f"{r.rest.rss_mb:.0f} MB | {r.change.max_rss_mb:.0f} MB | {r.peak_mb:.0f} MB | "
            f"{r.rest.cpu * 100:.0f}% of a core | "
            f"{r.change.cpu * 100:.0f}% of a core |"
        )
    lines += ["", "Reconcile duration (the operator's histogram) and the time from a patch of "
              "10% of the objects to a status that observed it (for EdgeDeployments: the "
              "new version Healthy on its nodes):", "",
              "| operator | kind | reconciles at rest | p50 / p99 at rest | reconciles during "
              "the change | p50 / p99 during | patch to status p50 / p99 / max |",
              "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        assert r.rest is not None
        assert r.change is not None
        for kind in ("EdgeModel", "EdgeDeployment", "DriftPolicy"):
            rn, r50, r99 = r.rest.reconciles.get(kind, (0, float("nan"), float("nan")))
            cn, c50, c99 = r.change.reconciles.get(kind, (0, float("nan"), float("nan")))
            l50, l99, lmax = r.change_latency.get(kind, (float("nan"),) * 3)
            lines.append(
                f"| {r.label} | {kind} | {rn:.0f} | {ms(r50)} / {ms(r99)} | {cn:.0f} | "
                f"{ms(c50)} / {ms(c99)} | {l50:.1f} s / {l99:.1f} s / {lmax:.1f} s |"
            )
    rest = results[0].rest
    assert rest is not None
    lines += ["", f"At rest: {rest.seconds:.0f} s. Targets: memory under 300 MB, reconcile "
              "p99 under 2 s. Requests to a KWOK pod's address (not on this machine) in the "
              f"operator's log: {', '.join(str(r.leaks) for r in results)}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kwok-nodes", type=int, default=200)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rest-seconds", type=int, default=120)
    parser.add_argument("--compare", metavar="REV", help="also run the operator of REV")
    parser.add_argument("--variant", metavar="KEY=VALUE[,KEY=VALUE]", action="append",
                        default=[], help="also run this tree's operator with these "
                        "environment variables (repeatable: one run each)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    variants = [dict(p.split("=", 1) for p in v.split(",")) for v in args.variant]
    # Stopped with SIGTERM (or Ctrl-C): still take the cluster down in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    results = [run_load(f"this tree ({head})", REPO_ROOT, args.kwok_nodes, args.objects,
                        args.rest_seconds)]  # fmt: skip
    for extra in variants:
        settings = " ".join(f"{k}={v}" for k, v in extra.items())
        results.append(run_load(f"this tree ({head}), {settings}", REPO_ROOT, args.kwok_nodes,
                                args.objects, args.rest_seconds, extra))  # fmt: skip
    if args.compare:
        with worktree(args.compare) as src:
            results.append(run_load(f"{args.compare}", src, args.kwok_nodes, args.objects,
                                    args.rest_seconds))  # fmt: skip
    body = run_section(
        f"The operator with {args.objects} of each kind on {args.kwok_nodes} KWOK nodes",
        table(results),
    )
    print(body)
    if not args.no_write:
        write_section("operator-load", body, DOCS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
