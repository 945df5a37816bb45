"""The operator's own Prometheus metrics: reconciles, durations, errors, objects by phase."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "edgeml_reconcile_total",
    "Reconciles of edgeml objects, by kind and result.",
    ["kind", "result"],
)
RECONCILE_ERRORS = Counter(
    "edgeml_reconcile_errors_total",
    "Reconciles that raised, by kind and error type.",
    ["kind", "error"],
)
RECONCILE_SECONDS = Histogram(
    "edgeml_reconcile_duration_seconds",
    "Time to reconcile one object, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OBJECTS = Gauge(
    "edgeml_objects", "edgeml objects known to the operator, by kind and phase.", ["kind", "phase"]
)


class PhaseTracker:
    """Which phase each object is in, so `edgeml_objects` can be kept exact.

    Rebuilt from the watch stream after a restart: it is a metric's cache, not state.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[tuple[str, str], str] = {}

    def observe(self, kind: str, ref: str, phase: str | None) -> None:
        """Record the phase of `kind` `ref` (None: the object is gone)."""
        with self._lock:
            old = self._phases.pop((kind, ref), None)
            if old is not None:
                OBJECTS.labels(kind, old).dec()
            if phase is not None:
                self._phases[(kind, ref)] = phase
                OBJECTS.labels(kind, phase).inc()


PHASES = PhaseTracker()


DRIFT_SCORE = Gauge(
    "edgeml_drift_feature_score",
    "The fleet's latest drift score per DriftPolicy and feature (`prediction` for the "
    "predictions).",
    ["namespace", "policy", "feature"],
)
DRIFT_THRESHOLD = Gauge(
    "edgeml_drift_threshold", "The feature threshold of each DriftPolicy.", ["namespace", "policy"]
)
DRIFT_DRIFTED = Gauge(
    "edgeml_drift_drifted",
    "1 while a DriftPolicy is in a drift episode, 0 when it is not, absent before it decided.",
    ["namespace", "policy"],
)
DRIFT_SAMPLES = Gauge(
    "edgeml_drift_samples", "Rows in the latest evaluation's window.", ["namespace", "policy"]
)
DRIFT_SECONDS = Histogram(
    "edgeml_drift_evaluation_duration_seconds",
    "Time to read the pods' windows and baselines for one evaluation.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
DRIFT_FAILURES = Counter(
    "edgeml_drift_evaluation_failures_total",
    "Evaluations that could not read what they need, by policy and reason.",
    ["namespace", "policy", "reason"],
)


class DriftMetrics:
    """The drift series of each policy, kept exact as features and policies come and go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._features: dict[tuple[str, str], set[str]] = {}

    def evaluated(self, namespace: str, policy: str, seconds: float) -> None:
        """One evaluation's read time."""
        DRIFT_SECONDS.observe(seconds)

    def failed(self, namespace: str, policy: str, reason: str) -> None:
        """One evaluation that could not read its counts or baselines."""
        DRIFT_FAILURES.labels(namespace, policy, reason).inc()

    def publish(self, namespace: str, policy: str, status: Any) -> None:
        """Scores, threshold, samples and the decision from a policy's status."""
        key = (namespace, policy)
        scores: dict[str, float] = dict(status.scores)
        with self._lock:
            for gone in self._features.get(key, set()) - set(scores):
                DRIFT_SCORE.remove(namespace, policy, gone)
            for feature, value in scores.items():
                DRIFT_SCORE.labels(namespace, policy, feature).set(value)
            self._features[key] = set(scores)
        if status.evaluation is not None:
            DRIFT_THRESHOLD.labels(namespace, policy).set(status.evaluation.threshold)
            DRIFT_SAMPLES.labels(namespace, policy).set(status.evaluation.samples)
        if status.drifted is not None:
            DRIFT_DRIFTED.labels(namespace, policy).set(1 if status.drifted else 0)

    def forget(self, namespace: str, policy: str) -> None:
        """Remove a deleted policy's series."""
        with self._lock:
            for feature in self._features.pop((namespace, policy), set()):
                DRIFT_SCORE.remove(namespace, policy, feature)
        for gauge in (DRIFT_THRESHOLD, DRIFT_DRIFTED, DRIFT_SAMPLES):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, policy)


DRIFT = DriftMetrics()
