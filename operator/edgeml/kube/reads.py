"""Reading objects the operator does not watch itself (the ones a reference points at)."""

from __future__ import annotations

import base64
from typing import Any

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import ApiError, api_client, path_of


def _get(path: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = api_client().request("GET", path)
    except ApiError as err:
        if err.status == 404:
            return None
        raise
    return found


def _list(path: str, label_selector: str) -> list[dict[str, Any]]:
    query = {"labelSelector": label_selector} if label_selector else None
    found = api_client().request("GET", path, query=query)
    return list(found.get("items") or [])


def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """An edgeml.io object as a dict, or None if it does not exist."""
    return _get(path_of("apis", GROUP, VERSION, "namespaces", namespace, plural, name))


def list_custom(plural: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
    """Objects of one of our kinds in a namespace, by label selector."""
    return _list(path_of("apis", GROUP, VERSION, "namespaces", namespace, plural), label_selector)


def get_job(namespace: str, name: str) -> dict[str, Any] | None:
    """A batch/v1 Job as a dict (camelCase, as the API returns it), or None."""
    return _get(path_of("apis", "batch", "v1", "namespaces", namespace, "jobs", name))


def list_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    """Pods matching a label selector, as dicts (camelCase)."""
    return _list(path_of("api", "v1", "namespaces", namespace, "pods"), selector)


def list_nodes(label_selector: str) -> list[dict[str, Any]]:
    """Nodes matching a selector, as the API's JSON."""
    return _list(path_of("api", "v1", "nodes"), label_selector)


def get_secret(namespace: str, name: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """A Secret's labels and its data decoded as text, or None if it does not exist."""
    body = _get(path_of("api", "v1", "namespaces", namespace, "secrets", name))
    if body is None:
        return None
    labels = dict((body.get("metadata") or {}).get("labels") or {})
    data = {
        k: base64.b64decode(v).decode(errors="replace") for k, v in (body.get("data") or {}).items()
    }
    return labels, data
