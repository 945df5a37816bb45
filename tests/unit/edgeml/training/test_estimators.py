"""The allow-list is checked before any import; construction errors are InvalidParams."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np
import pytest

from edgeml.training.errors import TrainingError
from edgeml.training.estimators import (
    build_estimator,
    check_class_path,
    estimator_task,
    fit_estimator,
    load_estimator_class,
)


def _reason(call: Any, *args: Any) -> str:
    with pytest.raises(TrainingError) as caught:
        call(*args)
    return caught.value.reason


def test_os_system_is_refused_with_the_allow_list_in_the_message() -> None:
    with pytest.raises(TrainingError) as caught:
        check_class_path("os.system", ["sklearn"])
    assert (
        caught.value.line() == "EstimatorNotAllowed: module os is not in the allow-list (sklearn)"
    )


def test_refusal_does_not_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # A module that does not exist is refused for the allow-list, not as unknown: the
    # check never tried to import it. And no import happens at all during the check.
    def no_import(name: str, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"check_class_path imported {name}")

    monkeypatch.setattr(importlib, "import_module", no_import)
    assert _reason(check_class_path, "no_such_module_xyz.Thing", ["sklearn"]) == (
        "EstimatorNotAllowed"
    )
    assert "no_such_module_xyz" not in sys.modules
    assert _reason(check_class_path, "subprocess.Popen", ["sklearn"]) == "EstimatorNotAllowed"


def test_private_segments_are_refused_even_inside_the_allow_list() -> None:
    assert _reason(check_class_path, "sklearn._config.Thing", ["sklearn"]) == (
        "EstimatorNotAllowed"
    )


def test_a_prefix_that_is_not_a_module_boundary_is_not_allowed() -> None:
    assert _reason(check_class_path, "sklearnx.Model", ["sklearn"]) == "EstimatorNotAllowed"
    check_class_path("sklearn.ensemble.RandomForestClassifier", ["sklearn.ensemble"])
    assert _reason(check_class_path, "sklearn.svm.SVC", ["sklearn.ensemble"]) == (
        "EstimatorNotAllowed"
    )


def test_unknown_estimator_names_the_path() -> None:
    with pytest.raises(TrainingError) as caught:
        load_estimator_class("sklearn.ensemble.NoSuchThing")
    assert caught.value.line() == "UnknownEstimator: sklearn.ensemble.NoSuchThing does not exist"
    assert _reason(load_estimator_class, "sklearn.no_such_module.Model") == "UnknownEstimator"


def test_not_a_class_or_not_an_estimator() -> None:
    assert _reason(load_estimator_class, "sklearn.metrics.accuracy_score") == "InvalidEstimator"
    assert _reason(load_estimator_class, "sklearn.model_selection.KFold") == "InvalidEstimator"


def test_random_state_comes_from_the_seed_unless_set() -> None:
    cls = load_estimator_class("sklearn.ensemble.RandomForestClassifier")
    path = "sklearn.ensemble.RandomForestClassifier"
    assert build_estimator(cls, path, {"n_estimators": 5}, 42).random_state == 42
    assert build_estimator(cls, path, {"random_state": 3}, 42).random_state == 3
    linear = load_estimator_class("sklearn.linear_model.LinearRegression")
    assert not hasattr(build_estimator(linear, "x", {}, 42), "random_state")


def test_unknown_parameter_is_invalid_params() -> None:
    cls = load_estimator_class("sklearn.ensemble.RandomForestClassifier")
    with pytest.raises(TrainingError) as caught:
        build_estimator(cls, "sklearn.ensemble.RandomForestClassifier", {"trees": 5}, 0)
    assert caught.value.reason == "InvalidParams"
    assert "trees" in caught.value.message


def test_a_bad_parameter_value_is_invalid_params_at_fit() -> None:
    cls = load_estimator_class("sklearn.ensemble.RandomForestClassifier")
    estimator = build_estimator(cls, "rf", {"n_estimators": -1}, 0)
    x, y = np.zeros((4, 2), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(TrainingError) as caught:
        fit_estimator(estimator, "rf", x, y)
    assert caught.value.reason == "InvalidParams"
    assert "n_estimators" in caught.value.message


def test_task_of_classifiers_regressors_and_others() -> None:
    from sklearn.cluster import KMeans
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression

    assert estimator_task(LogisticRegression(), "lr") == "classification"
    assert estimator_task(GradientBoostingRegressor(), "gbr") == "regression"
    assert _reason(estimator_task, KMeans(), "km") == "InvalidEstimator"
