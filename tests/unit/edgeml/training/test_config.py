"""The config document: camelCase in, InvalidConfig for anything that does not parse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgeml.training.config import parse_config
from edgeml.training.errors import TrainingError


def test_parses_the_operator_document(data: Any) -> None:
    doc = data.config(
        "file:///data/v.csv",
        params={"n_estimators": 10},
        estimator="sklearn.ensemble.RandomForestClassifier",
        dataset={"sliceColumn": "site", "categorical": ["site2"]},
        evaluation={"testFraction": 0.25, "randomSeed": 7},
        reason="drift on site a",
        image="ghcr.io/edgeml/edgeml:0.1.0",
    )
    config = parse_config(json.dumps(doc))
    assert config.registered_model == "unit-model"
    assert config.training.estimator.class_path == "sklearn.ensemble.RandomForestClassifier"
    assert config.training.estimator.params == {"n_estimators": 10}
    assert config.training.dataset.slice_column == "site"
    assert config.training.evaluation.random_seed == 7
    assert config.allowed_modules == ["sklearn"]
    assert config.experiment_name == "edgeml/unit/unit-model"


def test_not_json_is_invalid_config() -> None:
    with pytest.raises(TrainingError) as caught:
        parse_config("{not json")
    assert caught.value.reason == "InvalidConfig"
    assert caught.value.exit_code == 2


def test_a_bad_field_is_named_in_the_message(data: Any) -> None:
    doc = data.config("ftp://nope")
    with pytest.raises(TrainingError) as caught:
        parse_config(json.dumps(doc))
    assert caught.value.reason == "InvalidConfig"
    assert "training.dataset.uri" in caught.value.message


def test_missing_uid_is_invalid_config(data: Any) -> None:
    doc = data.config("file:///x.csv")
    del doc["trainingRunUid"]
    with pytest.raises(TrainingError, match="trainingRunUid"):
        parse_config(json.dumps(doc))
