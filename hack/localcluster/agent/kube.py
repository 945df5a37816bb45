"""The agent's only Kubernetes I/O: plain JSON requests over the kubernetes client's transport.

Objects stay plain dicts in their API (camelCase) shape: the agent never needs the
generated models, and explicit content types avoid the client's patch guessing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class ApiError(Exception):
    """A request the API server refused (or that never reached it: status 0)."""

    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"{status} {reason}: {body[:300]}")
        self.status = status
        self.reason = reason
        self.body = body


def now_rfc3339() -> str:
    """The current time as Kubernetes `Time` (seconds precision)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """The current time as Kubernetes `MicroTime` (Lease renewTime)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Kube:
    """A thread-safe JSON client for the few API calls the agent makes."""

    def __init__(self, kubeconfig: str) -> None:
        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=cfg, persist_config=False
        )
        # One connection per watch plus the pod workers' calls; the default (4) thrashes.
        cfg.connection_pool_maxsize = 64
        self._api = client.ApiClient(cfg)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Obj:
        """Send one request; return the decoded JSON answer or raise ApiError."""
        resp = self._send(method, path, query, body, content_type, timeout)
        resp.read()
        data = resp.data or b""
        if not 200 <= resp.status <= 299:
            raise ApiError(resp.status, str(resp.reason), data.decode(errors="replace"))
        decoded: Obj = json.loads(data) if data else {}
        return decoded

    def watch(
        self, path: str, query: Mapping[str, str | int | bool], timeout_seconds: int
    ) -> Iterator[Obj]:
        """Stream watch events (`{"type", "object"}`) until the server closes the watch."""
        q = {**query, "watch": "true", "timeoutSeconds": timeout_seconds}
        resp = self._send("GET", path, q, None, "application/json", (10, timeout_seconds + 30))
        if not 200 <= resp.status <= 299:
            resp.read()
            raise ApiError(resp.status, str(resp.reason), (resp.data or b"").decode())
        raw = resp.response
        try:
            for line in iter_resp_lines(raw):  # type: ignore[no-untyped-call]
                if line:
                    event: Obj = json.loads(line)
                    yield event
        finally:
            raw.release_conn()

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int | bool] | None,
        body: Obj | None,
        content_type: str,
        timeout: float | tuple[float, float],
    ) -> Any:
        params = [
            (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()
        ]
        try:
            req = self._api.param_serialize(
                method,
                path,
                query_params=params,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            return self._api.call_api(*req, _request_timeout=timeout)
        except client.ApiException as e:
            raise ApiError(int(e.status or 0), str(e.reason), str(e.body or "")) from e
        except Exception as e:  # connection refused, timeouts: the API server is unreachable
            raise ApiError(0, type(e).__name__, str(e)) from e
