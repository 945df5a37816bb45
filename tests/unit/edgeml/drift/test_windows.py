"""Window counts: a pod's answer parsed, pods summed per version, Prometheus buckets to bins."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.drift.windows import (
    WindowCounts,
    WindowFormatError,
    bins_from_cumulative,
    by_version,
    combine,
    parse_pod_window,
)

DOC: dict[str, Any] = {
    "model": "vibration",
    "version": "3",
    "ready": True,
    "seconds": 900,
    "covered": 845.0,
    "rows": 120,
    "features": {"f0": [10, 50, 60], "f1": [0, 0, 120]},
    "predictions": {"kind": "classification", "counts": {"0": 70, "1": 50}},
    "feedback": {"labelled": 12, "confusion": {"0": {"0": 5, "1": 1}, "1": {"1": 6}}},
}


def test_a_pod_window_is_read_as_plain_counts() -> None:
    w = parse_pod_window(DOC)
    assert w == WindowCounts(
        version="3",
        rows=120,
        features={"f0": (10, 50, 60), "f1": (0, 0, 120)},
        classes={"0": 70, "1": 50},
        labelled=12,
        confusion={"0": {"0": 5, "1": 1}, "1": {"1": 6}},
        covered_seconds=845.0,
    )


def test_a_regression_window_keeps_its_bins_and_error_sums() -> None:
    doc = {
        **DOC,
        "predictions": {"kind": "regression", "counts": [1, 2, 3]},
        "feedback": {"labelled": 4, "absoluteErrorSum": 2.5, "squaredErrorSum": 3.25},
    }
    w = parse_pod_window(doc)
    assert w is not None
    assert (w.prediction_kind, w.prediction_bins, w.classes) == ("regression", (1, 2, 3), {})
    assert (w.labelled, w.absolute_error_sum, w.squared_error_sum) == (4, 2.5, 3.25)


@pytest.mark.parametrize("doc", [{**DOC, "ready": False}, {**DOC, "version": None}])
def test_a_pod_without_a_model_has_no_window(doc: dict[str, Any]) -> None:
    assert parse_pod_window(doc) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": "many"}, "rows is 'many', not a count"),
        ({"features": {"f0": [1, None]}}, "features.f0 is None, not a count"),
        ({"predictions": {"kind": "ranking"}}, "predictions.kind is 'ranking'"),
        ({"features": [1, 2]}, "unexpected shape"),
        ({"rows": float("nan")}, "not a count"),
    ],
)
def test_a_malformed_window_is_an_error_that_says_what(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(WindowFormatError, match=message):
        parse_pod_window({**DOC, **change})


def test_pods_of_one_version_are_summed_and_the_shortest_cover_kept() -> None:
    a = parse_pod_window(DOC)
    b = parse_pod_window({**DOC, "covered": 300.0, "features": {"f0": [1, 1, 1]}})
    assert a is not None
    assert b is not None
    total = combine([a, b])
    assert total.rows == 240
    assert total.features == {"f0": (11, 51, 61), "f1": (0, 0, 120)}
    assert total.classes == {"0": 140, "1": 100}
    assert total.confusion == {"0": {"0": 10, "1": 2}, "1": {"1": 12}}
    assert (total.covered_seconds, total.pods, total.labelled) == (300.0, 2, 24)


def test_versions_are_never_summed_together() -> None:
    a = WindowCounts(version="1", rows=10)
    b = WindowCounts(version="2", rows=5)
    with pytest.raises(ValueError, match="cannot be summed"):
        combine([a, b])
    assert {v: w.rows for v, w in by_version([a, b, a]).items()} == {"1": 20, "2": 5}


def test_bins_of_different_lengths_are_refused() -> None:
    a = WindowCounts(version="1", features={"f0": (1, 2)})
    b = WindowCounts(version="1", features={"f0": (1, 2, 3)})
    with pytest.raises(WindowFormatError, match="cannot be summed"):
        combine([a, b])


def test_cumulative_buckets_become_bins() -> None:
    assert bins_from_cumulative({0.0: 2, 1.0: 5, float("inf"): 9}) == (2, 3, 4)


def test_a_dip_in_increased_buckets_never_makes_a_negative_bin() -> None:
    assert bins_from_cumulative({0.0: 2, 1.0: 1.9, float("inf"): 3}) == (2, 0, 1)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=12))
def test_bins_from_cumulative_inverts_a_running_sum(counts: list[int]) -> None:
    running, buckets = 0, {}
    for i, c in enumerate(counts):
        running += c
        buckets[float(i) if i < len(counts) - 1 else float("inf")] = float(running)
    assert bins_from_cumulative(buckets) == tuple(float(c) for c in counts)
