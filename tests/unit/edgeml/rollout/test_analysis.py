"""One analysis measurement: limits, minimum samples, missing metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgeml.rollout import AnalysisObservation, MetricObservation
from edgeml.rollout.analysis import describe, measure
from unit.edgeml.rollout.world import T0, TEMPLATE, window


@pytest.mark.parametrize(
    ("observation", "counted", "passed"),
    [
        (window(), True, True),
        (window(error_rate=0.01), True, True),  # at the limit passes
        (window(error_rate=0.02), True, False),
        (window(shift=0.3), True, False),
        (window(error_rate=0.5, samples=49), False, False),  # too few samples: not counted
        (window(samples=50), True, True),
        (None, False, False),
        (AnalysisObservation((MetricObservation("error-rate", 0.0, 0.0, 999),)), False, False),
        (
            AnalysisObservation(
                (
                    MetricObservation("error-rate", None, 0.0, 999),
                    MetricObservation("prediction-shift", 0.0, 0.0, 999),
                )
            ),
            False,
            False,
        ),
        # Every request errors, so there are no predictions to compare: the error rate
        # alone is conclusive and fails the window.
        (
            AnalysisObservation(
                (
                    MetricObservation("error-rate", 1.0, 0.0, 999),
                    MetricObservation("prediction-shift", None, None, 0),
                )
            ),
            True,
            False,
        ),
        # A failing metric on too few samples is not conclusive, whatever the other says.
        (
            AnalysisObservation(
                (
                    MetricObservation("error-rate", 1.0, 0.0, 10),
                    MetricObservation("prediction-shift", None, None, 0),
                )
            ),
            False,
            False,
        ),
        # One conclusive pass does not make up for a metric that could not be judged.
        (
            AnalysisObservation(
                (
                    MetricObservation("error-rate", 0.0, 0.0, 999),
                    MetricObservation("prediction-shift", None, None, 0),
                )
            ),
            False,
            False,
        ),
    ],
)
def test_measure(observation: AnalysisObservation | None, counted: bool, passed: bool) -> None:
    m = measure(TEMPLATE, observation, T0)
    assert (m.counted, m.passed) == (counted, passed)
    assert m.at == T0
    assert [r.metric for r in m.results] == ["error-rate", "prediction-shift"]


def test_results_keep_the_numbers_for_status() -> None:
    m = measure(TEMPLATE, window(error_rate=0.05, shift=0.1), T0 + timedelta(seconds=1))
    first = m.results[0]
    assert (first.canary, first.stable, first.max, first.samples, first.passed) == (
        0.05,
        0.001,
        0.01,
        1000,
        False,
    )
    assert describe(m) == "error-rate 0.05 > 0.01"
    assert describe(measure(TEMPLATE, window(), T0)) == "no metric over its limit"
