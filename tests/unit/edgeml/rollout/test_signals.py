"""Canary numbers from the text `edgeml serve` exposes on /metrics."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import generate_latest

from edgeml.rollout.signals import (
    Signals,
    analysis_observation,
    distance,
    error_rate,
    parse_signals,
    quantile,
    refused_artifact,
)
from edgeml.serving.metrics import ServingMetrics, _Bins


def page(
    ok: int = 0,
    server_errors: int = 0,
    client_errors: int = 0,
    latency: float = 0.001,
    classes: dict[str, int] | None = None,
    mismatch: bool = False,
) -> str:
    """A real /metrics page from the serving metrics class."""
    m = ServingMetrics("vibration", "3")
    for _ in range(ok):
        m.ok.inc()
        m.latency_child.observe(latency)
    for _ in range(server_errors):
        m.server_error.inc()
    for _ in range(client_errors):
        m.client_error.inc()
    for label, count in (classes or {}).items():
        m.distributions.classes[label] = count
    if mismatch:
        m.mismatch_child.inc()
    return generate_latest(m.registry).decode()


def test_outcomes_latency_and_classes_sum_over_pods() -> None:
    s = parse_signals([page(ok=10, classes={"0": 7, "1": 3}), page(ok=5, server_errors=5)])
    assert s.pods == 2
    assert s.requests == 20
    assert error_rate(s) == pytest.approx(0.25)
    assert s.predictions == {"0": 7.0, "1": 3.0}


def test_client_errors_are_not_the_models_fault() -> None:
    assert error_rate(parse_signals([page(ok=9, client_errors=9, server_errors=2)])) == 0.1
    assert error_rate(Signals()) is None


def test_a_refused_artifact_shows_on_the_page() -> None:
    assert refused_artifact(page(mismatch=True))
    assert not refused_artifact(page(ok=3))


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {0.1: 0.0, 0.2: 10.0, float("inf"): 10.0}, 0.15),
        (0.99, {0.1: 99.0, 0.2: 100.0, float("inf"): 100.0}, 0.1),
        (1.0, {0.1: 50.0, float("inf"): 100.0}, 0.1),  # the +Inf bucket gives its lower edge
        (0.5, {0.1: 0.0, float("inf"): 0.0}, None),
        (0.5, {}, None),
    ],
)
def test_quantile_interpolates_like_histogram_quantile(
    q: float, buckets: dict[float, float], expected: float | None
) -> None:
    got = quantile(q, buckets)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_latency_p99_from_real_histograms_in_milliseconds() -> None:
    canary = parse_signals([page(ok=100, latency=0.003)])
    stable = parse_signals([page(ok=100, latency=0.0003)])
    obs = analysis_observation(["latency-p99-ms"], canary, stable)
    m = obs.metric("latency-p99-ms")
    assert m is not None
    assert m.canary is not None
    assert m.stable is not None
    assert 2.5 < m.canary <= 5.0  # inside the 2.5-5 ms bucket
    assert m.stable < 0.5
    assert m.samples == 100


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ({"0": 5, "1": 5}, {"0": 50, "1": 50}, 0.0),
        ({"0": 10}, {"1": 10}, 1.0),
        ({"0": 8, "1": 2}, {"0": 5, "1": 5}, 0.3),
        ({"0": 0}, {"0": 3}, None),
    ],
)
def test_distance_is_total_variation(
    a: dict[str, float], b: dict[str, float], expected: float | None
) -> None:
    got = distance(a, b)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_prediction_shift_compares_canary_with_stable() -> None:
    canary = parse_signals([page(ok=100, classes={"1": 100})])
    stable = parse_signals([page(ok=100, classes={"0": 90, "1": 10})])
    shift = analysis_observation(["prediction-shift"], canary, stable).metric("prediction-shift")
    assert shift is not None
    assert shift.canary == pytest.approx(0.9)
    assert shift.samples == 100
    assert shift.applicable


def test_prediction_shift_without_stable_is_reported_not_judged() -> None:
    canary = parse_signals([page(ok=10, classes={"1": 10})])
    shift = analysis_observation(["prediction-shift"], canary, None).metric("prediction-shift")
    assert shift is not None
    assert not shift.applicable
    assert shift.canary is None
    assert shift.samples == 10


def test_regression_predictions_use_the_baseline_bins() -> None:
    m = ServingMetrics("m", "1")
    m.distributions.regression = _Bins([0.0, 1.0])
    m.distributions.regression.add_many(np.array([-1.0, 0.5, 0.5, 2.0]))
    s = parse_signals([generate_latest(m.registry).decode()])
    assert s.predictions == {"0.0": 1.0, "1.0": 2.0, "inf": 1.0}


def test_error_rate_over_several_pods_of_each_group() -> None:
    obs = analysis_observation(
        ["error-rate"],
        parse_signals([page(ok=90, server_errors=10)]),
        parse_signals([page(ok=100), page(ok=100)]),
    )
    m = obs.metric("error-rate")
    assert m is not None
    assert (m.canary, m.stable, m.samples) == (pytest.approx(0.1), 0.0, 100)
