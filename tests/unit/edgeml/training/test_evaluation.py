"""Metrics equal scikit-learn's own; slices and their gap; split and metric choice."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m

from edgeml.training.errors import TrainingError
from edgeml.training.evaluation import (
    MIN_SLICE_ROWS,
    compute_metrics,
    compute_slice_metrics,
    resolve_metrics,
    slice_key,
    split_rows,
)

ALL_CLASSIFICATION = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def _binary(rng: np.random.Generator, n: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = rng.integers(0, 2, n)
    proba1 = np.clip(y_true * 0.6 + rng.random(n) * 0.5, 0, 1)
    proba = np.column_stack([1 - proba1, proba1])
    return y_true, (proba1 > 0.5).astype(int), proba


def test_binary_metrics_match_sklearn(rng: np.random.Generator) -> None:
    y_true, y_pred, proba = _binary(rng)
    values, notes = compute_metrics(
        "classification", ALL_CLASSIFICATION, y_true, y_pred, proba, np.array([0, 1])
    )
    assert notes == []
    assert values == pytest.approx(
        {
            "accuracy": m.accuracy_score(y_true, y_pred),
            "precision": m.precision_score(y_true, y_pred),
            "recall": m.recall_score(y_true, y_pred),
            "f1": m.f1_score(y_true, y_pred),
            "roc_auc": m.roc_auc_score(y_true, proba[:, 1]),
        }
    )


def test_binary_text_labels_use_the_second_sorted_label_as_positive(
    rng: np.random.Generator,
) -> None:
    y_true, y_pred, proba = _binary(rng)
    names = np.array(["fail", "ok"], dtype=object)
    values, _ = compute_metrics(
        "classification", ["f1", "roc_auc"], names[y_true], names[y_pred], proba, names
    )
    assert values["f1"] == pytest.approx(m.f1_score(y_true, y_pred))
    assert values["roc_auc"] == pytest.approx(m.roc_auc_score(y_true, proba[:, 1]))


def test_multiclass_metrics_are_macro_and_ovr(rng: np.random.Generator) -> None:
    y_true = rng.integers(0, 3, 150)
    proba = rng.dirichlet([1, 1, 1], 150)
    proba[np.arange(150), y_true] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    y_pred = proba.argmax(axis=1)
    values, _ = compute_metrics(
        "classification", ALL_CLASSIFICATION, y_true, y_pred, proba, np.array([0, 1, 2])
    )
    assert values["f1"] == pytest.approx(m.f1_score(y_true, y_pred, average="macro"))
    assert values["precision"] == pytest.approx(m.precision_score(y_true, y_pred, average="macro"))
    assert values["roc_auc"] == pytest.approx(m.roc_auc_score(y_true, proba, multi_class="ovr"))


def test_roc_auc_is_skipped_with_a_note_without_probabilities(rng: np.random.Generator) -> None:
    y_true, y_pred, _ = _binary(rng)
    values, notes = compute_metrics(
        "classification", ["accuracy", "roc_auc"], y_true, y_pred, None, np.array([0, 1])
    )
    assert set(values) == {"accuracy"}
    assert notes == ["roc_auc not computed: the estimator has no predict_proba"]


def test_regression_metrics_match_sklearn(rng: np.random.Generator) -> None:
    y_true = rng.normal(size=80) * 10
    y_pred = y_true + rng.normal(size=80)
    values, _ = compute_metrics("regression", ["rmse", "mae", "r2"], y_true, y_pred, None, None)
    assert values == pytest.approx(
        {
            "rmse": np.sqrt(m.mean_squared_error(y_true, y_pred)),
            "mae": m.mean_absolute_error(y_true, y_pred),
            "r2": m.r2_score(y_true, y_pred),
        }
    )


def test_metric_choice_per_task() -> None:
    assert resolve_metrics(["accuracy", "f1"], "classification") == (["accuracy", "f1"], [])
    chosen, notes = resolve_metrics(["accuracy", "f1"], "regression")  # the API default
    assert chosen == ["rmse", "mae", "r2"]
    assert len(notes) == 1
    with pytest.raises(TrainingError) as caught:
        resolve_metrics(["rmse", "f1"], "regression")
    assert caught.value.reason == "InvalidConfig"
    assert "f1" in caught.value.message
    with pytest.raises(TrainingError):
        resolve_metrics(["rmse"], "classification")


def test_slices_and_gap(rng: np.random.Generator) -> None:
    y_true = np.array([1] * 40)
    # Slice a: all right; slice b: half right; slice c: too small for the gap.
    y_pred = np.array([1] * 20 + [1, 0] * 8 + [0] * 4)
    slices = np.array(["a"] * 20 + ["b"] * 16 + ["c/x"] * 4)
    values, notes = compute_slice_metrics(
        "classification", ["accuracy"], y_true, y_pred, None, np.array([0, 1]), slices
    )
    assert values["slice.a.accuracy"] == 1.0
    assert values["slice.b.accuracy"] == 0.5
    assert values["slice.c/x.accuracy"] == 0.0
    assert values["slice_gap_accuracy"] == pytest.approx(0.5)  # c has < MIN_SLICE_ROWS rows
    assert MIN_SLICE_ROWS > 4
    assert any("c/x" in note for note in notes)


def test_gap_of_an_error_metric_is_not_negative(rng: np.random.Generator) -> None:
    y_true = rng.normal(size=40)
    y_pred = y_true + np.r_[np.zeros(20), np.ones(20)]
    slices = np.array(["good"] * 20 + ["bad"] * 20)
    values, _ = compute_slice_metrics("regression", ["rmse"], y_true, y_pred, None, None, slices)
    assert values["slice_gap_rmse"] == pytest.approx(1.0)


def test_slice_key_keeps_mlflow_metric_names_valid() -> None:
    assert slice_key("site #1 (north)") == "site _1 _north_"
    assert slice_key("") == "_"


def test_split_is_seeded_and_stratified(rng: np.random.Generator) -> None:
    target = np.array([0] * 80 + [1] * 20)
    first, notes = split_rows(target, 0.2, seed=5, task="classification")
    again, _ = split_rows(target, 0.2, seed=5, task="classification")
    assert notes == []
    assert first.stratified
    assert first.test.tolist() == again.test.tolist()
    assert len(first.test) == 20
    assert int(target[first.test].sum()) == 4  # the class ratio is kept
    assert sorted(np.r_[first.train, first.test].tolist()) == list(range(100))


def test_split_without_stratification_when_a_class_is_alone() -> None:
    target = np.array([0] * 30 + [1])
    split, notes = split_rows(target, 0.2, seed=0, task="classification")
    assert not split.stratified
    assert notes
