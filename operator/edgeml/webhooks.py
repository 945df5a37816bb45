"""Delivering notifications to webhooks: the one place the operator POSTs to a receiver."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import urllib3

TIMEOUT = urllib3.Timeout(connect=2.0, read=3.0)
"""Short: a receiver that is down costs one policy's reconcile a few seconds, then backoff."""


class WebhookError(RuntimeError):
    """The receiver could not be reached, or did not accept the message; says which."""


@functools.cache
def _pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(num_pools=8, maxsize=2, timeout=TIMEOUT, retries=False)


def post_json(
    url: str,
    body: Mapping[str, Any],
    token: str | None = None,
    content_type: str = "application/json",
) -> None:
    """POST `body` as JSON; WebhookError unless the receiver answers 2xx."""
    headers = {"Content-Type": content_type, "User-Agent": "edgeml-operator"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    where = _where(url)
    try:
        response = _pool().request("POST", url, body=json.dumps(body).encode(), headers=headers)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise WebhookError(f"POST {where}: {type(reason).__name__}") from err
    if not 200 <= response.status < 300:
        raise WebhookError(f"POST {where}: HTTP {response.status}")


def _where(url: str) -> str:
    """The URL without credentials, path or query: what an error message may show (the
    URL comes from a Secret and may carry a token)."""
    parts = urllib3.util.parse_url(url)
    return f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")
