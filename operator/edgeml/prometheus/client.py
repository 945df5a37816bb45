"""Reading the inference pods' series from a Prometheus server: the analysis' third source.

For fleets whose pods the operator cannot reach (edge sites behind NAT, a central
Prometheus fed by each site's agent). One instant query per group of pods; what to ask
and what the answer means are in queries.py, this module only asks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence

import urllib3

from edgeml.drift.windows import WindowCounts
from edgeml.prometheus.queries import (
    WINDOW_SERIES,
    pod_series_query,
    samples_of,
    window_query,
    window_rows,
    windows_of,
)
from edgeml.rollout.signals import Sample


class PrometheusUnavailableError(RuntimeError):
    """The server could not be reached, or refused the query; the message says which."""


@functools.cache
def _pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)


def instant_query(address: str, promql: str, timeout: float) -> list[dict[str, object]]:
    """The result vector of an instant query (POSTed: a wave's pod list can be long)."""
    url = address.rstrip("/") + "/api/v1/query"
    try:
        response = _pool().request(
            "POST", url, fields={"query": promql}, encode_multipart=False, timeout=timeout
        )
        body = json.loads(response.data or b"{}")
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
        raise PrometheusUnavailableError(f"querying {url}: {err}") from err
    if response.status != 200 or not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise PrometheusUnavailableError(f"{url} answered HTTP {response.status}: {error}"[:300])
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise PrometheusUnavailableError(f"{url} gave no instant vector")
    result: list[dict[str, object]] = data.get("result") or []
    return result


def pod_samples(
    address: str,
    namespace: str,
    pods: Sequence[str],
    timeout: float,
    pod_label: str = "pod",
    namespace_label: str = "namespace",
) -> dict[str, list[Sample]]:
    """The analysis samples of each of `pods` that the server has series for."""
    if not pods:
        return {}
    query = pod_series_query(namespace, pods, pod_label, namespace_label)
    try:
        return samples_of(instant_query(address, query, timeout), pod_label)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise PrometheusUnavailableError(
            f"{address} answered a series analysis cannot read: {err}"
        ) from err


# --- drift windows: increase() of the pods' cumulative counters over the window --------


def window_counts(
    address: str,
    namespace: str,
    pods_by_group: Mapping[str, Sequence[str]],
    seconds: int,
    timeout: float,
    pod_label: str = "pod",
    namespace_label: str = "namespace",
) -> dict[str, list[WindowCounts]]:
    """Per group of pods (a zone), the window counts of each version they served."""
    out: dict[str, list[WindowCounts]] = {}
    for group, pods in sorted(pods_by_group.items()):
        if not pods:
            continue
        rows: dict[str, list[tuple[dict[str, str], float]]] = {}
        for key, (series, by) in WINDOW_SERIES.items():
            query = window_query(series, by, namespace, pods, seconds, pod_label, namespace_label)
            try:
                rows[key] = window_rows(instant_query(address, query, timeout))
            except (KeyError, TypeError, ValueError, IndexError) as err:
                raise PrometheusUnavailableError(
                    f"{address} answered a series the drift window cannot read: {err}"
                ) from err
        out[group] = windows_of(rows, len(pods), float(seconds))
    return out
