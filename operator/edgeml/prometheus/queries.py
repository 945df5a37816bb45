"""Pure: the PromQL the analysis and the drift windows ask, and what their answers mean.

The series are the same cumulative counters a direct read of an inference pod's /metrics
gives, so whichever source fed it, the analysis that follows is the same.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

from edgeml.drift.windows import WindowCounts, bins_from_cumulative
from edgeml.rollout.signals import SAMPLE_NAMES, Sample

SCRAPE_LABELS = frozenset({"job", "instance", "prometheus", "prometheus_replica", "replica"})
"""Labels that tell scrapes of one series apart, not the series."""


def _quote(value: str) -> str:
    return json.dumps(value)  # PromQL string literals take JSON's escapes


def pod_series_query(
    namespace: str, pods: Sequence[str], pod_label: str = "pod", namespace_label: str = "namespace"
) -> str:
    """The PromQL selector of the analysis series of `pods` in `namespace`."""
    names = "|".join(re.escape(n) for n in SAMPLE_NAMES)
    wanted = "|".join(re.escape(p) for p in sorted(pods))
    return (
        f"{{__name__=~{_quote(names)}, {namespace_label}={_quote(namespace)}, "
        f"{pod_label}=~{_quote(wanted)}}}"
    )


def samples_of(result: Sequence[Mapping[str, object]], pod_label: str) -> dict[str, list[Sample]]:
    """The analysis samples of each pod in an instant vector (KeyError, TypeError,
    ValueError, IndexError or AttributeError on a series that is not one)."""
    out: dict[str, list[Sample]] = {}
    seen: set[tuple[str, ...]] = set()
    for series in result:
        labels = {str(k): str(v) for k, v in dict(series["metric"]).items()}  # type: ignore[call-overload]
        name = labels.pop("__name__", "")
        pod = labels.get(pod_label, "")
        # The same series scraped twice (two jobs, HA replicas) is counted once.
        key = (
            pod,
            name,
            *sorted(f"{k}={v}" for k, v in labels.items() if k not in SCRAPE_LABELS),
        )
        if not name or not pod or key in seen:
            continue
        seen.add(key)
        sample: list[object] = list(series["value"])  # type: ignore[call-overload]
        out.setdefault(pod, []).append((name, labels, float(str(sample[1]))))
    return out


# --- drift windows: increase() of the pods' cumulative counters over the window --------

WINDOW_SERIES = {
    "features": ("edgeml_serve_feature_value_bucket", ("version", "feature", "le")),
    "classes": ("edgeml_serve_predictions_total", ("version", "class")),
    "values": ("edgeml_serve_prediction_value_bucket", ("version", "le")),
    "confusion": ("edgeml_serve_feedback_confusion_total", ("version", "label", "predicted")),
    "labelled": ("edgeml_serve_feedback_total", ("version",)),
    "absolute": ("edgeml_serve_feedback_absolute_error_total", ("version",)),
    "squared": ("edgeml_serve_feedback_squared_error_total", ("version",)),
}


def window_query(
    series: str,
    by: Sequence[str],
    namespace: str,
    pods: Sequence[str],
    seconds: int,
    pod_label: str = "pod",
    namespace_label: str = "namespace",
) -> str:
    """`sum by (...) (increase(series{namespace, pods}[window]))`: counter resets (a
    restarted pod) are handled by increase() itself."""
    wanted = "|".join(re.escape(p) for p in sorted(pods))
    return (
        f"sum by ({', '.join(by)}) (increase({series}{{{namespace_label}={_quote(namespace)}, "
        f"{pod_label}=~{_quote(wanted)}}}[{seconds}s]))"
    )


def window_rows(result: Sequence[Mapping[str, object]]) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of each series of an instant vector (KeyError and the like on a
    series that is not one)."""
    return [
        ({str(k): str(v) for k, v in dict(s["metric"]).items()},  # type: ignore[call-overload]
         float(str(list(s["value"])[1])))  # type: ignore[call-overload]
        for s in result
    ]  # fmt: skip


def windows_of(
    rows: Mapping[str, list[tuple[dict[str, str], float]]], pods: int, seconds: float
) -> list[WindowCounts]:
    versions = sorted(
        {labels.get("version", "") for series in rows.values() for labels, _ in series}
    )
    out = []
    for version in versions:
        if not version:
            continue
        mine = {k: [(lab, v) for lab, v in series if lab.get("version") == version]
                for k, series in rows.items()}  # fmt: skip
        buckets: dict[str, dict[float, float]] = defaultdict(dict)
        for labels, value in mine["features"]:
            buckets[labels.get("feature", "")][float(labels["le"])] = value
        classes = {labels.get("class", ""): value for labels, value in mine["classes"]}
        values = {float(labels["le"]): value for labels, value in mine["values"]}
        confusion: dict[str, dict[str, float]] = defaultdict(dict)
        for labels, value in mine["confusion"]:
            confusion[labels.get("label", "")][labels.get("predicted", "")] = max(value, 0.0)
        prediction_bins = bins_from_cumulative(values) if values else ()
        rows_predicted = sum(classes.values()) if classes else sum(prediction_bins)

        def total(key: str, mine: Mapping[str, list[tuple[dict[str, str], float]]] = mine) -> float:
            return max(sum(v for _, v in mine[key]), 0.0)

        out.append(
            WindowCounts(
                version=version,
                rows=max(rows_predicted, 0.0),
                features={name: bins_from_cumulative(b) for name, b in buckets.items() if name},
                prediction_kind="regression" if values and not classes else "classification",
                classes={k: max(v, 0.0) for k, v in classes.items()},
                prediction_bins=prediction_bins,
                labelled=total("labelled"),
                confusion=dict(confusion),
                absolute_error_sum=total("absolute"),
                squared_error_sum=total("squared"),
                covered_seconds=seconds,
                pods=pods,
            )
        )
    return out
