"""Reading inference pods' /metrics: directly by pod IP, or through the API server's proxy."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from kubernetes import client

from edgeml.kube.client import api_client

Source = Literal["PodIP", "APIServerProxy"]
MAX_PARALLEL = 16
log = logging.getLogger(__name__)


def _by_ip(pod: Mapping[str, Any], port: int, timeout: float) -> str:
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise LookupError("the pod has no IP yet")
    with urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=timeout) as response:
        return str(response.read().decode())


def _by_proxy(pod: Mapping[str, Any], port: int, timeout: float) -> str:
    meta = pod["metadata"]
    api = client.CoreV1Api(api_client())
    response: Any = api.connect_get_namespaced_pod_proxy_with_path(
        f"{meta['name']}:{port}",
        meta["namespace"],
        "metrics",
        _preload_content=False,
        _request_timeout=timeout,
    )
    return str(response.data.decode())


def scrape(
    pods: Sequence[Mapping[str, Any]], port: int, source: Source, timeout: float
) -> dict[str, str | None]:
    """Each pod's /metrics text by pod name; None where it could not be read."""
    read = _by_ip if source == "PodIP" else _by_proxy

    def one(pod: Mapping[str, Any]) -> tuple[str, str | None]:
        name = str(pod["metadata"]["name"])
        try:
            return name, read(pod, port, timeout)
        except Exception as err:  # an unreachable pod is data, not a failure of the reconcile
            log.debug("could not read /metrics of %s: %s", name, err)
            return name, None

    if not pods:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(pods))) as pool:
        return dict(pool.map(one, pods))
