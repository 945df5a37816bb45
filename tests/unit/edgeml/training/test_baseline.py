"""The drift baseline: quantile bins with open ends, counts summing to the rows."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgeml.training.baseline import bin_counts, bin_edges, build_baseline

ENCODING = {"columns": ["a", "b"], "categorical": {}, "inputs": ["a", "b"]}


def test_classification_baseline_shape_and_counts(rng: np.random.Generator) -> None:
    features = rng.normal(size=(500, 2)).astype(np.float32)
    predictions = np.array([0, 1, 1, 2] * 125)
    doc = build_baseline(
        features, ["a", "b"], predictions, "classification", ENCODING, np.array([0, 1, 2])
    )
    json.dumps(doc)  # plain JSON, no numpy types, no infinities
    assert doc["version"] == 1
    assert doc["rows"] == 500
    assert doc["encoding"] == ENCODING
    assert [f["name"] for f in doc["features"]] == ["a", "b"]
    for feature in doc["features"]:
        assert len(feature["edges"]) == 9
        assert feature["edges"] == sorted(feature["edges"])
        assert len(feature["counts"]) == 10
        assert sum(feature["counts"]) == 500
        assert all(40 <= c <= 60 for c in feature["counts"])  # equal-mass bins
    assert doc["prediction"] == {
        "kind": "classification",
        "classes": ["0", "1", "2"],
        "counts": [125, 250, 125],
    }


def test_regression_prediction_histogram(rng: np.random.Generator) -> None:
    features = rng.normal(size=(300, 2)).astype(np.float32)
    doc = build_baseline(features, ["a", "b"], rng.normal(size=300), "regression", ENCODING)
    prediction = doc["prediction"]
    assert prediction["kind"] == "regression"
    assert sum(prediction["counts"]) == 300
    assert len(prediction["counts"]) == len(prediction["edges"]) + 1


def test_constant_and_binary_features_get_deduplicated_edges() -> None:
    assert bin_edges(np.full(50, 3.0)) == [3.0]
    assert bin_counts(np.full(50, 3.0), [3.0]) == [0, 50]
    onehot = np.array([0.0] * 70 + [1.0] * 30)
    edges = bin_edges(onehot)
    assert edges == [0.0, 1.0]
    assert bin_counts(onehot, edges) == [0, 70, 30]


def test_values_outside_training_range_land_in_the_open_bins() -> None:
    edges = bin_edges(np.arange(100, dtype=np.float64))
    assert bin_counts(np.array([-1e9, 1e9]), edges) == [1] + [0] * (len(edges) - 1) + [1]


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    )
)
def test_every_value_lands_in_exactly_one_bin(values: np.ndarray) -> None:
    edges = bin_edges(values)
    counts = bin_counts(values, edges)
    assert sum(counts) == len(values)
    assert len(counts) == len(edges) + 1
    assert all(a < b for a, b in itertools.pairwise(edges))
    assert len(edges) <= 9


def test_bins_is_configurable(rng: np.random.Generator) -> None:
    doc = build_baseline(
        rng.normal(size=(100, 2)).astype(np.float32),
        ["a", "b"],
        np.zeros(100),
        "regression",
        ENCODING,
        bins=4,
    )
    assert doc["bins"] == 4
    assert len(doc["features"][0]["edges"]) == 3
    assert doc["features"][0]["counts"] == pytest.approx([25, 25, 25, 25], abs=1)
