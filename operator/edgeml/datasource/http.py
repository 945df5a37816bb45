"""The only place that fetches or probes an http(s) dataset (urllib)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from edgeml.datasource.errors import DataSourceError

TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Response:
    """A dataset's bytes (empty for a HEAD) and the headers that version it."""

    body: bytes
    etag: str | None
    last_modified: str | None


def fetch(
    uri: str,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "GET",
    timeout: float = TIMEOUT_SECONDS,
) -> Response:
    """GET (or HEAD) an http(s) dataset.

    404/410 is DatasetNotFound, 401/403 DatasetAccessDenied, a server error, 408, 429, a
    timeout or an unreachable host DatasetUnavailable (transient).
    """
    request = urllib.request.Request(uri, headers=dict(headers or {}), method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: bytes = response.read() if method == "GET" else b""
            return Response(
                body, response.headers.get("ETag"), response.headers.get("Last-Modified")
            )
    except urllib.error.HTTPError as exc:
        code = exc.code
        if code in (404, 410):
            raise DataSourceError("DatasetNotFound", f"{uri} does not exist (HTTP {code})") from exc
        if code in (401, 403):
            raise DataSourceError(
                "DatasetAccessDenied",
                f"{uri} refused access (HTTP {code}); check the dataset's credentials",
            ) from exc
        if code >= 500 or code in (408, 429):
            raise DataSourceError(
                "DatasetUnavailable", f"{uri} answered HTTP {code}", transient=True
            ) from exc
        raise DataSourceError("DatasetUnreadable", f"{uri} answered HTTP {code}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DataSourceError(
            "DatasetUnavailable", f"{uri} cannot be reached: {why}", transient=True
        ) from exc
