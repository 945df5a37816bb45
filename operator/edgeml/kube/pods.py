"""Creating and deleting the inference pods (both idempotent)."""

from __future__ import annotations

from typing import Any

from edgeml.kube.apply import FIELD_MANAGER, refused
from edgeml.kube.client import ApiError, api_client, path_of


def create_pod(manifest: dict[str, Any]) -> bool:
    """Create the pod; False if one of that name exists already (a restart's retry)."""
    meta = manifest["metadata"]
    try:
        api_client().request(
            "POST",
            path_of("api", "v1", "namespaces", meta["namespace"], "pods"),
            query={"fieldManager": FIELD_MANAGER},
            body=manifest,
        )
    except ApiError as err:
        if err.status == 409:
            return False
        raise refused("Pod", meta, err) from err
    return True


def delete_pod(namespace: str, name: str) -> bool:
    """Delete the pod with its grace period; False if it is gone already."""
    try:
        api_client().request("DELETE", path_of("api", "v1", "namespaces", namespace, "pods", name))
    except ApiError as err:
        if err.status == 404:
            return False
        raise refused("Pod", {"namespace": namespace, "name": name}, err) from err
    return True
