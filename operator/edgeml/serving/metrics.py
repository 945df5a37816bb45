"""What `edgeml serve` exposes on /metrics, in its own registry (one per server).

Requests, latency and batch sizes are counted by `RequestCounts`, and the distributions
(per-feature values, predictions) by `Distributions`: collectors over plain numbers, not
prometheus-client's metric types, because they are the hot path. prometheus-client takes
a lock per update and finds a histogram bucket in a Python loop (1.9 µs for the three
updates of a request, measured; these take 0.3), and every update here runs on the
server's one event-loop thread, so no lock is needed. The distributions' bins must also
be the training baseline's: a baseline bin is closed below
(`edges[i-1] <= v < edges[i]`), so a bucket `le="e"` here counts values *below* e,
not at or below it as Prometheus histograms usually do. With that, differencing the
cumulative buckets gives exactly the baseline's bins, and a 0/1 feature with edges
[0, 1] is compared bin for bin (Prometheus' usual `<=` would shift every value by a bin).

Feedback is counted by `FeedbackCounts` as counters only (rows, correct, a confusion
matrix, error sums), never quantiles, so the pods of a zone or fleet can be summed.
`ServingMetrics.counts()` is a flat snapshot of all these counts, for the recent window.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from edgeml.serving.feedback import Judgement
from edgeml.serving.window import Counts

_go_float: Callable[[float], str] = floatToGoString

LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
DEFAULT_PREDICTION_EDGES = (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0)
"""Regression prediction bins when the model came without a baseline."""
MAX_FEEDBACK_LABELS = 64
"""Distinct true labels in the confusion matrix; clients send them, so they are bounded."""
OTHER_LABEL = "__other__"

# The keys of `ServingMetrics.counts()`.
ROWS = ("rows",)
FEATURE = "feature"  # (FEATURE, name, bin index)
CLASS = "class"  # (CLASS, label): predicted class (classification)
PREDICTION = "prediction"  # (PREDICTION, bin index): predicted value (regression)
LABELLED = ("labelled",)
CONFUSION = "confusion"  # (CONFUSION, true label, predicted label)
ABSOLUTE_ERROR = ("absoluteErrorSum",)
SQUARED_ERROR = ("squaredErrorSum",)


def _cumulative(edges: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bin counts (one more than the edges) as cumulative buckets, +Inf last."""
    out: list[tuple[str, float]] = []
    running = 0
    for edge, count in zip(edges, counts, strict=False):
        running += count
        out.append((_go_float(edge), running))
    out.append(("+Inf", running + counts[-1]))
    return out


class _Bins:
    """Counts of values in the bins of ascending `edges` (closed below, open ends)."""

    __slots__ = ("array", "counts", "edges", "total")

    def __init__(self, edges: Sequence[float]) -> None:
        self.edges = [float(e) for e in edges]
        self.array = np.asarray(self.edges, dtype=np.float64)
        self.counts = [0] * (len(self.edges) + 1)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_right(self.edges, value)] += 1
        self.total += value

    def add_many(self, values: npt.NDArray[Any]) -> None:
        index = np.searchsorted(self.array, values, side="right")
        for i, n in enumerate(np.bincount(index, minlength=len(self.counts)).tolist()):
            if n:
                self.counts[i] += n
        self.total += float(values.sum(dtype=np.float64))

    def buckets(self) -> list[tuple[str, float]]:
        return _cumulative(self.edges, self.counts)


class Count:
    """A counter for the event-loop thread: a plain number (`inc` as prometheus-client's)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount`."""
        self.value += amount


class Buckets:
    """A Prometheus histogram for the event-loop thread: `le` buckets (value <= bound)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """The `le` buckets as Prometheus exposes them, +Inf last."""
        return _cumulative(self.bounds, self.counts)


OUTCOMES = ("ok", "client_error", "server_error")


class VersionCounts:
    """The request counts of one served version."""

    __slots__ = ("batch", "latency", "outcomes")

    def __init__(self) -> None:
        self.outcomes = {outcome: Count() for outcome in OUTCOMES}
        self.latency = Buckets(LATENCY_BUCKETS)
        self.batch = Buckets(BATCH_BUCKETS)


class RequestCounts(Collector):
    """Inference requests by outcome, their latency and their rows, per served version
    (a version served earlier by this process keeps its series, as labelled children do)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.versions: dict[str, VersionCounts] = {}

    def of(self, version: str) -> VersionCounts:
        """The counts of `version`, made on first use."""
        counts = self.versions.get(version)
        if counts is None:
            counts = self.versions[version] = VersionCounts()
        return counts

    def collect(self) -> Iterator[Metric]:
        """The families as they stand now."""
        model = self.model
        requests = CounterMetricFamily(
            "edgeml_serve_requests",
            "Inference requests by outcome (ok, client_error, server_error).",
            labels=["model", "version", "outcome"],
        )
        latency = HistogramMetricFamily(
            "edgeml_serve_request_duration_seconds",
            "Time to answer an inference request, from its parsed body to its response.",
            labels=["model", "version"],
        )
        batch = HistogramMetricFamily(
            "edgeml_serve_batch_rows", "Rows per inference request.", labels=["model", "version"]
        )
        for version, counts in self.versions.items():
            for outcome, count in counts.outcomes.items():
                requests.add_metric([model, version, outcome], count.value)
            latency.add_metric([model, version], counts.latency.cumulative(), counts.latency.sum)
            batch.add_metric([model, version], counts.batch.cumulative(), counts.batch.sum)
        yield requests
        yield latency
        yield batch


class Distributions(Collector):
    """Feature values and predictions, binned like the training baseline."""

    def __init__(self, model: str, version: str) -> None:
        self.labels = [model, version]
        self.features: list[tuple[str, _Bins]] = []
        self.classes: dict[str, int] = {}
        self.regression: _Bins | None = None

    def configure(
        self,
        features: Sequence[tuple[str, Sequence[float]]],
        classes: Sequence[str] | None,
        prediction_edges: Sequence[float] | None,
        version: str,
    ) -> None:
        """Set the bins once the model (and its baseline) is loaded."""
        self.labels[1] = version
        self.features = [(name, _Bins(edges)) for name, edges in features]
        if classes is not None:
            self.classes = dict.fromkeys(classes, 0)
            self.regression = None
        else:
            self.regression = _Bins(prediction_edges or DEFAULT_PREDICTION_EDGES)

    def observe_features(self, rows: npt.NDArray[Any]) -> None:
        """Count a [rows, features] batch of model inputs."""
        features = self.features
        if not features or rows.ndim != 2 or rows.shape[1] != len(features):
            return
        if rows.shape[0] == 1:
            # One row: bisect on Python floats beats numpy's per-call overhead.
            for (_, bins), value in zip(features, rows[0].tolist(), strict=True):
                bins.add(value)
            return
        for j, (_, bins) in enumerate(features):
            bins.add_many(rows[:, j])

    def observe_predictions(
        self, predictions: npt.NDArray[Any], labels: list[str] | None = None
    ) -> None:
        """Count a batch of predictions (class labels, or regression values); `labels`,
        if the caller has them already, are the class labels as text."""
        if self.regression is not None:
            values = predictions.reshape(-1)
            if values.size == 1:
                self.regression.add(float(values[0]))
            else:
                self.regression.add_many(values.astype(np.float64))
            return
        classes = self.classes
        for key in labels if labels is not None else class_labels(predictions):
            classes[key] = classes.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        """The families as they stand now."""
        model, version = self.labels
        features = HistogramMetricFamily(
            "edgeml_serve_feature_value",
            "Model input values per feature; buckets are the training baseline's bin edges "
            "and count values below the edge (baseline bins are closed below).",
            labels=["model", "version", "feature"],
        )
        for name, bins in self.features:
            _add_histogram(features, [model, version, name], bins)
        yield features
        predictions = CounterMetricFamily(
            "edgeml_serve_predictions",
            "Predicted class labels (classification models).",
            labels=["model", "version", "class"],
        )
        for label, count in self.classes.items():
            predictions.add_metric([model, version, label], count)
        yield predictions
        values = HistogramMetricFamily(
            "edgeml_serve_prediction_value",
            "Predicted values (regression models); buckets are the baseline's prediction "
            "bin edges and count values below the edge.",
            labels=["model", "version"],
        )
        if self.regression is not None:
            _add_histogram(values, [model, version], self.regression)
        yield values


class FeedbackCounts(Collector):
    """Ground truth received for earlier predictions, as counters that sum across pods."""

    def __init__(self, model: str, version: str) -> None:
        self.labels = [model, version]
        self.reset(version)

    def reset(self, version: str) -> None:
        """Start counting from zero for `version` (a model was installed)."""
        self.labels[1] = version
        self.rows = 0
        self.correct = 0
        self.confusion: dict[tuple[str, str], int] = {}
        self.true_labels: set[str] = set()
        self.absolute_error = 0.0
        self.squared_error = 0.0

    def add(self, judgement: Judgement) -> None:
        """Count one request's labelled predictions."""
        self.rows += judgement.rows
        self.correct += judgement.correct
        confusion = self.confusion
        for true, predicted in judgement.pairs:
            if true not in self.true_labels:
                if len(self.true_labels) >= MAX_FEEDBACK_LABELS:
                    true = OTHER_LABEL
                self.true_labels.add(true)
            cell = (true, predicted)
            confusion[cell] = confusion.get(cell, 0) + 1
        self.absolute_error += sum(judgement.absolute_errors)
        self.squared_error += sum(judgement.squared_errors)

    def collect(self) -> Iterator[Metric]:
        """The families as they stand now."""
        labels = list(self.labels)
        families = (
            ("edgeml_serve_feedback", "Ground-truth labels received for earlier predictions.",
             self.rows),
            ("edgeml_serve_feedback_correct",
             "Feedback labels equal to the prediction (classification).", self.correct),
            ("edgeml_serve_feedback_absolute_error",
             "Sum of the absolute errors of predictions that got feedback (regression).",
             self.absolute_error),
            ("edgeml_serve_feedback_squared_error",
             "Sum of the squared errors of predictions that got feedback (regression).",
             self.squared_error),
        )  # fmt: skip
        for name, documentation, value in families:
            family = CounterMetricFamily(name, documentation, labels=["model", "version"])
            family.add_metric(labels, value)
            yield family
        confusion = CounterMetricFamily(
            "edgeml_serve_feedback_confusion",
            "Feedback by true label and predicted label, as text (classification).",
            labels=["model", "version", "label", "predicted"],
        )
        for (true, predicted), count in self.confusion.items():
            confusion.add_metric([*labels, true, predicted], count)
        yield confusion


def _add_histogram(family: HistogramMetricFamily, labels: list[str], bins: _Bins) -> None:
    buckets = bins.buckets()
    before = len(family.samples)
    family.add_metric(labels, buckets, bins.total)
    if len(family.samples) == before + len(buckets):
        # prometheus-client drops _sum and _count when a bucket edge is negative (a sum
        # of mixed signs is no rate); the count is still the +Inf bucket, so keep it.
        family.samples.append(
            Sample(family.name + "_count", dict(zip(family._labelnames, labels, strict=True)),
                   buckets[-1][1])
        )  # fmt: skip


class ServingMetrics:
    """Every metric of one server, in its own registry."""

    def __init__(self, model: str, version: str) -> None:
        self.registry = CollectorRegistry()
        self.model = model
        self.version = version
        r = self.registry
        self.requests = RequestCounts(model)
        r.register(self.requests)
        self.info = Gauge(
            "edgeml_serve_model_info",
            "The model being served (1), with its sha256.",
            ["model", "version", "sha256"],
            registry=r,
        )
        self.ready = Gauge("edgeml_serve_ready", "1 when a verified model is loaded.", registry=r)
        self.mismatches = Counter(
            "edgeml_serve_sha256_mismatch",
            "Model artifacts refused because their sha256 was not the expected one.",
            ["model", "version"],
            registry=r,
        )
        self.distributions = Distributions(model, version)
        r.register(self.distributions)
        self.feedback = FeedbackCounts(model, version)
        r.register(self.feedback)
        self.bind(version)

    def bind(self, version: str) -> None:
        """Pre-bind the labelled children, so the hot path does no label lookups."""
        self.version = version
        labels = (self.model, version)
        counts = self.requests.of(version)
        self.ok = counts.outcomes["ok"]
        self.client_error = counts.outcomes["client_error"]
        self.server_error = counts.outcomes["server_error"]
        self.latency_child = counts.latency
        self.batch_child = counts.batch
        self.mismatch_child = self.mismatches.labels(*labels)

    def rows_predicted(self) -> int:
        """Rows answered by the bound version so far (the batch histogram's sum)."""
        return int(self.batch_child.sum)

    def counts(self) -> Counts:
        """A flat snapshot of the cumulative counts the recent window differences."""
        distributions = self.distributions
        counts: Counts = {ROWS: self.rows_predicted()}
        for name, bins in distributions.features:
            for i, n in enumerate(bins.counts):
                if n:
                    counts[(FEATURE, name, str(i))] = n
        if distributions.regression is not None:
            for i, n in enumerate(distributions.regression.counts):
                if n:
                    counts[(PREDICTION, str(i))] = n
        for label, n in distributions.classes.items():
            if n:
                counts[(CLASS, label)] = n
        feedback = self.feedback
        counts[LABELLED] = feedback.rows
        for (true, predicted), n in feedback.confusion.items():
            counts[(CONFUSION, true, predicted)] = n
        counts[ABSOLUTE_ERROR] = feedback.absolute_error
        counts[SQUARED_ERROR] = feedback.squared_error
        return counts


def class_labels(predictions: npt.NDArray[Any]) -> list[str]:
    """A classifier's predicted labels, one per row, as text."""
    return [
        v.decode() if isinstance(v, bytes) else str(v) for v in predictions.reshape(-1).tolist()
    ]
