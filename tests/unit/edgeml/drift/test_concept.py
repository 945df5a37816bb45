"""Live quality metrics from feedback counts equal scikit-learn's on the same rows.

And so the training program's evaluation (edgeml.training.evaluation): a live value
and the value registered with the model mean the same.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as m

from edgeml.drift import concept
from edgeml.drift.concept import (
    Confusion,
    classification_metric,
    labelled,
    regression_metric,
)
from edgeml.training.evaluation import compute_metrics

PROPERTY = settings(max_examples=150, deadline=None)
METRICS = ("accuracy", "precision", "recall", "f1")
# "10" sorts before "2": the model's class order and the sorted one differ.
POOL = ("0", "1", "2", "10", "cat", "dog")


@st.composite
def feedback(
    draw: st.DrawFn, labels: st.SearchStrategy[list[str]] | None = None
) -> tuple[list[str], Confusion]:
    """A class list (the model's order) and a confusion of counts over it, zeros included."""
    classes = draw(labels or st.lists(st.sampled_from(POOL), min_size=1, max_size=5, unique=True))
    confusion = {
        true: {pred: float(draw(st.integers(0, 12))) for pred in classes}
        for true in draw(st.lists(st.sampled_from(classes), unique=True))
    }
    return classes, confusion


def rows(confusion: Confusion) -> tuple[np.ndarray, np.ndarray]:
    """The labelled rows the confusion counts, as y_true and y_pred."""
    pairs = [(t, p) for t, row in confusion.items() for p, c in row.items() for _ in range(int(c))]
    return np.array([t for t, _ in pairs], dtype=object), np.array(
        [p for _, p in pairs], dtype=object
    )


def sklearn_metric(metric: str, y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> float:
    """The metric as evaluation.py asks scikit-learn for it, given the classes."""
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, y_pred))
    scorer = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[metric]
    if len(labels) == 2:
        return float(scorer(y_true, y_pred, pos_label=labels[1], zero_division=0))
    return float(scorer(y_true, y_pred, labels=labels, average="macro", zero_division=0))


@PROPERTY
@given(feedback())
def test_metrics_with_the_models_classes_equal_sklearns(
    case: tuple[list[str], Confusion],
) -> None:
    classes, confusion = case
    y_true, y_pred = rows(confusion)
    for metric in METRICS:
        ours = classification_metric(metric, confusion, classes)
        if len(y_true) == 0:
            assert ours is None
            continue
        assert ours == pytest.approx(
            sklearn_metric(metric, y_true, y_pred, classes), rel=1e-12, abs=1e-15
        )


@PROPERTY
@given(feedback())
def test_metrics_without_classes_use_the_sorted_labels_seen(
    case: tuple[list[str], Confusion],
) -> None:
    _, confusion = case
    y_true, y_pred = rows(confusion)
    seen = sorted(set(y_true) | set(y_pred))
    for metric in METRICS:
        ours = classification_metric(metric, confusion)
        if not seen:
            assert ours is None
            continue
        assert ours == pytest.approx(
            sklearn_metric(metric, y_true, y_pred, seen), rel=1e-12, abs=1e-15
        )


@PROPERTY
@given(feedback())
def test_metrics_equal_the_training_programs_evaluation(
    case: tuple[list[str], Confusion],
) -> None:
    classes, confusion = case
    y_true, y_pred = rows(confusion)
    if len(y_true) == 0:
        return
    expected, _ = compute_metrics(
        "classification", METRICS, y_true, y_pred, None, np.array(classes, dtype=object)
    )
    ours = {metric: classification_metric(metric, confusion, classes) for metric in METRICS}
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_binary_metrics_are_of_the_second_class() -> None:
    # 8 true "ok", 6 of them found; 2 false alarms.
    confusion = {"fail": {"fail": 10.0, "ok": 2.0}, "ok": {"ok": 6.0, "fail": 2.0}}
    assert classification_metric("precision", confusion, ["fail", "ok"]) == 6 / 8
    assert classification_metric("recall", confusion, ["fail", "ok"]) == 6 / 8
    assert classification_metric("f1", confusion, ["fail", "ok"]) == pytest.approx(0.75)
    # The model's order decides which class is positive, not the text's.
    recall_of_fail = classification_metric("recall", confusion, ["ok", "fail"])
    assert recall_of_fail == 10 / 12
    assert classification_metric("accuracy", confusion) == 16 / 20


def test_a_class_missing_from_the_window_scores_zero_in_the_macro_average() -> None:
    confusion = {"a": {"a": 5.0}, "b": {"b": 5.0}}
    assert classification_metric("recall", confusion) == 1.0
    assert classification_metric("recall", confusion, ["a", "b", "c"]) == pytest.approx(2 / 3)


def test_a_label_the_model_does_not_know_counts_as_a_row() -> None:
    # A true "new" predicted "pos" is a false alarm; predicted "new" a miss.
    confusion = {"pos": {"pos": 3.0, "new": 1.0}, "new": {"pos": 1.0}, "neg": {"neg": 5.0}}
    assert classification_metric("precision", confusion, ["neg", "pos"]) == 3 / 4
    assert classification_metric("recall", confusion, ["neg", "pos"]) == 3 / 4
    assert classification_metric("accuracy", confusion, ["neg", "pos"]) == 8 / 10


@pytest.mark.parametrize("confusion", [{}, {"a": {}}, {"a": {"a": 0.0, "b": 0.0}}])
def test_no_labelled_rows_is_no_value(confusion: Confusion) -> None:
    assert labelled(confusion) == 0
    for metric in METRICS:
        assert classification_metric(metric, confusion) is None
        assert classification_metric(metric, confusion, ["a", "b"]) is None


def test_labelled_is_the_total_count() -> None:
    assert labelled({"a": {"a": 3.0, "b": 1.5}, "b": {"a": 2.0}}) == 6.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: classification_metric("roc_auc", {"a": {"a": 1.0}}), "unknown classification"),
        (lambda: classification_metric("f1", {"a": {"a": -1.0}}), "non-negative"),
        (lambda: classification_metric("f1", {"a": {"a": 1.0}}, []), "at least one class"),
        (lambda: regression_metric("r2", 3, 1.0, 1.0), "unknown regression"),
        (lambda: regression_metric("mae", -1, 1.0, 1.0), "non-negative"),
    ],
)
def test_bad_requests_raise(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


@PROPERTY
@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)),
        min_size=1,
        max_size=200,
    )
)
def test_regression_metrics_equal_sklearns(pairs: list[tuple[float, float]]) -> None:
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    errors = [t - p for t, p in pairs]
    absolute = math.fsum(abs(e) for e in errors)
    squared = math.fsum(e * e for e in errors)
    assert regression_metric("mae", len(pairs), absolute, squared) == pytest.approx(
        m.mean_absolute_error(y_true, y_pred), rel=1e-12, abs=1e-300
    )
    assert regression_metric("rmse", len(pairs), absolute, squared) == pytest.approx(
        m.root_mean_squared_error(y_true, y_pred), rel=1e-12, abs=1e-300
    )


def test_regression_without_rows_is_no_value() -> None:
    assert regression_metric("mae", 0, 0.0, 0.0) is None
    assert regression_metric("rmse", 0, 0.0, 0.0) is None
    assert regression_metric("rmse", 4, 6.0, 16.0) == 2.0


def test_concept_uses_only_the_standard_library() -> None:
    tree = ast.parse(Path(concept.__file__).read_text())
    imported = {
        a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "math", "collections.abc"}, imported
