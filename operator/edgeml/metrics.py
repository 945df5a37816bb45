"""The operator's own Prometheus metrics: reconciles, durations, errors, objects by phase."""

from __future__ import annotations

import threading

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
