"""One DriftPolicy's whole evaluation over 100 pods' counts: time per evaluation, memory.

A child process serves 100 synthetic inference pods on loopback, each on its own address
(127.0.1.1 ... 127.0.1.100, one port, `--port` 18080), answering as `edgeml serve` does:
`GET /drift/window?seconds=N` with the JSON window (the body is built by
`edgeml.serving.app.window_body` from the pod's counts, over a real
`edgeml.serving.metrics.Distributions`) and `GET /metrics` with the pod's cumulative
Prometheus text (`generate_latest` of a real `ServingMetrics` registry). Each pod has
100 features x 11 bins, a 3-class classifier's predictions and feedback labels for a
tenth of its rows; ~900 rows in the window (one a second for 15 minutes), 8 times that
in its cumulative counters. The pods' nodes are in 5 zones; the 20 pods of zone-c see
drift in 5 features.

This process is the operator. Each evaluation runs the controller's code path minus the
Kubernetes reads (the pods, nodes and baseline are given, as `observe_drift` would have
them, the baseline parsed once, as the controller keeps it):
`edgeml.controllers.driftpolicy._read_pods` (which scrapes `/drift/window` by pod IP with
`edgeml.kube.scrape.scrape`, 16 at a time, and parses each with `parse_pod_window`),
`_groups` (the fleet and each zone, per version), `plan_drift_policy` with a `DriftWorld`
of them, `act_on_drift` (publishes the operator's drift metrics) and the status as JSON,
which the next evaluation parses back with the policy, as the next reconcile would. The
split is taken by wrapping `scrape` (reading) and `plan_drift_policy`'s `evaluate`
(statistics) in timers; nothing in the operator is edited.

Then the same 100 pods are read as Prometheus text instead (their `/metrics`, parsed with
`edgeml.rollout.signals.samples_of` as the rollout analysis reads pods, and the feature
buckets turned into bins with `edgeml.drift.windows.bins_from_cumulative`) and planned
alike, to show what reading JSON windows saves. Those are cumulative counts, not a
window: the operator would also have to keep every pod's previous scrape to difference.

Reported: wall time per evaluation (median, p95, max over `--evaluations`), the split,
the bytes read, and this process's VmRSS before the first and after the last evaluation
(targets: p95 under 2 s, growth under 50 MB), with the load average. Prints a markdown
summary and rewrites the `bench:drift-evaluation` section of docs/benchmarks.md
(`--no-write` only prints). No cluster needed; about 3 minutes on 2 CPUs.

    PYTHONPATH=operator .venv/bin/python bench/drift_evaluation.py [--evaluations 50]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import numpy as np
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import edgeml.controllers.driftpolicy as controller
import edgeml.plans.driftpolicy as planner
from edgeml.api.driftpolicy import DriftPolicyStatus
from edgeml.api.kinds import DriftPolicy
from edgeml.config import OperatorConfig
from edgeml.drift.baseline import Baseline, parse_baseline
from edgeml.drift.windows import WindowCounts, bins_from_cumulative
from edgeml.kube.scrape import scrape
from edgeml.plans.driftpolicy import DriftWorld, plan_drift_policy, source_of, window_of
from edgeml.plans.parsing import Parsed, parse
from edgeml.rollout.signals import samples_of
from edgeml.serving.app import window_body, window_seconds
from edgeml.serving.metrics import CLASS, CONFUSION, FEATURE, LABELLED, ROWS, ServingMetrics
from edgeml.serving.protocol import RequestError
from edgeml.serving.window import Counts

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:drift-evaluation begin -->", "<!-- bench:drift-evaluation end -->"
FEATURES = [f"f{j:03d}" for j in range(100)]
EDGES = [float(e) for e in range(10)]  # 10 edges: 11 bins
CLASSES = ["0", "1", "2"]
ZONES = [f"zone-{z}" for z in "abcde"]
DRIFTING_ZONE, DRIFTING = "zone-c", FEATURES[:5]
VERSION = "3"
BASELINE_ROWS = 20_000
WINDOW_ROWS = 900  # a pod's rows in the window: one a second for 15 minutes
LIFETIME = 8  # a pod's cumulative counters hold this many windows' worth
LABELLED_SHARE, ACCURACY = 0.1, 0.9
NAMESPACE, POLICY, DEPLOYMENT = "ml", "bench-drift", "bench-edge"
P = ParamSpec("P")
R = TypeVar("R")


# --- the synthetic fleet (shared by both processes) -----------------------------------------


def baseline_document() -> dict[str, Any]:
    """A training baseline over 11 bins per feature (the shape training/baseline.py writes)."""
    rng = np.random.default_rng(7)
    features = []
    for name in FEATURES:
        shape = rng.dirichlet(np.full(len(EDGES) + 1, 30.0))
        counts = rng.multinomial(BASELINE_ROWS, shape)
        features.append({"name": name, "edges": EDGES, "counts": [int(c) for c in counts]})
    return {
        "version": 1,
        "rows": BASELINE_ROWS,
        "bins": len(EDGES) + 1,
        "encoding": {"columns": FEATURES, "categorical": {}, "inputs": FEATURES},
        "features": features,
        "prediction": {
            "kind": "classification",
            "classes": CLASSES,
            "counts": [int(c) for c in rng.multinomial(BASELINE_ROWS, [0.5, 0.3, 0.2])],
        },
    }


def zone_of(pod: int) -> str:
    return ZONES[pod % len(ZONES)]


def pod_counts(doc: Mapping[str, Any], pod: int, rows: int) -> Counts:
    """A pod's flat counts (the keys of `ServingMetrics.counts()`) over `rows` rows."""
    rng = np.random.default_rng([11, pod, rows])
    counts: Counts = {ROWS: rows}
    for feature in doc["features"]:
        p = np.asarray(feature["counts"], dtype=np.float64)
        p /= p.sum()
        if zone_of(pod) == DRIFTING_ZONE and feature["name"] in DRIFTING:
            p = p * np.linspace(0.2, 1.8, len(p))  # mass moved towards the upper bins
            p /= p.sum()
        for i, n in enumerate(rng.multinomial(rows, p)):
            if n:
                counts[(FEATURE, feature["name"], str(i))] = int(n)
    predicted = rng.multinomial(rows, [0.5, 0.3, 0.2])
    for label, n in zip(CLASSES, predicted, strict=True):
        counts[(CLASS, label)] = int(n)
    labelled = int(rows * LABELLED_SHARE)
    counts[LABELLED] = labelled
    for truth in CLASSES:
        row = np.full(len(CLASSES), (1 - ACCURACY) / (len(CLASSES) - 1))
        row[CLASSES.index(truth)] = ACCURACY
        for predicted_label, n in zip(
            CLASSES, rng.multinomial(labelled // len(CLASSES), row), strict=True
        ):
            if n:
                counts[(CONFUSION, truth, predicted_label)] = int(n)
    return counts


def pod_metrics(doc: Mapping[str, Any], cumulative: Counts) -> ServingMetrics:
    """A real `edgeml serve` metrics registry holding a pod's cumulative counts."""
    metrics = ServingMetrics("bench", VERSION)
    distributions = metrics.distributions
    distributions.configure(
        [(f["name"], f["edges"]) for f in doc["features"]], CLASSES, None, VERSION
    )
    for name, bins in distributions.features:
        bins.counts = [
            int(cumulative.get((FEATURE, name, str(i)), 0)) for i in range(len(EDGES) + 1)
        ]
        bins.total = float(sum(n * (i - 0.5) for i, n in enumerate(bins.counts)))
    distributions.classes = {label: int(cumulative.get((CLASS, label), 0)) for label in CLASSES}
    feedback = metrics.feedback
    feedback.rows = int(cumulative[LABELLED])
    for key, n in cumulative.items():
        if key[0] == CONFUSION:
            feedback.confusion[(key[1], key[2])] = int(n)
            feedback.true_labels.add(key[1])
            feedback.correct += int(n) if key[1] == key[2] else 0
    rows = int(cumulative[ROWS])
    metrics.ok.inc(rows // 8)
    for _ in range(rows // 8):
        metrics.batch_child.observe(8)
        metrics.latency_child.observe(0.0004)
    metrics.info.labels("bench", VERSION, "0" * 64).set(1)
    metrics.ready.set(1)
    return metrics


# --- the pod server (the child process) -------------------------------------------------------


def serve(pods: int, port: int) -> None:
    """Serve `pods` synthetic pods on 127.0.1.1 ... until terminated; print "ready" first."""
    doc = baseline_document()
    windows: list[dict[str, Any]] = []
    texts: list[bytes] = []
    for pod in range(pods):
        metrics = pod_metrics(doc, pod_counts(doc, pod, WINDOW_ROWS * LIFETIME))
        windows.append(window_body(pod_counts(doc, pod, WINDOW_ROWS), metrics.distributions))
        texts.append(generate_latest(metrics.registry))

    def answer(status: int, kind: str, body: bytes) -> bytes:
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body

    async def handle(pod: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            path, _, query = target.partition("?")
            if path == "/drift/window":
                try:
                    seconds = window_seconds(query)
                    body = {"model": "bench", "version": VERSION, "ready": True,
                            "seconds": seconds, "covered": float(min(seconds, 900))}  # fmt: skip
                    body.update(windows[pod])
                    out = answer(200, "application/json", orjson.dumps(body))
                except RequestError as err:
                    out = answer(err.status, "text/plain", err.message.encode())
            elif path == "/metrics":
                out = answer(200, CONTENT_TYPE_LATEST, texts[pod])
            else:
                out = answer(404, "text/plain", b"not found")
            writer.write(out)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [
            await asyncio.start_server(
                functools.partial(handle, pod), host=f"127.0.1.{pod + 1}", port=port, backlog=128
            )
            for pod in range(pods)
        ]
        print("ready", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            for server in servers:
                server.close()

    asyncio.run(main())


# --- the operator side (this process) -------------------------------------------------------


def vm_mb(field: str = "VmRSS") -> float:
    """This process's VmRSS (or VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Spent:
    """Time spent in the wrapped calls during one evaluation, and the bytes read."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    bytes: int = 0


SPENT = Spent()


def timed(name: str, fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, adding its wall time to SPENT.seconds[name]."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT.seconds[name] += time.perf_counter() - started

    return wrapper


def counted_scrape(*args: Any, **kwargs: Any) -> dict[str, str | None]:
    """`scrape`, timed, counting the bytes of the pages it read."""
    started = time.perf_counter()
    pages = scrape(*args, **kwargs)
    SPENT.seconds["read"] += time.perf_counter() - started
    SPENT.bytes += sum(len(p) for p in pages.values() if p is not None)
    return pages


def fleet(pods: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The ready pods as the API lists them (the fields the controller reads), node zones."""
    listed = [
        {
            "metadata": {"name": f"{DEPLOYMENT}-{i:03d}", "namespace": NAMESPACE},
            "spec": {"nodeName": f"edge-{i:03d}"},
            "status": {
                "podIP": f"127.0.1.{i + 1}",
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        for i in range(pods)
    ]
    return listed, {f"edge-{i:03d}": zone_of(i) for i in range(pods)}


def policy_body(status: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "edgeml.io/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": POLICY, "namespace": NAMESPACE, "uid": "0" * 8, "generation": 1},
        "spec": {
            "deploymentRef": {"name": DEPLOYMENT},
            "dataDrift": {"method": "psi", "threshold": 0.2, "window": "15m", "minSamples": 500},
            "conceptDrift": {"metric": "accuracy", "minimum": 0.8, "minSamples": 100},
            "action": "Alert",
        },
    }
    if status is not None:
        body["status"] = dict(status)
    return body


DEPLOYMENT_OBJECT: dict[str, Any] = {
    "apiVersion": "edgeml.io/v1alpha1",
    "kind": "EdgeDeployment",
    "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "uid": "1" * 8},
    "spec": {"modelRef": {"name": "bench"}, "serving": {"port": 18080}},
}


def windows_from_metrics(
    pages: Mapping[str, str | None], pods: Sequence[Mapping[str, Any]], zones: Mapping[str, str]
) -> tuple[list[tuple[str, WindowCounts]], int]:
    """The pods' cumulative counts from their Prometheus text, as `_read_pods` returns."""
    out = []
    for pod in pods:
        text = pages.get(pod["metadata"]["name"])
        if text is None:
            continue
        buckets: dict[str, dict[float, float]] = defaultdict(dict)
        classes: dict[str, float] = {}
        confusion: dict[str, dict[str, float]] = defaultdict(dict)
        rows = labelled = 0.0
        version = ""
        for name, labels, value in samples_of(text):
            if name == "edgeml_serve_feature_value_bucket":
                buckets[labels["feature"]][float(labels["le"])] = value
                version = labels["version"]
            elif name == "edgeml_serve_predictions_total":
                classes[labels["class"]] = value
            elif name == "edgeml_serve_batch_rows_sum":
                rows = value
            elif name == "edgeml_serve_feedback_total":
                labelled = value
            elif name == "edgeml_serve_feedback_confusion_total":
                confusion[labels["label"]][labels["predicted"]] = value
        window = WindowCounts(
            version=version,
            rows=rows,
            features={f: bins_from_cumulative(b) for f, b in buckets.items()},
            classes=classes,
            labelled=labelled,
            confusion=dict(confusion),
            covered_seconds=900.0,
        )
        out.append((zones.get(pod["spec"]["nodeName"], ""), window))
    return out, len(out)


PHASES = ("read", "parse", "group", "evaluate", "status")


@dataclass
class Run:
    """The evaluations of one way of reading the pods."""

    times: list[dict[str, float]] = field(default_factory=list)
    bytes_per_evaluation: int = 0
    rss_before: float = 0.0
    rss_after_first: float = 0.0
    rss_after: float = 0.0
    rss: list[float] = field(default_factory=list)
    """VmRSS after each evaluation."""
    load: tuple[float, float] = (0.0, 0.0)
    outcome: str = ""


def evaluate_all(
    how: str,
    evaluations: int,
    pods: Sequence[Mapping[str, Any]],
    zones: Mapping[str, str],
    baselines: Mapping[str, Baseline],
    port: int,
) -> Run:
    """`evaluations` evaluations in a row, reading the pods' windows ("json") or their
    /metrics ("text"); each evaluation's status is the next one's."""
    config = OperatorConfig()
    parsed: Parsed[DriftPolicy, DriftPolicyStatus] = parse(
        DriftPolicy, DriftPolicyStatus, policy_body(None)
    )
    assert parsed.obj is not None
    spec = parsed.obj.spec
    source = source_of(spec, DEPLOYMENT_OBJECT)
    seconds = int(window_of(spec).total_seconds())
    interval = planner.interval_of(spec)
    receivers = controller.receivers_of(spec, config)  # none: nothing is delivered
    now = datetime(2026, 12, 1, tzinfo=UTC)
    run = Run(load=(os.getloadavg()[0], 0.0))
    gc.collect()
    run.rss_before = vm_mb()
    for k in range(evaluations):
        SPENT.seconds.clear()
        SPENT.bytes = 0
        started = time.perf_counter()
        if how == "json":
            windows, read = controller._read_pods(pods, zones, source, port, seconds, config)
        else:
            pages = counted_scrape(pods, port, "PodIP", config.metrics_timeout_seconds)
            windows, read = windows_from_metrics(pages, pods, zones)
        was_read = time.perf_counter()
        groups = controller._groups(windows)
        grouped = time.perf_counter()
        world = DriftWorld(
            dict(DEPLOYMENT_OBJECT),
            True,
            groups,
            pods_total=len(pods),
            pods_read=read,
            baselines=baselines,
            source=source.type,
            receivers=receivers,
        )
        plan = plan_drift_policy(parsed, world, now=now)
        plan = controller.act_on_drift(parsed, plan, now, config)
        parsed = parse(DriftPolicy, DriftPolicyStatus, policy_body(plan.status.to_json()))
        done = time.perf_counter()
        spent = SPENT.seconds
        run.times.append(
            {
                "read": spent["read"],
                "parse": was_read - started - spent["read"],
                "group": grouped - was_read,
                "evaluate": spent["evaluate"],
                "status": done - grouped - spent["evaluate"],
                "total": done - started,
            }
        )
        run.bytes_per_evaluation = SPENT.bytes
        if read != len(pods):
            raise SystemExit(f"{how}: only {read} of {len(pods)} pods were read")
        run.rss.append(vm_mb())
        if k == 0:
            run.rss_after_first = run.rss[0]
        now += interval
    run.rss_after = vm_mb()
    run.load = (run.load[0], os.getloadavg()[0])
    status = plan.status
    drifted = next((c for c in status.conditions if c.type == "Drifted"), None)
    zones_drifted = [z.zone for z in status.zones if z.drifted]
    fleet_top = ", ".join(f"{f.name} {f.score:.3f}" for f in status.features[:3])
    samples = status.evaluation.samples if status.evaluation else "?"
    run.outcome = (
        f"phase {status.phase}, Drifted={drifted.status if drifted else '?'} "
        f"({drifted.reason if drifted else '?'}); drifted zones: "
        f"{', '.join(zones_drifted) or 'none'}; the fleet's worst features {fleet_top}; "
        f"{samples} rows"
    )
    return run


def start_server(pods: int, port: int, errors: IO[bytes]) -> subprocess.Popen[bytes]:
    """The pod server in a child process; returns once it listens on every address."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", "serve",
         "--pods", str(pods), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=errors,
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        proc.kill()
        proc.wait()
        errors.seek(0)
        error = errors.read().decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"the pod server did not start: {' / '.join(error) or 'no answer'}")
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # the child started above, by its own handle
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _ms(values: Sequence[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)]
    return statistics.median(ordered) * 1e3, p95 * 1e3, ordered[-1] * 1e3


def summary(runs: Mapping[str, Run], pods: int, baseline_ms: float, command: str) -> str:
    labels = {
        "json": "JSON windows (`/drift/window`, `_read_pods`)",
        "text": "Prometheus text (`/metrics`, `samples_of`)",
    }
    totals, splits, memory = [], [], []
    for how, run in runs.items():
        median, p95, worst = _ms([t["total"] for t in run.times])
        verdict = "yes" if p95 < 2000 else "no"
        totals.append(
            f"| {labels[how]} | {len(run.times)} | {median:.0f} | {p95:.0f} | {worst:.0f} | "
            f"{verdict} | {run.bytes_per_evaluation / 1e6:.2f} | "
            f"{run.load[0]:.1f} → {run.load[1]:.1f} |"
        )
        cells = []
        for phase in PHASES:
            m, p, _ = _ms([t[phase] for t in run.times])
            cells.append(f"{m:.1f} ({p:.1f})")
        splits.append(f"| {labels[how]} | " + " | ".join(cells) + " |")
        growth = run.rss_after - run.rss_before
        memory.append(
            f"| {labels[how]} | {run.rss_before:.1f} | {run.rss_after_first:.1f} | "
            f"{run.rss_after:.1f} | {max(run.rss):.1f} | {growth:+.1f} | "
            f"{run.rss_after - run.rss_after_first:+.1f} | {'yes' if growth < 50 else 'no'} |"
        )
    newline = "\n"
    loads = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    json_run = runs["json"]
    return f"""{BEGIN}
## One policy's whole evaluation over {pods} pods

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, Python \
{platform.python_version()}, Linux {platform.release()}; load average at the end {loads} \
(1/5/15 min; each row has its own, before → after); command:
`{command}`.
{pods} synthetic `edgeml serve` pods in one child process on loopback (127.0.1.1 ...
127.0.1.{pods}, asyncio, one thread: the pods answer one at a time, which real pods on
their own machines do not), {len(FEATURES)} features x {len(EDGES) + 1} bins, 3 classes,
~{WINDOW_ROWS} rows a pod in the 15-minute window and feedback for a tenth; nodes in
{len(ZONES)} zones, drift in {len(DRIFTING)} features of {DRIFTING_ZONE}'s pods. One
evaluation is the controller's path minus the Kubernetes reads: `_read_pods` (scrape by pod
IP, 16 at a time, and parse), `_groups`, `plan_drift_policy`, `act_on_drift`, the status
as JSON and parsed back with the policy (the baseline, parsed once in {baseline_ms:.1f} ms,
is kept, as the controller keeps it). What the last evaluation of the JSON run found:
{json_run.outcome}.

| pods read as | evaluations | median ms | p95 ms | max ms | p95 < 2 s | MB read | load 1 min |
| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |
{newline.join(totals)}

Where the time goes, per evaluation, median (p95) ms: reading is the HTTP requests (`scrape`),
parsing is JSON and `parse_pod_window` (or `samples_of` and the buckets into bins), grouping
sums the fleet and each zone per version, evaluating is the statistics (`evaluate`: PSI and
chi-square per feature, Benjamini-Hochberg, the concept metric, per group), status is the
rest of `plan_drift_policy`, `act_on_drift`, `to_json` and parsing the policy back:

| pods read as | read | parse | group | evaluate | status |
| --- | ---: | ---: | ---: | ---: | ---: |
{newline.join(splits)}

Memory of the measuring process (VmRSS MiB, read after a `gc.collect()` before the first
evaluation and as it stands after each; the operator's imports included; the text run
comes second, in the same process):

| pods read as | before the first | after the first | after the last | largest after one | \
growth | growth after the first | growth < 50 MB |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{newline.join(memory)}
{END}
"""


def write_section(section: str) -> None:
    """Replace (or append) this script's section of docs/benchmarks.md."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from local_cluster_measure import write_section as write_docs_section

    write_docs_section("drift-evaluation", section.replace(BEGIN, "").replace(END, ""), DOC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=50)
    parser.add_argument("--text-evaluations", type=int, default=None,
                        help="evaluations reading /metrics (default: as many)")  # fmt: skip
    parser.add_argument("--pods", type=int, default=100, choices=range(1, 255), metavar="1-254")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--child", choices=("serve",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "serve":
        serve(args.pods, args.port)
        return 0
    pods, zones = fleet(args.pods)
    started = time.perf_counter()
    baselines = {VERSION: parse_baseline(VERSION, baseline_document())}
    baseline_ms = (time.perf_counter() - started) * 1e3
    # The split's timers: around the scrape _read_pods calls, and plan_drift_policy's evaluate.
    controller.scrape = counted_scrape  # type: ignore[attr-defined]
    planner.evaluate = timed("evaluate", planner.evaluate)  # type: ignore[attr-defined]
    print(f"starting {args.pods} pod servers on 127.0.1.1-{args.pods}:{args.port}", flush=True)
    runs: dict[str, Run] = {}
    with tempfile.TemporaryFile() as errors:
        server = start_server(args.pods, args.port, errors)
        try:
            text_evaluations = args.text_evaluations or args.evaluations
            for how, count in (("json", args.evaluations), ("text", text_evaluations)):
                print(f"{count} evaluations reading {how}", flush=True)
                runs[how] = evaluate_all(how, count, pods, zones, baselines, args.port)
                median, p95, _ = _ms([t["total"] for t in runs[how].times])
                print(
                    f"  median {median:.0f} ms, p95 {p95:.0f} ms; {runs[how].outcome}", flush=True
                )
        finally:
            stop_server(server)
    command = "PYTHONPATH=operator .venv/bin/python bench/drift_evaluation.py"
    if args.evaluations != 50:
        command += f" --evaluations {args.evaluations}"
    if args.text_evaluations is not None:
        command += f" --text-evaluations {args.text_evaluations}"
    if args.pods != 100:
        command += f" --pods {args.pods}"
    section = summary(runs, args.pods, baseline_ms, command)
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
