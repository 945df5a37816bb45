"""Drift verdicts against Evidently's: the same features flagged, and the time each takes.

The same data goes to both: 100 numeric features, a reference (training) set of
10,000 rows, fixed, and a current set of `--sizes` rows (10k, 100k, 1M by default).
Ten features of the current set moved (x000-x004 by a location shift, x005-x009 by a
change of scale), by amounts PSI over ten quantile bins puts at about 0.5; the other
90 come from the reference's distribution. The features are four families (normal,
lognormal, logistic, sinh of a normal: heavy-tailed), a quarter each, so that equal-width
bins meet skew and long tails too.

Ours is what the system does, in the processes that do it:

- training bins each feature into 10 quantile bins of the reference
  (`edgeml.training.baseline.build_baseline`: `bin_edges`, `bin_counts`), once;
- the pods count live rows into those bins as they serve (`edgeml.serving.metrics.
  Distributions.observe_features`, spread over the fleet and a few rows at a time). Here
  it is done once over the whole current set, in its own process (`count`), for
  fairness: this is the part that grows with rows;
- the operator scores the counts (`parse_pod_window` of the window document, then
  `edgeml.drift.evaluation.evaluate_group`: PSI, chi-square and Benjamini-Hochberg over
  the 100 features), in its own process (`score`), timed over `--repetitions`
  evaluations: this part does not depend on rows.

Evidently (0.7's `Report([DataDriftPreset(method="psi", threshold=0.2)],
include_tests=True)`, and unless `--no-default-test` also its default test choice,
`DataDriftPreset()`) runs in its own venv as a subprocess (`--evidently-python`), from the
same arrays (.npy files in a temporary directory) made into pandas frames; a feature is
drifted in Evidently's answer when its column's "Value Drift" test failed. When that
interpreter is missing, the script says how to make it and reports ours only.

Each process's wall time and peak RSS (its own VmHWM; the polled VmRSS for one that was
stopped) are recorded, with the 1-minute load average before and after it. An Evidently
run past `--limit-seconds` (600) or `--limit-gb` (12 GB of VmRSS) is killed, said so,
and not tried at the larger sizes. Prints a markdown summary and rewrites the
`bench:drift-peers` section of docs/benchmarks.md (`--no-write` only prints). No
cluster needed; about 10 minutes at the default sizes on 2 CPUs.

    python3 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install evidently "pandas<3" numpy
    PYTHONPATH=operator .venv/bin/python bench/drift_peers.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# Only the standard library and numpy at the top: the `evidently` child runs this file
# in Evidently's venv, which has no edgeml. The edgeml imports are in the functions.

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:drift-peers begin -->", "<!-- bench:drift-peers end -->"
FEATURES = 100
NAMES = [f"x{j:03d}" for j in range(FEATURES)]
REFERENCE_ROWS = 10_000
SHIFTED = frozenset(range(5))  # location: the latent normal moves by SHIFT
SCALED = frozenset(range(5, 10))  # scale: the latent normal's spread times SCALE
SHIFT, SCALE = 0.75, 2.0
DRIFTED = sorted(NAMES[j] for j in SHIFTED | SCALED)
FAMILIES = ("normal", "lognormal", "logistic", "sinh")
THRESHOLD = 0.2
PREDICTED_FROM = 50  # the synthetic classifier: class "1" when x050 is above its median
DEFAULT_EVIDENTLY = "/tmp/evidently-venv/bin/python"
HOW_TO_INSTALL = (
    "python3 -m venv /tmp/evidently-venv && "
    '/tmp/evidently-venv/bin/pip install evidently "pandas<3" numpy'
)
Array = npt.NDArray[Any]


# --- data -------------------------------------------------------------------------------------


def feature(z: Array, j: int) -> Array:
    """Feature j as a monotone function of a standard normal (its family is j % 4)."""
    family = FAMILIES[j % len(FAMILIES)]
    if family == "normal":
        return (j + (1 + j % 7) * z).astype(np.float32)
    if family == "lognormal":
        return np.exp(0.5 * z).astype(np.float32)
    if family == "logistic":
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    return np.sinh(z).astype(np.float32)


def dataset(rows: int, *, current: bool, seed: int) -> Array:
    """[rows, 100] float32; the current set has x000-x009 moved."""
    rng = np.random.default_rng([seed, int(current), rows])
    out = np.empty((rows, FEATURES), dtype=np.float32)
    for j in range(FEATURES):
        z = rng.standard_normal(rows)
        if current and j in SHIFTED:
            z += SHIFT
        if current and j in SCALED:
            z *= SCALE
        out[:, j] = feature(z, j)
    return out


def predictions(rows: Array, cut: float) -> Array:
    """The synthetic classifier's labels, as text."""
    return np.where(rows[:, PREDICTED_FROM] > cut, "1", "0")


def baseline_document(reference: Array) -> dict[str, Any]:
    """The training program's baseline of the reference rows (10 quantile bins each)."""
    from edgeml.training.baseline import build_baseline

    cut = float(np.median(reference[:, PREDICTED_FROM]))
    doc = build_baseline(
        reference,
        NAMES,
        predictions(reference, cut),
        "classification",
        {"columns": NAMES, "categorical": {}, "inputs": NAMES},
        classes=np.asarray(["0", "1"]),
    )
    doc["benchCut"] = cut  # not part of the format: the classifier's threshold for `count`
    return doc


# --- the child processes ------------------------------------------------------------------------


def child_count(directory: Path) -> dict[str, Any]:
    """The pods' part, done once: count the current rows into the baseline's bins."""
    from edgeml.serving.metrics import Distributions

    doc = json.loads((directory / "baseline.json").read_text())
    started = time.perf_counter()
    current = np.load(directory / "current.npy")
    loaded = time.perf_counter()
    distributions = Distributions("bench", "1")
    distributions.configure(
        [(f["name"], f["edges"]) for f in doc["features"]], ["0", "1"], None, "1"
    )
    distributions.observe_features(current)
    distributions.observe_predictions(predictions(current, doc["benchCut"]))
    counted = time.perf_counter()
    window = {
        "model": "bench",
        "version": "1",
        "ready": True,
        "seconds": 900,
        "covered": 900.0,
        "rows": len(current),
        "features": {name: list(bins.counts) for name, bins in distributions.features},
        "predictions": {"kind": "classification", "counts": dict(distributions.classes)},
        "feedback": {"labelled": 0, "confusion": {}},
    }
    (directory / "window.json").write_text(json.dumps(window))
    return {"load_s": loaded - started, "count_s": counted - loaded}


def child_score(directory: Path, repetitions: int) -> dict[str, Any]:
    """The operator's part: parse the baseline and the window, score the counts."""
    from edgeml.drift.baseline import parse_baseline
    from edgeml.drift.evaluation import FLEET, DriftSettings, evaluate_group
    from edgeml.drift.windows import parse_pod_window

    started = time.perf_counter()
    baseline = parse_baseline("1", json.loads((directory / "baseline.json").read_text()))
    window = parse_pod_window(json.loads((directory / "window.json").read_text()))
    parsed = time.perf_counter()
    assert window is not None
    settings = DriftSettings(method="psi", threshold=THRESHOLD, min_samples=500)
    first_started = time.perf_counter()
    result = evaluate_group(FLEET, baseline, window, settings)
    first = time.perf_counter() - first_started
    took = []
    for _ in range(repetitions):
        t = time.perf_counter_ns()
        evaluate_group(FLEET, baseline, window, settings)
        took.append((time.perf_counter_ns() - t) / 1e6)
    return {
        "parse_s": parsed - started,
        "first_ms": first * 1e3,
        "median_ms": statistics.median(took),
        "p95_ms": statistics.quantiles(took, n=20)[-1] if len(took) > 1 else took[0],
        "drifted": sorted(f.name for f in result.features if f.drifted),
        "scores": {f.name: f.score for f in result.features},
        "verdict": result.verdict,
    }


def child_evidently(directory: Path, method: str) -> dict[str, Any]:
    """Evidently's data drift preset over the same arrays (runs in Evidently's venv)."""
    started = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently import __version__ as version
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter()
    definition = DataDefinition(numerical_columns=NAMES)
    frames = [
        pd.DataFrame(np.load(directory / f"{name}.npy"), columns=NAMES)
        for name in ("reference", "current")
    ]
    reference, current = (Dataset.from_pandas(f, data_definition=definition) for f in frames)
    loaded = time.perf_counter()
    preset = (
        DataDriftPreset(method="psi", threshold=THRESHOLD) if method == "psi" else DataDriftPreset()
    )
    snapshot = Report([preset], include_tests=True).run(current, reference)
    ran = time.perf_counter()
    result = snapshot.dict()
    drifted, scores, methods = [], {}, set()
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = float(metric["value"])
            methods.add(f"{config.get('method')} (threshold {config.get('threshold')})")
    for test in result["tests"]:
        column = test["metric_config"]["params"].get("column")
        status = getattr(test["status"], "value", test["status"])
        if column is not None and str(status).endswith("FAIL"):
            drifted.append(column)
    return {
        "version": version,
        "import_s": imported - started,
        "load_s": loaded - imported,
        "run_s": ran - loaded,
        "read_s": time.perf_counter() - ran,
        "drifted": sorted(drifted),
        "scores": scores,
        "methods": sorted(methods),
    }


# --- running a child, measured ----------------------------------------------------------------


@dataclass
class Child:
    """One measured child process."""

    wall_s: float
    peak_mb: float
    load: tuple[float, float]
    result: dict[str, Any] | None = None
    problem: str | None = None
    """Why there is no result (killed at a limit, or failed)."""


def status_mb(pid: int | str, field: str = "VmRSS") -> float:
    """A memory line of /proc/<pid>/status (VmRSS, VmHWM), in MiB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(
    command: Sequence[str], out: Path, env: dict[str, str], limit_s: float, limit_mb: float
) -> Child:
    """Run `command` (which writes its result as JSON to `out`), killing it at the limits."""
    out.unlink(missing_ok=True)
    log = out.with_suffix(".log")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    problem = None
    peak = 0.0
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed, rss = time.monotonic() - started, status_mb(proc.pid)
            peak = max(peak, rss)
            if elapsed > limit_s or rss > limit_mb:
                problem = (
                    f"stopped after {elapsed:.0f} s (limit {limit_s:.0f} s)"
                    if elapsed > limit_s
                    else f"stopped at {rss / 1024:.1f} GB resident (limit {limit_mb / 1024:.0f} GB)"
                )
                proc.kill()  # the child this function started, by its own handle
                _, status, _ = os.wait4(proc.pid, 0)
                break
            time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    child = Child(wall, peak, (load_before, os.getloadavg()[0]), problem=problem)
    if problem is None and proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        child.problem = f"exit code {proc.returncode}: " + " / ".join(tail)
    elif problem is None:
        child.result = json.loads(out.read_text())
        # The child's own high-water mark: its ru_maxrss (wait4) would be at least this
        # script's RSS, which Linux carries over from before the exec.
        child.peak_mb = child.result["peak_mb"]
    return child


# --- the report ----------------------------------------------------------------------------------


@dataclass
class Size:
    """Everything measured at one size of the current set."""

    rows: int
    count: Child
    score: Child
    evidently: dict[str, Child] = field(default_factory=dict)


def _rows(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def _load(c: Child) -> str:
    return f"{c.load[0]:.1f} → {c.load[1]:.1f}"


def _verdicts(drifted: Sequence[str], mine: Sequence[str]) -> tuple[str, str]:
    """(what was flagged, against ours) as table cells."""
    extra = sorted(set(drifted) - set(DRIFTED))
    missed = sorted(set(DRIFTED) - set(drifted))
    flagged = f"{len(drifted)}"
    if not extra and not missed:
        flagged += " (exactly x000-x009)"
    else:
        parts = ([f"also {', '.join(extra)}"] if extra else []) + (
            [f"missed {', '.join(missed)}"] if missed else []
        )
        flagged += f" ({'; '.join(parts)})"
    same = sum((name in drifted) == (name in mine) for name in NAMES)
    return flagged, f"{same}/{FEATURES}"


def _margins(scores: dict[str, float]) -> str:
    drifted = [scores[n] for n in DRIFTED if n in scores]
    others = [v for n, v in scores.items() if n not in DRIFTED]
    if not drifted or not others:
        return "-"
    return f"{min(drifted):.3f} / {max(others):.3f}"


def _sturges(sizes: Sequence[Size]) -> str:
    bins = [int(np.ceil(np.log2(REFERENCE_ROWS + s.rows) + 1)) for s in sizes]
    return f"{min(bins)} to {max(bins)}" if min(bins) != max(bins) else str(bins[0])


def _family_scores(scores: dict[str, float]) -> dict[str, str]:
    """Per family, the drifted features' scores (shift, scale) and the largest undrifted."""
    out = {}
    for k, family in enumerate(FAMILIES):
        moved = [f"{scores[NAMES[j]]:.2f}" for j in sorted(SHIFTED | SCALED) if j % 4 == k]
        calm = max(scores[NAMES[j]] for j in range(10, FEATURES) if j % 4 == k)
        out[family] = f"{', '.join(moved)} / {calm:.3f}"
    return out


EVIDENTLY_NAMES = {
    "psi": '`DataDriftPreset(method="psi", threshold=0.2)`',
    "default": "`DataDriftPreset()` (its default test choice)",
}


def report(sizes: Sequence[Size], baseline_s: float, note: str, command: str) -> str:
    version = next(
        (c.result["version"] for s in sizes for c in s.evidently.values() if c.result), None
    )
    verdicts = []
    for s in sizes:
        assert s.score.result is not None
        mine = s.score.result["drifted"]
        cells = [_rows(s.rows), _verdicts(mine, DRIFTED)[0]]
        for key in ("psi", "default"):
            child = s.evidently.get(key)
            if child is None:
                cells += ["not run", ""]
            elif child.result is None:
                cells += [f"no result ({child.problem})", ""]
            else:
                cells += list(_verdicts(child.result["drifted"], mine))
        verdicts.append("| " + " | ".join(cells) + " |")
    timing = []
    for s in sizes:
        count, score = s.count.result or {}, s.score.result or {}
        timing.append(
            f"| {_rows(s.rows)} | ours: the operator scores the counts (`evaluate_group`) | "
            f"{score['median_ms']:.2f} ms median, {score['p95_ms']:.2f} ms p95 "
            f"(first {score['first_ms']:.2f} ms; parsing both documents "
            f"{score['parse_s'] * 1e3:.1f} ms) | {s.score.wall_s:.1f} s | "
            f"{s.score.peak_mb:.0f} | {_load(s.score)} |"
        )
        timing.append(
            f"| {_rows(s.rows)} | ours: counting the rows into the bins, once "
            f"(`Distributions.observe_features`; the pods' part) | "
            f"{count['count_s']:.2f} s (+ {count['load_s']:.2f} s reading the .npy) | "
            f"{s.count.wall_s:.1f} s | {s.count.peak_mb:.0f} | {_load(s.count)} |"
        )
        for key, child in s.evidently.items():
            name = f"Evidently {EVIDENTLY_NAMES[key]}"
            if child.result is None:
                ran = child.wall_s > 0
                timing.append(
                    f"| {_rows(s.rows)} | {name} | {child.problem} | "
                    f"{f'{child.wall_s:.0f} s' if ran else '-'} | "
                    f"{f'{child.peak_mb:.0f}' if ran else '-'} | {_load(child) if ran else '-'} |"
                )
                continue
            r = child.result
            timing.append(
                f"| {_rows(s.rows)} | {name}: `Report.run` | {r['run_s']:.2f} s (+ "
                f"{r['load_s']:.2f} s making the frames, {r['import_s']:.1f} s importing) | "
                f"{child.wall_s:.1f} s | {child.peak_mb:.0f} | {_load(child)} |"
            )
    margins = []
    for s in sizes:
        assert s.score.result is not None
        cells = [_rows(s.rows), _margins(s.score.result["scores"])]
        for key in ("psi", "default"):
            child = s.evidently.get(key)
            cells.append(_margins(child.result["scores"]) if child and child.result else "-")
        margins.append("| " + " | ".join(cells) + " |")
    largest = sizes[-1]
    assert largest.score.result is not None
    families = {"ours, PSI (10 quantile bins)": _family_scores(largest.score.result["scores"])}
    for key, label in (("psi", "Evidently PSI"), ("default", "Evidently default")):
        child = largest.evidently.get(key)
        if child is not None and child.result is not None:
            families[label] = _family_scores(child.result["scores"])
    family_rows = "\n".join(
        f"| {label} | " + " | ".join(cells[f] for f in FAMILIES) + " |"
        for label, cells in families.items()
    )
    methods = next(
        (
            ", ".join(c.result["methods"])
            for s in sizes
            if (c := s.evidently.get("default")) is not None and c.result
        ),
        None,
    )
    default = f"its default choice here is {methods}" if methods else "its default was not run"
    loads = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    newline = "\n"
    return f"""{BEGIN}
## Drift verdicts against Evidently, as the rows grow

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, Python \
{platform.python_version()}, {platform.machine()}, Linux {platform.release()}, Evidently \
{version or "(no run of it finished)"}; load average at the end {loads} \
(1/5/15 min; each row below has its own, before → after); command:
`{command}`.
{note}
Data: {FEATURES} numeric features in four families (normal, lognormal, logistic, sinh of a
normal, a quarter each); a {REFERENCE_ROWS:,}-row reference (fixed) and a current set of the
given rows, where x000-x004 moved by a location shift ({SHIFT} sd of the latent normal) and
x005-x009 by a change of scale (x{SCALE:g}); the other 90 are drawn like the reference. Ours
bins each feature into 10 quantile bins of the reference (the training program's
baseline, built once in {baseline_s:.2f} s) and flags PSI > {THRESHOLD}; Evidently's PSI bins
reference and current together into equal-width bins (numpy's "sturges" rule:
{_sturges(sizes)} bins at these sizes) and flags PSI >= {THRESHOLD}; {default}.
Quantile bins of the reference make ours blind to the shape of a feature (any monotone
transform of it scores the same, so the four families score alike); equal-width bins
are not, as the per-family table at the end shows.

Verdicts (features flagged as drifted; "same as ours": features with the same verdict):

| current rows | ours (PSI > {THRESHOLD}) | Evidently PSI | same as ours | Evidently default | \
same as ours |
| --- | --- | --- | ---: | --- | ---: |
{newline.join(verdicts)}

Time and memory (each in its own process; "process" is its wall time from start to exit,
imports and reading the arrays included; peak RSS is its VmHWM):

| current rows | what | time | process | peak RSS MiB | load 1 min |
| --- | --- | --- | ---: | ---: | --- |
{newline.join(timing)}

Margins: the smallest score of the 10 drifted features / the largest of the 90 others
(threshold {THRESHOLD} for both PSIs, 0.1 for Evidently's default Wasserstein distance):

| current rows | ours, PSI | Evidently PSI | Evidently default |
| --- | ---: | ---: | ---: |
{newline.join(margins)}

Per family at {_rows(largest.rows)} rows: the drifted features' scores (location-shifted, \
then scaled) / the largest undrifted score:

| scores | {" | ".join(FAMILIES)} |
| --- | --- | --- | --- | --- |
{family_rows}
{END}
"""


def write_section(section: str) -> None:
    """Replace (or append) this script's section of docs/benchmarks.md."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from local_cluster_measure import write_section as write_docs_section

    write_docs_section("drift-peers", section.replace(BEGIN, "").replace(END, ""), DOC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="current-set rows")
    parser.add_argument("--repetitions", type=int, default=200, help="timed evaluations (ours)")
    parser.add_argument("--evidently-python", default=DEFAULT_EVIDENTLY)
    parser.add_argument(
        "--default-test",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run Evidently with its default test choice",
    )
    parser.add_argument("--limit-seconds", type=float, default=600.0)
    parser.add_argument("--limit-gb", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--child", choices=("count", "score", "evidently"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="psi", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        children: dict[str, Callable[[], dict[str, Any]]] = {
            "count": lambda: child_count(args.dir),
            "score": lambda: child_score(args.dir, args.repetitions),
            "evidently": lambda: child_evidently(args.dir, args.method),
        }
        result = children[args.child]()
        result["peak_mb"] = status_mb("self", "VmHWM")
        args.out.write_text(json.dumps(result))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    evidently = Path(args.evidently_python)
    note = ""
    if not evidently.exists():
        print(f"{evidently} does not exist: reporting ours only. To compare with Evidently:")
        print(f"    {HOW_TO_INSTALL}")
        note = (
            f"\nEvidently was not run: `{evidently}` does not exist (make it with "
            f"`{HOW_TO_INSTALL}`).\n"
        )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "operator"), env.get("PYTHONPATH", "")) if p
    )
    peer_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    limit_mb = args.limit_gb * 1024
    script = str(Path(__file__).resolve())
    results: list[Size] = []
    evidently_stopped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="edgeml-drift-peers-") as tmp:
        directory = Path(tmp)
        reference = dataset(REFERENCE_ROWS, current=False, seed=args.seed)
        np.save(directory / "reference.npy", reference)
        started = time.perf_counter()
        doc = baseline_document(reference)
        baseline_s = time.perf_counter() - started
        (directory / "baseline.json").write_text(json.dumps(doc))
        del reference
        for rows in sizes:
            print(f"{_rows(rows)} rows: making the current set", flush=True)
            np.save(directory / "current.npy", dataset(rows, current=True, seed=args.seed))

            def child(python: str, kind: str, *more: str, environment: dict[str, str]) -> Child:
                out = directory / f"{kind}.json"
                command = [python, script, "--child", kind, "--dir", tmp, "--out", str(out), *more]
                return run_child(command, out, environment, args.limit_seconds, limit_mb)

            print(f"{_rows(rows)} rows: ours, counting", flush=True)
            count = child(sys.executable, "count", environment=env)
            if count.result is None:
                raise SystemExit(f"counting failed: {count.problem}")
            print(f"{_rows(rows)} rows: ours, scoring", flush=True)
            score = child(
                sys.executable, "score", "--repetitions", str(args.repetitions), environment=env
            )
            if score.result is None:
                raise SystemExit(f"scoring failed: {score.problem}")
            size = Size(rows, count, score)
            methods = ["psi", "default"] if args.default_test else ["psi"]
            for method in methods if evidently.exists() else []:
                if method in evidently_stopped:
                    why = f"not tried: a smaller size was {evidently_stopped[method]}"
                    print(f"{_rows(rows)} rows: Evidently {method} {why}", flush=True)
                    load = os.getloadavg()[0]
                    size.evidently[method] = Child(0.0, 0.0, (load, load), problem=why)
                    continue
                print(f"{_rows(rows)} rows: Evidently, {method}", flush=True)
                ran = child(str(evidently), "evidently", "--method", method, environment=peer_env)
                size.evidently[method] = ran
                if ran.result is None:
                    print(f"  Evidently {method}: {ran.problem}", flush=True)
                    evidently_stopped[method] = ran.problem or ""
                else:
                    print(f"  Report.run {ran.result['run_s']:.1f} s", flush=True)
            results.append(size)
            (directory / "current.npy").unlink()
    command = "PYTHONPATH=operator .venv/bin/python bench/drift_peers.py"
    if args.sizes != parser.get_default("sizes"):
        command += f" --sizes {args.sizes}"
    if not args.default_test:
        command += " --no-default-test"
    if args.evidently_python != DEFAULT_EVIDENTLY:
        command += f" --evidently-python {args.evidently_python}"
    section = report(results, baseline_s, note, command)
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
