"""Baselines and windows for the drift tests: eight features of ten bins, two classes."""

from __future__ import annotations

from typing import Any

from edgeml.drift.baseline import Baseline, parse_baseline
from edgeml.drift.windows import WindowCounts

FEATURES = [f"f{i}" for i in range(8)]
EVEN = [100.0] * 10
SHIFTED = [10.0, 10.0, 10.0, 10.0, 10.0, 100.0, 200.0, 250.0, 200.0, 200.0]


def baseline_doc(
    features: list[str] = FEATURES, categorical: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """A baseline document as the training program writes it."""
    inputs = list(features)
    docs = [{"name": n, "edges": list(range(9)), "counts": [100] * 10} for n in features]
    for column, values in (categorical or {}).items():
        for value in values:
            inputs.append(f"{column}={value}")
            docs.append({"name": f"{column}={value}", "edges": [0.0, 1.0], "counts": [0, 500, 500]})
    return {
        "version": 1,
        "rows": 1000,
        "bins": 10,
        "encoding": {"columns": features, "categorical": categorical or {}, "inputs": inputs},
        "features": docs,
        "prediction": {"kind": "classification", "classes": ["0", "1"], "counts": [500, 500]},
    }


def baseline(version: str = "1", **kw: Any) -> Baseline:
    return parse_baseline(version, baseline_doc(**kw))


def window(
    version: str = "1",
    rows: float = 1000,
    shifted: tuple[str, ...] = (),
    classes: dict[str, float] | None = None,
    scale: float = 1.0,
    **kw: Any,
) -> WindowCounts:
    """A window of `rows` rows, like the baseline except the `shifted` features."""
    factor = rows / 1000 * scale
    features = {n: tuple(c * factor for c in (SHIFTED if n in shifted else EVEN)) for n in FEATURES}
    return WindowCounts(
        version=version,
        rows=rows * scale,
        features=kw.pop("features", features),
        classes=classes if classes is not None else {"0": rows * scale / 2, "1": rows * scale / 2},
        covered_seconds=kw.pop("covered_seconds", 600.0),
        **kw,
    )
