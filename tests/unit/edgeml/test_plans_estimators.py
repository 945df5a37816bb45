"""An estimator's task told from its name, and metrics or gates of the other task
refused before any Job runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.plans.estimators import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    estimator_task,
    task_mismatch,
)

METRICS = sorted(CLASSIFICATION_METRICS | REGRESSION_METRICS)


@pytest.mark.parametrize(
    ("class_path", "task"),
    [
        ("sklearn.ensemble.RandomForestClassifier", "classification"),
        ("sklearn.ensemble.HistGradientBoostingRegressor", "regression"),
        ("sklearn.linear_model.LogisticRegression", "classification"),
        ("sklearn.linear_model.LinearRegression", "regression"),
        ("sklearn.svm.SVC", "classification"),
        ("sklearn.svm.SVR", "regression"),
        ("sklearn.pipeline.Pipeline", None),  # either: not told by its name
        ("xgboost.XGBClassifier", None),  # not scikit-learn: not guessed
        ("sklearnx.ensemble.RandomForestClassifier", None),
    ],
)
def test_the_task_is_told_only_where_the_name_is_certain(class_path: str, task: str) -> None:
    assert estimator_task(class_path) == task


@given(metrics=st.lists(st.sampled_from(METRICS), min_size=1, max_size=4))
def test_a_classifier_refuses_exactly_the_regression_metrics(metrics: list[str]) -> None:
    problem = task_mismatch("sklearn.tree.DecisionTreeClassifier", metrics)
    wrong = sorted(set(metrics) & REGRESSION_METRICS)
    if not wrong:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith(", ".join(wrong))
        assert problem.endswith("sklearn.tree.DecisionTreeClassifier is a classifier")


@given(metrics=st.lists(st.sampled_from(METRICS), min_size=1, max_size=4))
def test_an_estimator_of_unknown_task_refuses_nothing(metrics: list[str]) -> None:
    assert task_mismatch("sklearn.pipeline.Pipeline", metrics) is None


def test_the_message_reads_as_a_sentence() -> None:
    assert task_mismatch("sklearn.svm.SVR", ["accuracy", "f1", "rmse"]) == (
        "accuracy, f1 are not regression metrics, and sklearn.svm.SVR is a regressor"
    )
