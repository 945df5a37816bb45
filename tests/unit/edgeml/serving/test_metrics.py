"""The serving metrics: feedback as summable counters, and the flat snapshot of all counts."""

from __future__ import annotations

import numpy as np
from prometheus_client import generate_latest

from edgeml.serving.feedback import Judgement
from edgeml.serving.metrics import MAX_FEEDBACK_LABELS, OTHER_LABEL, ServingMetrics


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
