"""Reading objects the operator does not watch itself (the ones a reference points at)."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import api_client, custom_objects


def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """An edgeml.io object as a dict, or None if it does not exist."""
    try:
        obj: Any = custom_objects().get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return dict(obj)


def list_custom(plural: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
    """Objects of one of our kinds in a namespace, by label selector."""
    found: Any = custom_objects().list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, label_selector=label_selector
    )
    return [dict(item) for item in found.get("items") or []]


def get_job(namespace: str, name: str) -> dict[str, Any] | None:
    """A batch/v1 Job as a dict (camelCase, as the API returns it), or None."""
    api = client.BatchV1Api(api_client())
    try:
        job = api.read_namespaced_job(name, namespace)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return _as_dict(job)


def list_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    """Pods matching a label selector, as dicts (camelCase)."""
    api = client.CoreV1Api(api_client())
    pods = api.list_namespaced_pod(namespace, label_selector=selector).items
    return [_as_dict(p) for p in pods]


def _as_dict(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = api_client().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return data


def _raw_list(response: Any) -> list[dict[str, Any]]:
    data = json.loads(response.data)
    return list(data.get("items") or [])


def list_nodes_raw(label_selector: str) -> list[dict[str, Any]]:
    """Nodes matching a selector, as the API's JSON (no model objects: a fleet is large)."""
    api = client.CoreV1Api(api_client())
    return _raw_list(api.list_node(label_selector=label_selector, _preload_content=False))


def list_pods_raw(namespace: str, label_selector: str) -> list[dict[str, Any]]:
    """Pods matching a selector in one namespace, as the API's JSON."""
    api = client.CoreV1Api(api_client())
    return _raw_list(
        api.list_namespaced_pod(namespace, label_selector=label_selector, _preload_content=False)
    )


def get_secret(namespace: str, name: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """A Secret's labels and its data decoded as text, or None if it does not exist."""
    import base64

    api = client.CoreV1Api(api_client())
    try:
        response: Any = api.read_namespaced_secret(name, namespace, _preload_content=False)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    body = json.loads(response.data)
    labels = dict((body.get("metadata") or {}).get("labels") or {})
    data = {
        k: base64.b64decode(v).decode(errors="replace") for k, v in (body.get("data") or {}).items()
    }
    return labels, data
