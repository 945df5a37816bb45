"""Scoring the champion's ONNX model on a new run's held-out rows (the fair comparison)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from edgeml.training.champion import score_model
from edgeml.training.evaluation import compute_metrics
from edgeml.training.export import convert_to_onnx

ENCODING = {"columns": ["a"], "categorical": {}, "inputs": ["a"]}
METRICS = ["accuracy", "f1", "roc_auc"]


def _onnx(estimator: Any, n_inputs: int, task: str) -> bytes:
    model = convert_to_onnx(estimator, n_inputs, task, ENCODING, type(estimator).__name__)
    return bytes(model.SerializeToString())


def _season(seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(400, 6, n_informative=4, random_state=seed)
    return (x + shift).astype(np.float32), y


@pytest.mark.parametrize(
    "estimator", [LogisticRegression(max_iter=500), RandomForestClassifier(21, random_state=0)]
)
def test_the_champion_scores_as_scikit_learn_would_on_the_same_rows(estimator: Any) -> None:
    x, y = _season(5)
    estimator.fit(x[:300], y[:300])
    score = score_model(
        _onnx(estimator, 6, "classification"), 3, x[300:], y[300:], "classification", METRICS,
        np.asarray(estimator.classes_),
    )  # fmt: skip
    expected, _ = compute_metrics(
        "classification", METRICS, y[300:], estimator.predict(x[300:]),
        estimator.predict_proba(x[300:]), np.asarray(estimator.classes_),
    )  # fmt: skip
    assert score.version == 3
    assert score.metrics == pytest.approx(expected, abs=1e-4)
    assert score.run_metrics.keys() == {"champion.accuracy", "champion.f1", "champion.roc_auc"}


def test_an_old_season_champion_scores_worse_on_the_new_season() -> None:
    old_x, old_y = _season(5)
    new_x, new_y = _season(11, shift=1.5)
    champion = LogisticRegression(max_iter=500).fit(old_x, old_y)
    retrained = LogisticRegression(max_iter=500).fit(new_x[:300], new_y[:300])
    classes = np.asarray(retrained.classes_)
    fair = score_model(
        _onnx(champion, 6, "classification"), 1, new_x[300:], new_y[300:], "classification",
        ["accuracy"], classes,
    )  # fmt: skip
    own = retrained.score(new_x[300:], new_y[300:])
    assert fair.metrics["accuracy"] < own - 0.1
    assert champion.score(old_x, old_y) > fair.metrics["accuracy"]


def test_text_labels_are_compared_as_text() -> None:
    x, y = _season(5)
    labels = np.array(["ok" if v else "worn" for v in y], dtype=object)
    estimator = LogisticRegression(max_iter=500).fit(x[:300], labels[:300])
    score = score_model(
        _onnx(estimator, 6, "classification"), 2, x[300:], labels[300:], "classification",
        ["accuracy"], np.asarray(estimator.classes_),
    )  # fmt: skip
    assert score.metrics["accuracy"] == pytest.approx(estimator.score(x[300:], labels[300:]))


def test_regression_champions_are_scored_too() -> None:
    x, y = make_regression(300, 4, noise=1.0, random_state=0)
    x = x.astype(np.float32)
    estimator = LinearRegression().fit(x[:200], y[:200])
    score = score_model(
        _onnx(estimator, 4, "regression"), 5, x[200:], y[200:], "regression", ["rmse", "mae"], None
    )
    assert set(score.metrics) == {"rmse", "mae"}
    assert score.metrics["rmse"] < 2.0


def test_a_champion_that_cannot_run_on_these_rows_gives_a_note_not_an_error() -> None:
    x, y = _season(5)
    estimator = LogisticRegression(max_iter=500).fit(x[:, :4], y)
    score = score_model(
        _onnx(estimator, 4, "classification"), 4, x, y, "classification", ["accuracy"],
        np.asarray(estimator.classes_),
    )  # fmt: skip
    assert score.metrics == {}
    assert score.run_metrics == {}
    assert "champion version 4 could not be scored on these rows" in score.notes[0]
