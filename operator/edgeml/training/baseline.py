"""The drift baseline: what the training data and the model's predictions looked like.

A pure function of the training rows, stored as `edgeml/baseline.json` on the MLflow
run; serving counts live rows into the same bins and drift compares the two (PSI).

Shape (all keys camelCase, numbers as JSON numbers):

```json
{
  "version": 1,
  "rows": 4000,                       # training rows counted
  "bins": 10,                         # quantile bins asked for per feature
  "encoding": {"columns": [...], "categorical": {"site": ["a", "b"]}, "inputs": [...]},
  "features": [
    {"name": "temp", "edges": [e1, ..., ek], "counts": [c0, ..., ck],
     "min": ..., "max": ..., "mean": ...}
  ],
  "prediction": {"kind": "classification", "classes": ["0", "1"], "counts": [2100, 1900]}
             or {"kind": "regression", "edges": [...], "counts": [...], "min": ..., ...}
}
```

Bins: `edges` are the distinct interior quantiles (10%, 20% ... 90%) of the training
values, ascending, each one a training value (inverted-CDF quantiles, no
interpolation); `counts` has one more entry than `edges`: count i is of values v with
edges[i-1] <= v < edges[i], the first bin open below (-inf) and the last open above
(+inf) - JSON has no infinity, so the open ends are implied. Every value lands in a
bin: the counts of a feature sum to `rows`. A constant feature has one edge (its
value) and all rows in the last bin. `features` follows `encoding.inputs` (one-hot
inputs are binned like any number). Predictions are those of the fitted estimator on
the training rows; classes are written as text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgeml.training.datasets import Task

BASELINE_VERSION = 1
DEFAULT_BINS = 10


def bin_edges(values: npt.NDArray[np.floating[Any]], bins: int = DEFAULT_BINS) -> list[float]:
    """The distinct interior quantile edges of `values` for `bins` equal-mass bins."""
    quantiles = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    # Quantiles that are data values (no interpolation), so a discrete feature's edges
    # are its values: a 0/1 input gets edges [0, 1], not 0.3.
    edges = np.unique(np.quantile(values.astype(np.float64), quantiles, method="inverted_cdf"))
    return [float(e) for e in edges]


def bin_counts(values: npt.NDArray[np.floating[Any]], edges: list[float]) -> list[int]:
    """How many values fall in each bin of `edges` (len(edges) + 1 bins, open ends)."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return [int(c) for c in np.bincount(index, minlength=len(edges) + 1)]


def _histogram(values: npt.NDArray[np.floating[Any]], bins: int) -> dict[str, Any]:
    edges = bin_edges(values, bins)
    return {
        "edges": edges,
        "counts": bin_counts(values, edges),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }


def build_baseline(
    features: npt.NDArray[np.float32],
    inputs: list[str],
    predictions: npt.NDArray[Any],
    task: Task,
    encoding: dict[str, Any],
    classes: npt.NDArray[Any] | None = None,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """The baseline document (see the module docstring) of these training rows."""
    values = features.astype(np.float64)
    prediction: dict[str, Any]
    if task == "classification":
        labels = [str(c) for c in (classes if classes is not None else np.unique(predictions))]
        as_text = np.asarray(predictions).astype(str)
        prediction = {
            "kind": "classification",
            "classes": labels,
            "counts": [int(np.count_nonzero(as_text == label)) for label in labels],
        }
    else:
        prediction = {
            "kind": "regression",
            **_histogram(np.asarray(predictions, dtype=np.float64).reshape(-1), bins),
        }
    return {
        "version": BASELINE_VERSION,
        "rows": len(values),
        "bins": bins,
        "encoding": encoding,
        "features": [
            {"name": name, **_histogram(values[:, i], bins)} for i, name in enumerate(inputs)
        ],
        "prediction": prediction,
    }
