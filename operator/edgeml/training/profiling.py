"""How the ONNX model runs on one CPU thread, and what an edge pod should request for it.

The measurement runs in a fresh child interpreter (`python -m edgeml.training.profiling
MODEL ROWS`) that imports only numpy and onnxruntime, as a serving process would: memory
measured inside the training process is meaningless (it reuses what training freed, and
its peak is the training's). The child loads the model with onnxruntime on one thread
without spinning, runs one row at least 200 times and a 64-row batch up to 200 times
(at least 20, within 10 s), and reads VmRSS / VmHWM from /proc/self/status. If the child
cannot run, the same measurement is made in-process and `measuredIn` says so; the
peak RSS used below is then an estimate, 48 MiB of runtime plus the growth of RSS over
loading and running (unreliable: freed training memory gets reused).

Recommended requests for an edge inference pod, from those numbers:
- memory = ceil((peak RSS + 32 MiB) / 16 MiB) x 16 MiB, where peak RSS is the child's
  VmHWM (Python, numpy, onnxruntime and the model, loaded and run) and 32 MiB is the
  HTTP server and metrics of the serving process;
- cpu = max(50m, ceil((p99 of one row in ms + 1 ms of request handling) x 50 requests/s
  / 10) x 10 millicores): milliseconds of CPU per second at 50 requests per second,
  rounded up to 10m.

Profile document (`edgeml/profile.json`):

```json
{"version": 1, "runtime": "onnxruntime 1.32.0", "threads": 1, "measuredIn": "child",
 "modelBytes": 123, "loadMs": 1.2,
 "singleRow": {"runs": 200, "p50Ms": 0.01, "p99Ms": 0.03},
 "batch64": {"runs": 200, "p50Ms": 0.2, "p99Ms": 0.4},
 "memory": {"rssBeforeBytes": ..., "rssAfterBytes": ..., "modelRssBytes": ...,
            "peakRssBytes": ...},
 "recommended": {"cpu": "60m", "memory": "96Mi"}}
```
`rssBeforeBytes` is after the imports and before loading; `modelRssBytes` is peak minus
before.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeml.training.session import INPUT_NAME, onnx_session

PROFILE_VERSION = 1
SINGLE_ROW_RUNS = 200
BATCH_ROWS = 64
BATCH_BUDGET_SECONDS = 10.0
CHILD_TIMEOUT_SECONDS = 300.0
SERVER_OVERHEAD_BYTES = 32 * 2**20
RUNTIME_ESTIMATE_BYTES = 48 * 2**20
MEMORY_STEP_BYTES = 16 * 2**20
REQUEST_OVERHEAD_MS = 1.0
REFERENCE_RATE_PER_SECOND = 50
MIN_CPU_MILLICORES = 50


def read_memory_status(text: str) -> dict[str, int]:
    """VmRSS and VmHWM (bytes) from the text of /proc/<pid>/status; missing ones are left out."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            number, _, unit = rest.strip().partition(" ")
            found[key] = int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    return found


def _memory_now() -> dict[str, int]:
    try:
        return read_memory_status(Path("/proc/self/status").read_text())
    except OSError:  # not Linux: memory figures stay 0
        return {}


def summarize_latencies(seconds: list[float]) -> dict[str, Any]:
    """Runs, p50 and p99 in milliseconds of some timings in seconds."""
    millis = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "runs": len(seconds),
        "p50Ms": round(float(np.percentile(millis, 50)), 4),
        "p99Ms": round(float(np.percentile(millis, 99)), 4),
    }


def recommend_resources(p99_row_ms: float, peak_rss_bytes: int) -> dict[str, str]:
    """The cpu and memory requests of an edge inference pod (formulas in the module doc)."""
    memory = (
        math.ceil((max(peak_rss_bytes, 0) + SERVER_OVERHEAD_BYTES) / MEMORY_STEP_BYTES)
        * MEMORY_STEP_BYTES
    )
    busy = (p99_row_ms + REQUEST_OVERHEAD_MS) * REFERENCE_RATE_PER_SECOND
    cpu = max(MIN_CPU_MILLICORES, math.ceil(busy / 10) * 10)
    return {"cpu": f"{cpu}m", "memory": f"{memory // 2**20}Mi"}


def measure(model: bytes | str, rows: npt.NDArray[np.float32]) -> dict[str, Any]:
    """Load and run the model in this process: load time, latencies, memory (raw figures)."""
    import onnxruntime as ort

    if len(rows) == 0:
        raise ValueError("profiling needs at least one row")
    before = _memory_now()
    start = time.perf_counter()
    session = onnx_session(model)
    load_ms = (time.perf_counter() - start) * 1000.0
    singles = [np.ascontiguousarray(rows[i : i + 1]) for i in range(min(len(rows), 256))]
    batch = np.ascontiguousarray(np.resize(rows, (BATCH_ROWS, rows.shape[1])))
    for row in singles[:10]:  # warm-up: the first runs allocate
        session.run(None, {INPUT_NAME: row})
    single_timings: list[float] = []
    for i in range(SINGLE_ROW_RUNS):
        feed = singles[i % len(singles)]
        begin = time.perf_counter()
        session.run(None, {INPUT_NAME: feed})
        single_timings.append(time.perf_counter() - begin)
    batch_timings: list[float] = []
    started = time.perf_counter()
    for _ in range(SINGLE_ROW_RUNS):
        begin = time.perf_counter()
        session.run(None, {INPUT_NAME: batch})
        batch_timings.append(time.perf_counter() - begin)
        if len(batch_timings) >= 20 and time.perf_counter() - started > BATCH_BUDGET_SECONDS:
            break
    after = _memory_now()
    return {
        "runtime": f"onnxruntime {ort.__version__}",
        "loadMs": round(load_ms, 3),
        "singleRow": summarize_latencies(single_timings),
        f"batch{BATCH_ROWS}": summarize_latencies(batch_timings),
        "rssBeforeBytes": before.get("VmRSS", 0),
        "rssAfterBytes": after.get("VmRSS", 0),
        "peakRssBytes": after.get("VmHWM", 0),
    }


def _measure_in_child(model_bytes: bytes, rows: npt.NDArray[np.float32]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgeml-profile-") as tmp:
        model_path = Path(tmp) / "model.onnx"
        rows_path = Path(tmp) / "rows.npy"
        model_path.write_bytes(model_bytes)
        np.save(rows_path, rows)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        done = subprocess.run(
            [sys.executable, "-m", "edgeml.training.profiling", str(model_path), str(rows_path)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            env=env,
            check=False,
        )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise RuntimeError(tail[0])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def profile_onnx(
    model_bytes: bytes, rows: npt.NDArray[np.float32], *, in_child: bool = True
) -> dict[str, Any]:
    """The profile document (module docstring) of the model run on `rows` (held-out rows)."""
    measured_in = "child"
    raw: dict[str, Any] | None = None
    if in_child:
        try:
            raw = _measure_in_child(model_bytes, rows)
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            measured_in = f"training process (the child failed: {exc})"[:300]
    if raw is None:
        measured_in = measured_in if in_child else "training process"
        raw = measure(model_bytes, rows)
    before, after = int(raw["rssBeforeBytes"]), int(raw["rssAfterBytes"])
    peak = int(raw["peakRssBytes"])
    # In-process, the peak is the training's: estimate a serving process instead.
    serving_peak = (
        peak if measured_in == "child" else RUNTIME_ESTIMATE_BYTES + max(after - before, 0)
    )
    single = raw["singleRow"]
    return {
        "version": PROFILE_VERSION,
        "runtime": raw["runtime"],
        "threads": 1,
        "measuredIn": measured_in,
        "modelBytes": len(model_bytes),
        "loadMs": raw["loadMs"],
        "singleRow": single,
        f"batch{BATCH_ROWS}": raw[f"batch{BATCH_ROWS}"],
        "memory": {
            "rssBeforeBytes": before,
            "rssAfterBytes": after,
            "modelRssBytes": max(peak - before, 0),
            "peakRssBytes": peak,
        },
        "recommended": recommend_resources(float(single["p99Ms"]), serving_peak),
    }


def _child_main(argv: list[str]) -> int:
    """In the child: measure the model at argv[0] on the rows saved at argv[1]."""
    rows = np.load(argv[1])
    print(json.dumps(measure(argv[0], rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
