"""A version's drift baseline as the operator reads it: bin counts per feature, predictions.

The document is written by the training program (training/baseline.py documents its
shape); here it is only checked and turned into plain counts. One-hot inputs of a
categorical column are features like any other (`encoding.inputs` names them, for
example `site=a`), binned at their 0/1 values, so each is compared bin for bin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeml.drift.windows import PredictionKind


class BaselineFormatError(ValueError):
    """The baseline document cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Baseline:
    """The training data's distributions for one version."""

    version: str
    rows: float
    features: Mapping[str, tuple[float, ...]]
    """Per feature, the training rows in each bin (len(edges) + 1)."""
    prediction_kind: PredictionKind
    classes: Mapping[str, float] = field(default_factory=dict)
    """Predicted classes on the training rows (classification), in the baseline's order."""
    prediction_bins: tuple[float, ...] = ()
    """Predicted values over the prediction bins (regression)."""
    categorical: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Categorical columns and their one-hot inputs' names."""


def _counts(values: Any, where: str) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise BaselineFormatError(f"{where} is not a list of counts")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise BaselineFormatError(f"{where} holds {v!r}, not a count")
        out.append(float(v))
    return tuple(out)


def parse_baseline(version: str, doc: Mapping[str, Any]) -> Baseline:
    """Check and read a baseline document (edgeml/baseline.json of the version's run)."""
    if not isinstance(doc, Mapping) or doc.get("version") != 1:
        raise BaselineFormatError("not an edgeml baseline of format version 1")
    features: dict[str, tuple[float, ...]] = {}
    for i, feature in enumerate(doc.get("features") or []):
        if not isinstance(feature, Mapping) or not isinstance(feature.get("name"), str):
            raise BaselineFormatError(f"features[{i}] has no name")
        counts = _counts(feature.get("counts"), f"features[{i}].counts")
        edges = feature.get("edges")
        if not isinstance(edges, list) or len(edges) + 1 != len(counts):
            raise BaselineFormatError(f"features[{i}] needs one more count than edges")
        features[feature["name"]] = counts
    prediction = doc.get("prediction")
    if not isinstance(prediction, Mapping):
        raise BaselineFormatError("the baseline has no prediction distribution")
    kind = prediction.get("kind")
    classes: dict[str, float] = {}
    bins: tuple[float, ...] = ()
    if kind == "classification":
        labels = prediction.get("classes")
        counts = _counts(prediction.get("counts"), "prediction.counts")
        if not isinstance(labels, list) or len(labels) != len(counts):
            raise BaselineFormatError("prediction.classes and prediction.counts differ in length")
        classes = {str(label): n for label, n in zip(labels, counts, strict=True)}
    elif kind == "regression":
        bins = _counts(prediction.get("counts"), "prediction.counts")
    else:
        raise BaselineFormatError(f"prediction.kind is {kind!r}")
    encoding = doc.get("encoding") if isinstance(doc.get("encoding"), Mapping) else {}
    assert isinstance(encoding, Mapping)
    categorical = {
        str(column): tuple(f"{column}={value}" for value in values)
        for column, values in dict(encoding.get("categorical") or {}).items()
        if isinstance(values, list)
    }
    return Baseline(
        version=version,
        rows=float(doc.get("rows") or 0),
        features=features,
        prediction_kind=kind,
        classes=classes,
        prediction_bins=bins,
        categorical=categorical,
    )
