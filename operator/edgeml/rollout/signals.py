"""Analysis numbers from the pods' Prometheus text (pure): canary against stable.

Counters in `edgeml serve` start at zero with the pod, and a canary's pods are new, so
a version's cumulative counters are its whole life on the fleet: the window needs no
memory of earlier scrapes, and an operator restart loses nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from edgeml.rollout.model import AnalysisObservation, MetricObservation

REQUESTS = "edgeml_serve_requests"
LATENCY = "edgeml_serve_request_duration_seconds"
CLASSES = "edgeml_serve_predictions"
VALUES = "edgeml_serve_prediction_value"
MISMATCH = "edgeml_serve_sha256_mismatch"


@dataclass
class Signals:
    """The counters analysis needs, summed over a group of pods."""

    outcomes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    latency: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    classes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    values: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    mismatches: float = 0.0
    pods: int = 0

    @property
    def requests(self) -> float:
        """Inference requests of every outcome."""
        return sum(self.outcomes.values())

    @property
    def predictions(self) -> dict[str, float]:
        """The prediction distribution: class counts, or regression bins (by upper edge)."""
        if self.classes:
            return dict(self.classes)
        bins: dict[str, float] = {}
        below = 0.0
        for edge in sorted(self.values):
            bins[repr(edge)] = self.values[edge] - below
            below = self.values[edge]
        return bins


Sample = tuple[str, Mapping[str, str], float]
"""One sample: its name (with _total or _bucket), its labels, its value."""

SAMPLE_NAMES = (
    f"{REQUESTS}_total",
    f"{LATENCY}_bucket",
    f"{CLASSES}_total",
    f"{VALUES}_bucket",
    f"{MISMATCH}_total",
)
"""The series analysis reads, as a Prometheus server stores them."""


def samples_of(text: str) -> list[Sample]:
    """The samples of one /metrics page (Prometheus text format)."""
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def signals_of(pods: Iterable[Iterable[Sample]]) -> Signals:
    """Sum the samples of several pods (one iterable of samples per pod)."""
    out = Signals()
    for samples in pods:
        out.pods += 1
        for name, labels, value in samples:
            if name == f"{REQUESTS}_total":
                out.outcomes[labels.get("outcome", "")] += value
            elif name == f"{LATENCY}_bucket":
                out.latency[float(labels["le"])] += value
            elif name == f"{CLASSES}_total":
                out.classes[labels.get("class", "")] += value
            elif name == f"{VALUES}_bucket":
                out.values[float(labels["le"])] += value
            elif name == f"{MISMATCH}_total":
                out.mismatches += value
    return out


def parse_signals(texts: Iterable[str]) -> Signals:
    """Sum the metrics of several pods' /metrics pages."""
    return signals_of(samples_of(text) for text in texts)


def refused(samples: Iterable[Sample]) -> bool:
    """Whether a pod's samples say it refused its model's bytes (sha256 mismatch)."""
    return signals_of([samples]).mismatches > 0


def refused_artifact(text: str) -> bool:
    """Whether a pod's /metrics says it refused its model's bytes (sha256 mismatch)."""
    return refused(samples_of(text))


def error_rate(s: Signals) -> float | None:
    """Server errors per request (a client's malformed request is not the model's fault)."""
    total = s.requests
    return s.outcomes.get("server_error", 0.0) / total if total else None


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated as Prometheus'
    histogram_quantile does (within the bucket; the +Inf bucket gives its lower edge)."""
    edges = sorted(buckets)
    if not edges or buckets[edges[-1]] <= 0:
        return None
    rank = q * buckets[edges[-1]]
    lower, below = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if math.isinf(edge):
                return lower
            inside = count - below
            return lower + (edge - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = edge, count
    return lower


def distance(a: dict[str, float], b: dict[str, float]) -> float | None:
    """Total variation distance between two distributions of counts: 0 same, 1 disjoint."""
    ta, tb = sum(a.values()), sum(b.values())
    if ta <= 0 or tb <= 0:
        return None
    keys = set(a) | set(b)
    return 0.5 * sum(abs(a.get(k, 0.0) / ta - b.get(k, 0.0) / tb) for k in keys)


def analysis_observation(
    metrics: Sequence[str], canary: Signals, stable: Signals | None
) -> AnalysisObservation:
    """Each named metric of the canary, with the stable group's value for comparison.

    prediction-shift needs stable traffic to compare with: on a first rollout (no stable
    version) it is reported as not applicable rather than invented.
    """
    out = []
    for name in metrics:
        if name == "error-rate":
            out.append(
                MetricObservation(
                    name,
                    error_rate(canary),
                    error_rate(stable) if stable else None,
                    int(canary.requests),
                )
            )
        elif name == "latency-p99-ms":
            c = quantile(0.99, canary.latency)
            s = quantile(0.99, stable.latency) if stable else None
            count = max(canary.latency.values(), default=0.0)
            out.append(
                MetricObservation(
                    name,
                    None if c is None else c * 1000,
                    None if s is None else s * 1000,
                    int(count),
                )
            )
        elif name == "prediction-shift":
            seen = canary.predictions
            samples = int(sum(seen.values()))
            if stable is None or not stable.predictions:
                out.append(MetricObservation(name, None, None, samples, applicable=False))
                continue
            out.append(MetricObservation(name, distance(seen, stable.predictions), None, samples))
    return AnalysisObservation(tuple(out))
