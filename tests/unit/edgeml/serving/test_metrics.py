"""The serving metrics: requests and latency as prometheus-client would expose them,
feedback as summable counters, and the flat snapshot of all counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from edgeml.serving.feedback import Judgement
from edgeml.serving.metrics import (
    LATENCY_BUCKETS,
    MAX_FEEDBACK_LABELS,
    OTHER_LABEL,
    ServingMetrics,
)


def test_feedback_is_exposed_as_counters_only() -> None:
    metrics = ServingMetrics("m", "1")
    metrics.feedback.add(Judgement(2, pairs=(("1", "1"), ("1", "0"))))
    metrics.feedback.add(Judgement(1, absolute_errors=(0.5,), squared_errors=(0.25,)))
    text = generate_latest(metrics.registry).decode()
    assert 'edgeml_serve_feedback_total{model="m",version="1"} 3.0' in text
    assert 'edgeml_serve_feedback_correct_total{model="m",version="1"} 1.0' in text
    assert 'edgeml_serve_feedback_absolute_error_total{model="m",version="1"} 0.5' in text
    assert 'edgeml_serve_feedback_squared_error_total{model="m",version="1"} 0.25' in text
    confusion = (
        'edgeml_serve_feedback_confusion_total{label="1",model="m",predicted="%s",version="1"}'
    )
    assert confusion % "1" + " 1.0" in text
    assert confusion % "0" + " 1.0" in text
    assert "summary" not in text
    assert "quantile" not in text


def test_true_labels_are_bounded() -> None:
    metrics = ServingMetrics("m", "1")
    pairs = tuple((f"label-{i}", "0") for i in range(MAX_FEEDBACK_LABELS + 10))
    metrics.feedback.add(Judgement(len(pairs), pairs=pairs))
    true_labels = {true for true, _ in metrics.feedback.confusion}
    assert len(true_labels) == MAX_FEEDBACK_LABELS + 1
    assert metrics.feedback.confusion[(OTHER_LABEL, "0")] == 10


def test_the_snapshot_has_every_count_the_window_needs() -> None:
    metrics = ServingMetrics("m", "1")
    metrics.distributions.configure([("f0", [0.0, 1.0])], ["0", "1"], None, version="1")
    metrics.distributions.observe_features(np.asarray([[0.5], [2.0]]))
    metrics.distributions.observe_predictions(np.asarray([1, 1]))
    metrics.batch_child.observe(2)
    metrics.feedback.add(Judgement(1, pairs=(("0", "1"),)))
    assert metrics.counts() == {
        ("rows",): 2,
        ("feature", "f0", "1"): 1,
        ("feature", "f0", "2"): 1,
        ("class", "1"): 2,
        ("labelled",): 1,
        ("confusion", "0", "1"): 1,
        ("absoluteErrorSum",): 0.0,
        ("squaredErrorSum",): 0.0,
    }


def test_a_reset_counts_feedback_for_the_new_version_from_zero() -> None:
    metrics = ServingMetrics("m", "1")
    metrics.feedback.add(Judgement(1, pairs=(("0", "0"),)))
    metrics.feedback.reset("2")
    text = generate_latest(metrics.registry).decode()
    assert 'edgeml_serve_feedback_total{model="m",version="2"} 0.0' in text
    assert 'version="1"} 1.0' not in text.split("edgeml_serve_feedback_total")[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), max_size=40))
def test_request_latency_is_exposed_as_prometheus_client_would(values: list[float]) -> None:
    ours = ServingMetrics("m", "1")
    theirs = CollectorRegistry()
    histogram = Histogram(
        "edgeml_serve_request_duration_seconds", "", ["model", "version"],
        buckets=LATENCY_BUCKETS, registry=theirs,
    )  # fmt: skip
    child = histogram.labels("m", "1")
    for value in values:
        ours.latency_child.observe(value)
        child.observe(value)

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for family in registry.collect()
            if family.name == "edgeml_serve_request_duration_seconds"
            for s in family.samples
            if not s.name.endswith("_created")
        }

    assert samples(ours.registry) == pytest.approx(samples(theirs))


def test_requests_are_counted_per_outcome_and_version_and_rows_by_the_bound_version() -> None:
    metrics = ServingMetrics("m", "1")
    metrics.ok.inc()
    metrics.batch_child.observe(3)
    metrics.bind("2")
    metrics.ok.inc()
    metrics.client_error.inc()
    metrics.batch_child.observe(5)
    text = generate_latest(metrics.registry).decode()
    assert 'edgeml_serve_requests_total{model="m",outcome="ok",version="1"} 1.0' in text
    assert 'edgeml_serve_requests_total{model="m",outcome="ok",version="2"} 1.0' in text
    assert 'edgeml_serve_requests_total{model="m",outcome="client_error",version="2"} 1.0' in text
    assert 'edgeml_serve_requests_total{model="m",outcome="server_error",version="2"} 0.0' in text
    assert 'edgeml_serve_batch_rows_bucket{le="4.0",model="m",version="1"} 1.0' in text
    assert 'edgeml_serve_batch_rows_bucket{le="4.0",model="m",version="2"} 0.0' in text
    assert metrics.rows_predicted() == 5
