"""Live counts over a policy's window, per version: read from pods or Prometheus, summed.

Each inference pod keeps its own recent-window counts (`edgeml serve`'s
`/drift/window?seconds=N`, see serving/window.py), so a window never depends on the
operator having seen earlier scrapes: an operator restart loses nothing, a pod restart
loses at most its last partial slot, and a replaced pod takes its window with it (its
successor serves another version, compared with that version's baseline). Prometheus
gives the same counts as `increase(...[window])` of the pods' cumulative counters.
Both arrive here as plain data; this module parses and sums them, nothing else.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

PredictionKind = Literal["classification", "regression"]


class WindowFormatError(ValueError):
    """A pod's window document is not the shape `edgeml serve` answers."""


@dataclass(frozen=True)
class WindowCounts:
    """What a pod, or a group of pods, counted in the window for one model version."""

    version: str
    rows: float = 0.0
    """Rows predicted."""
    features: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Per feature, counts over the version's baseline bins."""
    prediction_kind: PredictionKind = "classification"
    classes: Mapping[str, float] = field(default_factory=dict)
    """Predicted classes (classification)."""
    prediction_bins: tuple[float, ...] = ()
    """Predicted values over the baseline's prediction bins (regression)."""
    labelled: float = 0.0
    """Rows that got a feedback label."""
    confusion: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """confusion[true label][predicted label] = rows (classification feedback)."""
    absolute_error_sum: float = 0.0
    squared_error_sum: float = 0.0
    covered_seconds: float = 0.0
    """The shortest span any of the summed pods covered."""
    pods: int = 1


def _count(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WindowFormatError(f"{where} is {value!r}, not a count")
    # A counter reset inside Prometheus' increase() can leave tiny negatives; never a count.
    return max(float(value), 0.0)


def parse_pod_window(doc: Mapping[str, Any]) -> WindowCounts | None:
    """One pod's `/drift/window` answer; None when the pod has no model loaded yet."""
    if not isinstance(doc, Mapping):
        raise WindowFormatError("the window is not a JSON object")
    if not doc.get("ready", False) or doc.get("version") in (None, ""):
        return None
    try:
        features = {
            str(name): tuple(_count(c, f"features.{name}") for c in counts)
            for name, counts in dict(doc.get("features") or {}).items()
        }
        predictions = dict(doc.get("predictions") or {})
        kind = predictions.get("kind", "classification")
        if kind not in ("classification", "regression"):
            raise WindowFormatError(f"predictions.kind is {kind!r}")
        classes: dict[str, float] = {}
        bins: tuple[float, ...] = ()
        if kind == "classification":
            classes = {
                str(k): _count(v, f"predictions.counts.{k}")
                for k, v in dict(predictions.get("counts") or {}).items()
            }
        else:
            bins = tuple(_count(c, "predictions.counts") for c in predictions.get("counts") or [])
        feedback = dict(doc.get("feedback") or {})
        confusion = {
            str(t): {str(p): _count(n, f"feedback.confusion.{t}.{p}") for p, n in dict(row).items()}
            for t, row in dict(feedback.get("confusion") or {}).items()
        }
        return WindowCounts(
            version=str(doc["version"]),
            rows=_count(doc.get("rows", 0), "rows"),
            features=features,
            prediction_kind=kind,
            classes=classes,
            prediction_bins=bins,
            labelled=_count(feedback.get("labelled", 0), "feedback.labelled"),
            confusion=confusion,
            absolute_error_sum=_count(feedback.get("absoluteErrorSum", 0), "absoluteErrorSum"),
            squared_error_sum=_count(feedback.get("squaredErrorSum", 0), "squaredErrorSum"),
            covered_seconds=_count(doc.get("covered", 0), "covered"),
        )
    except (TypeError, AttributeError) as err:
        raise WindowFormatError(f"the window has an unexpected shape: {err}") from err


def _add_vectors(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    if not a:
        return b
    if not b:
        return a
    if len(a) != len(b):
        raise WindowFormatError(f"bins of {len(a)} and {len(b)} counts cannot be summed")
    return tuple(x + y for x, y in zip(a, b, strict=True))


def combine(windows: Sequence[WindowCounts]) -> WindowCounts:
    """The sum of several pods' windows of one version."""
    if not windows:
        raise ValueError("nothing to combine")
    versions = {w.version for w in windows}
    if len(versions) != 1:
        raise ValueError(f"windows of versions {sorted(versions)} cannot be summed")
    features: dict[str, tuple[float, ...]] = {}
    classes: defaultdict[str, float] = defaultdict(float)
    confusion: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    bins: tuple[float, ...] = ()
    for w in windows:
        for name, counts in w.features.items():
            features[name] = _add_vectors(features.get(name, ()), counts)
        for label, n in w.classes.items():
            classes[label] += n
        bins = _add_vectors(bins, w.prediction_bins)
        for truth, row in w.confusion.items():
            for predicted, n in row.items():
                confusion[truth][predicted] += n
    return WindowCounts(
        version=windows[0].version,
        rows=sum(w.rows for w in windows),
        features=features,
        prediction_kind=windows[0].prediction_kind,
        classes=dict(classes),
        prediction_bins=bins,
        labelled=sum(w.labelled for w in windows),
        confusion={t: dict(row) for t, row in confusion.items()},
        absolute_error_sum=sum(w.absolute_error_sum for w in windows),
        squared_error_sum=sum(w.squared_error_sum for w in windows),
        covered_seconds=min(w.covered_seconds for w in windows),
        pods=sum(w.pods for w in windows),
    )


def by_version(windows: Iterable[WindowCounts]) -> dict[str, WindowCounts]:
    """Windows summed per version."""
    grouped: dict[str, list[WindowCounts]] = defaultdict(list)
    for w in windows:
        grouped[w.version].append(w)
    return {version: combine(ws) for version, ws in sorted(grouped.items())}


def bins_from_cumulative(buckets: Mapping[float, float]) -> tuple[float, ...]:
    """Bin counts from cumulative `le` buckets (the +Inf one included): the differences.

    `edgeml serve`'s buckets count values below each edge (its bins are closed below),
    so these differences are exactly the baseline's bins.
    """
    out = []
    below = 0.0
    for edge in sorted(buckets):
        value = max(buckets[edge], below)  # an increase() of a reset counter can dip
        out.append(value - below)
        below = value
    return tuple(out)
