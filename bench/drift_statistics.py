"""Drift statistics: one evaluation of 100 features x 10 bins, ours (stdlib) against scipy/numpy.

One evaluation is what a drift check computes for one deployment: for every feature the
drift score of the live window against the training baseline (PSI unless `--method`),
Pearson's chi-square test of the two histograms, then Benjamini-Hochberg over the
features' p-values. Three implementations do the same computation from the same Python
lists of counts (what the operator holds after parsing the baseline and the scrape):

- ours: `edgeml.drift.statistics`, pure Python;
- scipy per feature: `scipy.stats.chi2_contingency(correction=False)` per feature, PSI
  with numpy over the whole feature matrix, `scipy.stats.false_discovery_control`;
- numpy vectorised: PSI and the chi-square statistic over the whole matrix at once,
  `scipy.stats.chi2.sf`, `false_discovery_control` (the fastest way with scipy).

Before timing, the three are checked to agree (scores, p-values and q-values to 1e-9
relative). Each is timed over `--repetitions` evaluations after a warm-up; the table
gives the median and the 95th percentile. Then the resident memory of a fresh
interpreter after importing each (VmRSS), the other cost of scipy in the operator.
Prints a markdown summary and rewrites the `bench:drift-statistics` section of
docs/benchmarks.md (`--no-write` only prints). No cluster needed.

    PYTHONPATH=operator .venv/bin/python bench/drift_statistics.py [--repetitions 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import stats

from edgeml.drift.statistics import EPSILON, Method, benjamini_hochberg, chi_square, score

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:drift-statistics begin -->", "<!-- bench:drift-statistics end -->"
BASELINE_ROWS, WINDOW_ROWS = 4000, 1000
DRIFTED = 0.2  # the share of features whose live distribution moved

Counts = list[list[float]]
Result = tuple[list[float], list[float], list[float]]  # scores, p-values, q-values


def workload(features: int, bins: int, seed: int = 0) -> tuple[Counts, Counts]:
    """Baseline histograms of equal-mass bins and live windows, some of them drifted."""
    rng = np.random.default_rng(seed)
    even = np.full(bins, 1.0 / bins)
    baselines, lives = [], []
    for i in range(features):
        baselines.append([float(c) for c in rng.multinomial(BASELINE_ROWS, even)])
        shape = rng.dirichlet(np.full(bins, 20.0)) if i < DRIFTED * features else even
        lives.append([float(c) for c in rng.multinomial(WINDOW_ROWS, shape)])
    return baselines, lives


def ours(method: Method) -> Callable[[Counts, Counts], Result]:
    def evaluate(baselines: Counts, lives: Counts) -> Result:
        scores, p_values = [], []
        for baseline, live in zip(baselines, lives, strict=True):
            scores.append(score(method, baseline, live))
            p_values.append(chi_square(baseline, live).p_value)
        return scores, p_values, benjamini_hochberg(p_values)

    return evaluate


def _numpy_psi(b: np.ndarray, v: np.ndarray) -> np.ndarray:
    k = b.shape[1]
    p = (b / b.sum(axis=1, keepdims=True) + EPSILON) / (1 + k * EPSILON)
    q = (v / v.sum(axis=1, keepdims=True) + EPSILON) / (1 + k * EPSILON)
    return np.asarray(((q - p) * np.log(q / p)).sum(axis=1))


def scipy_per_feature(baselines: Counts, lives: Counts) -> Result:
    b, v = np.asarray(baselines), np.asarray(lives)
    p_values = []
    for row_b, row_v in zip(b, v, strict=True):
        table = np.stack([row_b, row_v])
        table = table[:, table.sum(axis=0) > 0]  # as ours: bins empty in both dropped
        p_values.append(float(stats.chi2_contingency(table, correction=False).pvalue))
    q_values = stats.false_discovery_control(p_values, method="bh")
    return list(_numpy_psi(b, v)), p_values, list(q_values)


def numpy_vectorised(baselines: Counts, lives: Counts) -> Result:
    b, v = np.asarray(baselines), np.asarray(lives)
    column = b + v
    rows_b, rows_v = b.sum(axis=1, keepdims=True), v.sum(axis=1, keepdims=True)
    total = rows_b + rows_v
    occupied = column > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_b, expected_v = rows_b * column / total, rows_v * column / total
        cells = (b - expected_b) ** 2 / expected_b + (v - expected_v) ** 2 / expected_v
    statistic = np.where(occupied, cells, 0.0).sum(axis=1)
    dof = occupied.sum(axis=1) - 1
    p_values = np.where(dof > 0, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    q_values = stats.false_discovery_control(p_values, method="bh")
    return list(_numpy_psi(b, v)), list(p_values), list(q_values)


def worst_gap(ours_: Result, theirs: Result) -> float:
    """The largest relative difference between two results, over every number."""
    gap = 0.0
    for mine, other in zip(ours_, theirs, strict=True):
        for x, y in zip(mine, other, strict=True):
            gap = max(gap, abs(x - y) / max(abs(y), 1e-300))
    return gap


def time_it(
    evaluate: Callable[[Counts, Counts], Result], data: tuple[Counts, Counts], repetitions: int
) -> tuple[float, float]:
    """(median, p95) of one evaluation, in milliseconds."""
    for _ in range(max(20, repetitions // 20)):
        evaluate(*data)
    took = []
    for _ in range(repetitions):
        started = time.perf_counter_ns()
        evaluate(*data)
        took.append((time.perf_counter_ns() - started) / 1e6)
    return statistics.median(took), statistics.quantiles(took, n=20)[-1]


IMPORTS = {
    "`edgeml.drift.statistics`": "import edgeml.drift.statistics",
    "`numpy`": "import numpy",
    "`numpy`, `scipy.stats` (chi2_contingency, false_discovery_control)": "import scipy.stats",
}


def resident_mb(statement: str) -> float:
    """VmRSS of a fresh interpreter after `statement`, in MiB."""
    probe = (
        f"{statement}\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS:'):\n"
        "        print(int(line.split()[1]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(REPO / "operator")},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout) / 1024


def write_section(section: str) -> None:
    """Replace (or append) this script's section of docs/benchmarks.md."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from local_cluster_measure import write_section as write_docs_section

    write_docs_section("drift-statistics", section.replace(BEGIN, "").replace(END, ""), DOC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=2000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--method", choices=("psi", "ks", "jsd"), default="psi")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    data = workload(args.features, args.bins)
    mine = ours(args.method)
    contenders = {f"ours, `edgeml.drift.statistics` ({args.method}, stdlib only)": mine}
    if args.method == "psi":  # the scipy/numpy references compute PSI
        contenders["scipy per feature: `chi2_contingency` + numpy PSI"] = scipy_per_feature
        contenders["numpy vectorised over the features + `scipy.stats.chi2.sf`"] = numpy_vectorised
        reference = mine(*data)
        for name, evaluate in list(contenders.items())[1:]:
            gap = worst_gap(reference, evaluate(*data))
            print(f"ours vs {name}: largest relative difference {gap:.1e}", flush=True)
            if gap > 1e-9:
                raise SystemExit(f"ours and {name} disagree by {gap:.1e}")
    rows = []
    for name, evaluate in contenders.items():
        print(f"timing {name}: {args.repetitions} evaluations", flush=True)
        median, p95 = time_it(evaluate, data, args.repetitions)
        rows.append(f"| {name} | {median:.3f} | {p95:.3f} |")
    bare = resident_mb("pass")
    memory = [f"| nothing (a bare interpreter) | {bare:.1f} | |"]
    for name, statement in IMPORTS.items():
        rss = resident_mb(statement)
        memory.append(f"| {name} | {rss:.1f} | {rss - bare:+.1f} |")
    load = os.getloadavg()[0]
    table = "\n".join(rows)
    memory_table = "\n".join(memory)
    section = f"""{BEGIN}
## Drift statistics: pure Python against scipy/numpy

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, Python \
{platform.python_version()}, load average {load:.1f}; command:
`PYTHONPATH=operator .venv/bin/python bench/drift_statistics.py --repetitions {args.repetitions}`.
One evaluation: {args.features} features x {args.bins} bins ({BASELINE_ROWS} baseline rows,
{WINDOW_ROWS}-row windows, {DRIFTED:.0%} of the features drifted): the {args.method} score and a
chi-square test per feature, then Benjamini-Hochberg over the {args.features} p-values, from
Python lists of counts. {args.repetitions} evaluations each.

| implementation | median ms | p95 ms |
| --- | ---: | ---: |
{table}

Resident memory of a fresh interpreter after the import:

| imported | VmRSS MiB | over bare python |
| --- | ---: | ---: |
{memory_table}
{END}
"""
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
