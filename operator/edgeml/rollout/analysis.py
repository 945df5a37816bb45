"""Judging one analysis window: each metric of the canary against its limit."""

from __future__ import annotations

from datetime import datetime

from edgeml.rollout.model import (
    AnalysisObservation,
    AnalysisTemplate,
    Measurement,
    MetricResult,
)


def measure(
    template: AnalysisTemplate, observation: AnalysisObservation | None, now: datetime
) -> Measurement:
    """One measurement of the current window.

    A metric is conclusive when observed with at least `min_samples` requests and a
    canary value: judging a canary on a handful of requests would roll back good models
    on quiet sites. The measurement passes when every metric is conclusive and within
    its `max` (prediction-shift arrives already as a canary-vs-stable distance). It
    fails, and counts, as soon as one conclusive metric is over its limit, even if
    another is not conclusive: a version whose every request errors makes no
    predictions to compare, and must not be waved through as "too few samples".
    """
    results = []
    every_conclusive = observation is not None
    one_failed = False
    for limit in template.metrics:
        seen = observation.metric(limit.name) if observation else None
        if seen is not None and not seen.applicable:
            # Reported, never judged: a first rollout has no stable predictions to shift from.
            results.append(MetricResult(limit.name, None, None, limit.max, True, seen.samples))
            continue
        canary = seen.canary if seen else None
        passed = canary is not None and canary <= limit.max
        if seen is None or canary is None or seen.samples < template.min_samples:
            every_conclusive = False
        elif not passed:
            one_failed = True
        results.append(
            MetricResult(
                metric=limit.name,
                canary=canary,
                stable=seen.stable if seen else None,
                max=limit.max,
                passed=passed,
                samples=seen.samples if seen else 0,
            )
        )
    counted = observation is not None and (every_conclusive or one_failed)
    passed = every_conclusive and all(r.passed for r in results)
    return Measurement(at=now, counted=counted, passed=passed, results=tuple(results))


def describe(measurement: Measurement) -> str:
    """The metrics over their limits, for messages: `error-rate 0.05 > 0.01`."""
    over = [
        f"{r.metric} {r.canary:g} > {r.max:g}"
        for r in measurement.results
        if r.canary is not None and not r.passed
    ]
    return ", ".join(over) or "no metric over its limit"
