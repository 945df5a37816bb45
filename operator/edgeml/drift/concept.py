"""Live model quality from feedback counts: concept drift is the metric falling.

Pure functions of counts, standard library only. Classification feedback arrives as a
confusion of counts, `confusion[true_label][predicted_label]`; regression feedback as
a count and the sums of absolute and squared errors. The metrics mean exactly what
the training program's evaluation means (edgeml/training/evaluation.py), so a live
value can be set against the one registered with the model:

- accuracy: the correct share of all labelled rows;
- binary (two classes): precision, recall and f1 of the positive class, the second
  of the classes (of the sorted labels when no class list is given);
- multiclass: their macro average over the classes, a class with nothing to divide
  by scoring 0 (scikit-learn's zero_division=0), also one absent from the window;
- regression: mae and rmse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

_CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
_REGRESSION_METRICS = ("mae", "rmse")

Confusion = Mapping[str, Mapping[str, float]]
"""confusion[true_label][predicted_label] = count."""


def labelled(confusion: Confusion) -> float:
    """The number of labelled rows the confusion counts."""
    return sum(sum(row.values()) for row in confusion.values())


def classification_metric(
    metric: str, confusion: Confusion, classes: Sequence[str] | None = None
) -> float | None:
    """accuracy, precision, recall or f1 of the rows in `confusion`; None if there are none.

    `classes` is the baseline's class list, in the model's order: two classes make the
    metric binary, of `classes[1]`, and it names the classes a macro average runs over.
    Without it the labels are those the confusion counts (with a positive count), sorted.
    Labels outside `classes` still count as rows (a wrong prediction, a missed class).
    """
    if metric not in _CLASSIFICATION_METRICS:
        raise ValueError(
            f"unknown classification metric {metric!r} (use {', '.join(_CLASSIFICATION_METRICS)})"
        )
    if any(count < 0.0 for row in confusion.values() for count in row.values()):
        raise ValueError("confusion counts must be non-negative")
    total = labelled(confusion)
    if total <= 0.0:
        return None
    if metric == "accuracy":
        return sum(row.get(label, 0.0) for label, row in confusion.items()) / total
    labels = list(classes) if classes is not None else _seen_labels(confusion)
    if not labels:
        raise ValueError("classes must name at least one class")
    if len(labels) == 2:
        return _one_vs_rest(metric, confusion, labels[1])
    return sum(_one_vs_rest(metric, confusion, label) for label in labels) / len(labels)


def regression_metric(
    metric: str, count: float, absolute_error_sum: float, squared_error_sum: float
) -> float | None:
    """mae or rmse from a row count and the error sums; None when there are no rows."""
    if metric not in _REGRESSION_METRICS:
        raise ValueError(
            f"unknown regression metric {metric!r} (use {', '.join(_REGRESSION_METRICS)})"
        )
    if count < 0.0 or absolute_error_sum < 0.0 or squared_error_sum < 0.0:
        raise ValueError("a row count and error sums must be non-negative")
    if count == 0.0:
        return None
    if metric == "mae":
        return absolute_error_sum / count
    return math.sqrt(squared_error_sum / count)


def _seen_labels(confusion: Confusion) -> list[str]:
    seen = {t for t, row in confusion.items() if any(c > 0.0 for c in row.values())}
    seen.update(p for row in confusion.values() for p, c in row.items() if c > 0.0)
    return sorted(seen)


def _one_vs_rest(metric: str, confusion: Confusion, positive: str) -> float:
    """precision, recall or f1 of one class against all others; 0 where undefined."""
    hits = confusion.get(positive, {}).get(positive, 0.0)
    predicted = sum(row.get(positive, 0.0) for row in confusion.values())
    actual = sum(confusion.get(positive, {}).values())
    if metric == "precision":
        return hits / predicted if predicted > 0.0 else 0.0
    if metric == "recall":
        return hits / actual if actual > 0.0 else 0.0
    # 2 tp / (2 tp + fp + fn), as scikit-learn computes it (not from rounded P and R).
    return 2.0 * hits / (predicted + actual) if predicted + actual > 0.0 else 0.0
