"""One evaluation: features, predictions and feedback against each version's baseline."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.drift.baseline import BaselineFormatError, parse_baseline
from edgeml.drift.evaluation import (
    ConceptSettings,
    DriftSettings,
    evaluate,
    evaluate_group,
    unknown_features,
)
from edgeml.drift.windows import WindowCounts

from .support import EVEN, baseline, baseline_doc, window

SETTINGS = DriftSettings(method="psi", threshold=0.2, min_samples=500)


def test_the_training_distribution_does_not_drift() -> None:
    result = evaluate_group("", baseline(), window(), SETTINGS)
    assert result.verdict == "NoDrift"
    assert max(f.score for f in result.features) < 1e-9
    assert result.prediction is not None
    assert result.prediction < 1e-9


def test_a_shifted_feature_drifts_and_is_named_worst_first() -> None:
    result = evaluate_group("", baseline(), window(shifted=("f3", "f5")), SETTINGS)
    assert result.verdict == "Drifted"
    assert result.reasons == ("DataDrift",)
    assert {f.name for f in result.drifted_features} == {"f3", "f5"}
    assert [f.name for f in result.features[:2]] == ["f3", "f5"]
    assert result.features[0].q_value < 1e-6


@pytest.mark.parametrize("method", ["psi", "jsd", "ks"])
def test_every_method_sees_the_shift(method: str) -> None:
    settings = DriftSettings(method=method, threshold=0.1, min_samples=500)  # type: ignore[arg-type]
    assert evaluate_group("", baseline(), window(shifted=("f1",)), settings).verdict == "Drifted"
    assert evaluate_group("", baseline(), window(), settings).verdict == "NoDrift"


def test_too_few_rows_decide_nothing() -> None:
    result = evaluate_group("", baseline(), window(rows=499, shifted=("f1",)), SETTINGS)
    assert result.verdict == "TooFewSamples"
    assert result.features == ()


def test_the_predictions_drift_on_their_own() -> None:
    live = window(classes={"0": 950, "1": 50})
    result = evaluate_group("", baseline(), live, SETTINGS)
    assert result.reasons == ("PredictionDrift",)
    assert result.prediction is not None
    assert result.prediction > 0.2


def test_a_class_the_baseline_never_predicted_counts_as_a_shift() -> None:
    live = window(classes={"0": 400, "1": 400, "7": 200})
    assert "PredictionDrift" in evaluate_group("", baseline(), live, SETTINGS).reasons


def test_only_the_named_features_are_scored() -> None:
    settings = DriftSettings(threshold=0.2, min_samples=500, features=("f1", "f2"))
    result = evaluate_group("", baseline(), window(shifted=("f5",)), settings)
    assert {f.name for f in result.features} == {"f1", "f2"}
    assert result.verdict == "NoDrift"


def test_unknown_feature_names_are_reported() -> None:
    settings = DriftSettings(features=("f1", "temperature", "site"))
    assert unknown_features(settings, baseline(categorical={"site": ["a", "b"]})) == ["temperature"]
    assert unknown_features(DriftSettings(), baseline()) == []


def test_a_categorical_column_is_scored_over_its_categories() -> None:
    base = baseline(categorical={"site": ["a", "b"]})
    features = {n: tuple(c for c in EVEN) for n in base.features if "=" not in n}
    # 90% of rows at site a, against half and half in training.
    features["site=a"] = (0.0, 100.0, 900.0)
    features["site=b"] = (0.0, 900.0, 100.0)
    live = WindowCounts(version="1", rows=1000, features=features, classes={"0": 500, "1": 500})
    result = evaluate_group("", base, live, SETTINGS)
    names = [f.name for f in result.features]
    assert "site" in names
    assert "site=a" not in names
    assert result.drifted_features[0].name == "site"


def test_feedback_turns_into_concept_drift_with_label_coverage() -> None:
    settings = DriftSettings(
        min_samples=500, concept=ConceptSettings("accuracy", minimum=0.8, min_samples=100)
    )
    live = window(labelled=200, confusion={"0": {"0": 60, "1": 40}, "1": {"1": 60, "0": 40}})
    result = evaluate_group("", baseline(), live, settings)
    assert result.concept is not None
    assert result.concept.value == pytest.approx(0.6)
    assert result.concept.coverage == pytest.approx(0.2)
    assert result.reasons == ("ConceptDrift",)


def test_concept_drift_waits_for_enough_labels_and_decides_alone_when_inputs_are_few() -> None:
    concept = ConceptSettings("accuracy", minimum=0.8, min_samples=100)
    settings = DriftSettings(min_samples=500, concept=concept)
    few = window(rows=200, labelled=50, confusion={"0": {"1": 50}})
    assert evaluate_group("", baseline(), few, settings).verdict == "TooFewSamples"
    labelled = window(rows=200, labelled=150, confusion={"0": {"1": 150}})
    result = evaluate_group("", baseline(), labelled, settings)
    assert (result.verdict, result.reasons) == ("Drifted", ("ConceptDrift",))


def test_regression_feedback_is_mae_and_rmse_against_a_maximum() -> None:
    settings = DriftSettings(
        data=False, concept=ConceptSettings("rmse", maximum=1.0, min_samples=10)
    )
    live = WindowCounts(
        version="1", rows=100, labelled=20, absolute_error_sum=30, squared_error_sum=80
    )
    result = evaluate_group("", baseline(), live, settings)
    assert result.concept is not None
    assert result.concept.value == pytest.approx(2.0)
    assert result.reasons == ("ConceptDrift",)


def test_each_version_is_compared_with_its_own_baseline_and_the_busiest_is_the_headline() -> None:
    baselines = {"1": baseline("1"), "2": baseline("2")}
    groups = {
        "": {"1": window("1", rows=600, shifted=("f2",)), "2": window("2", rows=3000)},
        "zone-a": {"1": window("1", rows=600, shifted=("f2",))},
        "zone-b": {"2": window("2", rows=3000)},
    }
    result = evaluate(baselines, groups, SETTINGS)
    assert result.fleet is not None
    assert result.fleet.version == "2"
    assert result.fleet.verdict == "NoDrift"
    assert [(z.group, z.verdict) for z in result.zones] == [
        ("zone-a", "Drifted"),
        ("zone-b", "NoDrift"),
    ]
    assert result.drifted
    assert result.decided


def test_a_version_without_a_baseline_is_left_out() -> None:
    result = evaluate({"1": baseline("1")}, {"": {"9": window("9")}}, SETTINGS)
    assert result.groups == ()
    assert not result.decided


@given(
    scale=st.floats(0.6, 50.0),
    shifted=st.lists(st.sampled_from([f"f{i}" for i in range(8)]), max_size=3, unique=True),
)
def test_more_of_the_same_data_changes_no_score_and_no_verdict(
    scale: float, shifted: list[str]
) -> None:
    one = evaluate_group("", baseline(), window(shifted=tuple(shifted)), SETTINGS)
    more = evaluate_group("", baseline(), window(shifted=tuple(shifted), scale=scale), SETTINGS)
    assert more.verdict == one.verdict
    assert [f.name for f in more.drifted_features] == [f.name for f in one.drifted_features]
    for a, b in zip(one.features, more.features, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "format version 1"),
        ({"features": [{"name": "f0", "edges": [1], "counts": [1, 2, 3]}]}, "one more count"),
        ({"features": [{"name": "f0", "edges": [1], "counts": [1, -2]}]}, "not a count"),
        ({"prediction": {"kind": "ranking"}}, "prediction.kind"),
        ({"prediction": None}, "no prediction distribution"),
    ],
)
def test_a_broken_baseline_is_refused_with_a_reason(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(BaselineFormatError, match=message):
        parse_baseline("1", {**baseline_doc(), **change})
