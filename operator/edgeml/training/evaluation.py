"""Evaluation on held-out rows: the split, the metrics, and the metrics per slice.

All pure: arrays in, numbers and notes out. Notes are sentences about what was
skipped or adjusted (a metric that cannot be computed, a split that could not be
stratified); the program logs them.

Conventions:
- binary classification: precision, recall and f1 of the positive class, the second
  of the sorted labels (1 for 0/1 labels); multiclass: their macro average.
- roc_auc: binary from the positive class's probability; multiclass one-vs-rest macro;
  skipped (with a note) when the estimator has no predict_proba.
- regression: rmse, mae, r2.
- per slice: `slice.<value>.<metric>` for each value of the slice column among the
  held-out rows, and `slice_gap_<metric>` = best - worst (the spread, max - min, so it
  is never negative, also for errors such as rmse), over the slices with at least
  `MIN_SLICE_ROWS` held-out rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeml.api.edgemodel import DEFAULT_METRICS
from edgeml.training.datasets import Task
from edgeml.training.errors import TrainingError

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
DEFAULT_REGRESSION_METRICS = REGRESSION_METRICS
MIN_SLICE_ROWS = 10
"""A slice with fewer held-out rows is reported but left out of the slice gap."""

Notes = list[str]


@dataclass(frozen=True)
class Split:
    """Row indices of the training and the held-out part."""

    train: npt.NDArray[np.intp]
    test: npt.NDArray[np.intp]
    stratified: bool


def resolve_metrics(requested: Sequence[str], task: Task) -> tuple[list[str], Notes]:
    """The metrics to compute for this task.

    The API's default list (accuracy, f1) is a classification default: for a regressor
    it becomes rmse, mae, r2 (with a note). A metric that does not fit the task, asked
    for explicitly, is `InvalidConfig`.
    """
    fitting = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if task == "regression" and tuple(requested) == DEFAULT_METRICS:
        return list(DEFAULT_REGRESSION_METRICS), [
            "evaluation.metrics is the classification default; computing rmse, mae, r2 "
            "for this regressor"
        ]
    wrong = [m for m in requested if m not in fitting]
    if wrong:
        raise TrainingError(
            "InvalidConfig",
            f"evaluation.metrics {', '.join(wrong)} do not apply to a {task} estimator "
            f"(use {', '.join(fitting)})",
        )
    return list(dict.fromkeys(requested)), []


def split_rows(
    target: npt.NDArray[Any], test_fraction: float, seed: int, task: Task
) -> tuple[Split, Notes]:
    """A seeded split; stratified by class for classification when every class can be."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(target))
    stratify = None
    notes: Notes = []
    if task == "classification":
        _, counts = np.unique(target, return_counts=True)
        n_test = math.ceil(test_fraction * len(target))
        if counts.min() >= 2 and len(counts) <= n_test and len(counts) <= len(target) - n_test:
            stratify = target
        else:
            notes.append("the split is not stratified: a class has fewer than two rows")
    train, test = train_test_split(
        rows, test_size=test_fraction, random_state=seed, shuffle=True, stratify=stratify
    )
    return Split(train=np.sort(train), test=np.sort(test), stratified=stratify is not None), notes


def compute_metrics(
    task: Task,
    metrics: Sequence[str],
    y_true: npt.NDArray[Any],
    y_pred: npt.NDArray[Any],
    proba: npt.NDArray[Any] | None,
    classes: npt.NDArray[Any] | None,
) -> tuple[dict[str, float], Notes]:
    """The requested metrics of predictions against truth; unavailable ones get a note.

    `proba` has one column per entry of `classes` (the estimator's classes_ order).
    """
    values: dict[str, float] = {}
    notes: Notes = []
    for metric in metrics:
        try:
            value = _metric(task, metric, y_true, y_pred, proba, classes)
        except _UnavailableError as skipped:
            notes.append(f"{metric} not computed: {skipped}")
            continue
        if math.isfinite(value):
            values[metric] = value
        else:
            notes.append(f"{metric} not computed: it is not a finite number on these rows")
    return values, notes


class _UnavailableError(Exception):
    """A metric that cannot be computed on these rows; the message says why."""


def _metric(
    task: Task,
    metric: str,
    y_true: npt.NDArray[Any],
    y_pred: npt.NDArray[Any],
    proba: npt.NDArray[Any] | None,
    classes: npt.NDArray[Any] | None,
) -> float:
    from sklearn import metrics as m

    if task == "regression":
        if metric == "rmse":
            return float(m.root_mean_squared_error(y_true, y_pred))
        if metric == "mae":
            return float(m.mean_absolute_error(y_true, y_pred))
        if len(y_true) < 2:
            raise _UnavailableError("r2 needs at least two rows")
        return float(m.r2_score(y_true, y_pred))
    if classes is None:
        raise ValueError("classification metrics need the estimator's classes")
    binary = len(classes) == 2
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, y_pred))
    if metric in ("precision", "recall", "f1"):
        scorer = {
            "precision": m.precision_score,
            "recall": m.recall_score,
            "f1": m.f1_score,
        }[metric]
        if binary:
            return float(scorer(y_true, y_pred, pos_label=classes[1], zero_division=0))
        return float(scorer(y_true, y_pred, labels=classes, average="macro", zero_division=0))
    # roc_auc
    if proba is None:
        raise _UnavailableError("the estimator has no predict_proba")
    if len(np.unique(y_true)) < 2:
        raise _UnavailableError("the rows hold a single class")
    try:
        if binary:
            return float(m.roc_auc_score(y_true == classes[1], proba[:, 1]))
        return float(m.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes))
    except ValueError as exc:
        raise _UnavailableError(str(exc)) from exc


_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. :/]")


def slice_key(value: str) -> str:
    """A slice value as it may appear in an MLflow metric name."""
    return _UNSAFE.sub("_", value)[:64] or "_"


def compute_slice_metrics(
    task: Task,
    metrics: Sequence[str],
    y_true: npt.NDArray[Any],
    y_pred: npt.NDArray[Any],
    proba: npt.NDArray[Any] | None,
    classes: npt.NDArray[Any] | None,
    slices: npt.NDArray[Any],
) -> tuple[dict[str, float], Notes]:
    """Per slice value `slice.<value>.<metric>`, and `slice_gap_<metric>` = max - min."""
    values: dict[str, float] = {}
    notes: Notes = []
    gap_inputs: dict[str, list[float]] = {metric: [] for metric in metrics}
    small: list[str] = []
    for value in sorted(set(slices.tolist())):
        rows = slices == value
        per_slice, _ = compute_metrics(
            task,
            metrics,
            y_true[rows],
            y_pred[rows],
            None if proba is None else proba[rows],
            classes,
        )
        for metric, number in per_slice.items():
            values[f"slice.{slice_key(str(value))}.{metric}"] = number
        if int(rows.sum()) >= MIN_SLICE_ROWS:
            for metric, number in per_slice.items():
                gap_inputs[metric].append(number)
        else:
            small.append(str(value))
    if small:
        notes.append(
            f"{len(small)} slice(s) have fewer than {MIN_SLICE_ROWS} held-out rows and are "
            f"left out of the slice gap: {', '.join(small[:10])}"
        )
    for metric, numbers in gap_inputs.items():
        if len(numbers) >= 2:
            values[f"slice_gap_{metric}"] = max(numbers) - min(numbers)
        else:
            notes.append(f"slice_gap_{metric} not computed: fewer than two slices qualify")
    return values, notes
