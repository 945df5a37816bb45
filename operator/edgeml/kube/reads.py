"""Reading objects the operator does not watch itself (the ones a reference points at)."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import custom_objects


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
