"""ONNX export and parity: common estimators pass, unconvertible ones and drift are caught."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import onnx
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import LabelSpreading
from sklearn.svm import LinearSVC

from edgeml.training.errors import TrainingError
from edgeml.training.export import ENCODING_METADATA_KEY, check_parity, convert_to_onnx

ENCODING = {"columns": ["a"], "categorical": {}, "inputs": ["a"]}


def _classification(classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(
        400, 8, n_informative=4, n_classes=classes, n_clusters_per_class=1, random_state=0
    )
    return x.astype(np.float32), y


def _export(estimator: Any, x: np.ndarray, task: str) -> bytes:
    model = convert_to_onnx(estimator, x.shape[1], task, ENCODING, type(estimator).__name__)
    return model.SerializeToString()


@pytest.mark.parametrize(
    "estimator",
    [RandomForestClassifier(n_estimators=30, random_state=0), LogisticRegression(max_iter=500)],
    ids=["random-forest", "logistic-regression"],
)
@pytest.mark.parametrize("classes", [2, 3])
def test_classifiers_pass_parity(estimator: Any, classes: int) -> None:
    x, y = _classification(classes)
    estimator.fit(x[:300], y[:300])
    model_bytes = _export(estimator, x, "classification")
    parity = check_parity(model_bytes, estimator, x[300:], "classification", 1e-4)
    assert parity.rows == 100
    assert parity.max_difference <= 1e-4
    model = onnx.load_from_string(model_bytes)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]


def test_gradient_boosting_regressor_passes_parity() -> None:
    x, y = make_regression(400, 6, noise=1.0, random_state=0)
    x = x.astype(np.float32)
    estimator = GradientBoostingRegressor(random_state=0).fit(x[:300], y[:300])
    parity = check_parity(
        _export(estimator, x, "regression"), estimator, x[300:], "regression", 1e-4
    )
    assert parity.max_difference <= 1e-4


def test_text_labels_and_a_converter_without_zipmap() -> None:
    x, y = _classification()
    labels = np.array(["fail", "ok"], dtype=object)[y]
    svc = LinearSVC(random_state=0).fit(x[:300], labels[:300])
    check_parity(_export(svc, x, "classification"), svc, x[300:], "classification", 1e-4)


def test_unconvertible_estimator_is_conversion_failed() -> None:
    x, y = _classification()
    estimator = LabelSpreading().fit(x, y)
    with pytest.raises(TrainingError) as caught:
        convert_to_onnx(estimator, x.shape[1], "classification", ENCODING, "x.LabelSpreading")
    assert caught.value.reason == "ConversionFailed"
    assert caught.value.message.startswith("skl2onnx cannot convert x.LabelSpreading")
    assert caught.value.exit_code == 2


def test_a_model_that_predicts_differently_fails_parity() -> None:
    x, y = _classification()
    exported = LogisticRegression().fit(x[:300], y[:300])
    other = LogisticRegression(C=0.001).fit(x[:300], 1 - y[:300])  # flips labels
    with pytest.raises(TrainingError) as caught:
        check_parity(_export(exported, x, "classification"), other, x[300:], "classification", 1e-4)
    assert caught.value.reason == "ParityFailed"
    assert "row" in caught.value.message


def test_probability_drift_beyond_tolerance_names_the_row() -> None:
    x, y = _classification()
    exported = LogisticRegression().fit(x[:300], y[:300])
    nudged = LogisticRegression().fit(x[:300], y[:300])
    nudged.intercept_ = nudged.intercept_ + 1e-3  # same labels, slightly other probabilities
    with pytest.raises(TrainingError) as caught:
        check_parity(
            _export(exported, x, "classification"), nudged, x[300:], "classification", 1e-6
        )
    assert caught.value.reason == "ParityFailed"
    assert "held-out row" in caught.value.message
    assert "parityTolerance is 1e-06" in caught.value.message


def test_regression_tolerance_is_relative_for_large_values() -> None:
    x, y = make_regression(200, 4, random_state=0)
    x = x.astype(np.float32)
    estimator = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(x, y * 1e6)
    check_parity(_export(estimator, x, "regression"), estimator, x, "regression", 1e-5)


def test_encoding_travels_in_the_metadata_and_bytes_are_reproducible() -> None:
    x, y = _classification()
    first = RandomForestClassifier(n_estimators=5, random_state=1).fit(x, y)
    again = RandomForestClassifier(n_estimators=5, random_state=1).fit(x, y)
    a, b = _export(first, x, "classification"), _export(again, x, "classification")
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    metadata = {p.key: p.value for p in onnx.load_from_string(a).metadata_props}
    assert json.loads(metadata[ENCODING_METADATA_KEY]) == ENCODING


def test_tied_probabilities_may_pick_either_label() -> None:
    # 20 trees voting 10 to 10: scikit-learn's argmax takes the first class, while ONNX's
    # float32 sum of twenty 0.05s gives 0.49999994 / 0.50000006 and takes the second.
    x, y = make_classification(1000, 10, n_informative=5, random_state=3)
    x = x.astype(np.float32)
    forest = RandomForestClassifier(n_estimators=20, random_state=1).fit(x[:800], y[:800])
    parity = check_parity(
        _export(forest, x, "classification"), forest, x[800:], "classification", 1e-4
    )
    assert parity.tied_rows >= 1
    assert parity.max_difference <= 1e-4
