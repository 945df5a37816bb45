"""Reading the inference pods' series from a Prometheus server: the analysis' third source.

For fleets whose pods the operator cannot reach (edge sites behind NAT, a central
Prometheus fed by each site's agent). One instant query per group of pods returns the
same cumulative counters a direct read of /metrics would, one series per pod and label
set, so the analysis that follows is the same whichever source fed it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence

import urllib3

from edgeml.rollout.signals import SAMPLE_NAMES, Sample

SCRAPE_LABELS = frozenset({"job", "instance", "prometheus", "prometheus_replica", "replica"})
"""Labels that tell scrapes of one series apart, not the series."""


class PrometheusUnavailableError(RuntimeError):
    """The server could not be reached, or refused the query; the message says which."""


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
    out: dict[str, list[Sample]] = {}
    seen: set[tuple[str, ...]] = set()
    try:
        for series in instant_query(address, query, timeout):
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
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise PrometheusUnavailableError(
            f"{address} answered a series analysis cannot read: {err}"
        ) from err
    return out
