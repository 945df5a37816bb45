"""Reading inference pods' /metrics: directly by pod IP, or through the API server's proxy."""

from __future__ import annotations

import logging
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from edgeml.kube.client import api_client, path_of

Source = Literal["PodIP", "APIServerProxy"]
MAX_PARALLEL = 16
log = logging.getLogger(__name__)


def _by_ip(
    pod: Mapping[str, Any], port: int, path: str, query: Mapping[str, str], timeout: float
) -> str:
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise LookupError("the pod has no IP yet")
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    with urllib.request.urlopen(f"http://{ip}:{port}{path}{suffix}", timeout=timeout) as response:
        return str(response.read().decode())


def _by_proxy(
    pod: Mapping[str, Any], port: int, path: str, query: Mapping[str, str], timeout: float
) -> str:
    meta = pod["metadata"]
    path = path_of("api", "v1", "namespaces", meta["namespace"], "pods", f"{meta['name']}:{port}",
                   "proxy") + path  # fmt: skip
    response = api_client().call("GET", path, query=query, timeout=timeout)
    if response.status >= 400:
        raise LookupError(f"the API server's proxy answered HTTP {response.status}")
    return str(response.data.decode())


def scrape(
    pods: Sequence[Mapping[str, Any]],
    port: int,
    source: Source,
    timeout: float,
    path: str = "/metrics",
    query: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """Each pod's page at `path` (its /metrics by default) by pod name; None where it
    could not be read."""
    read = _by_ip if source == "PodIP" else _by_proxy

    def one(pod: Mapping[str, Any]) -> tuple[str, str | None]:
        name = str(pod["metadata"]["name"])
        try:
            return name, read(pod, port, path, query or {}, timeout)
        except Exception as err:  # an unreachable pod is data, not a failure of the reconcile
            log.debug("could not read %s of %s: %s", path, name, err)
            return name, None

    if not pods:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(pods))) as pool:
        return dict(pool.map(one, pods))
