"""Creating and deleting the inference pods (both idempotent)."""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from edgeml.kube.apply import FIELD_MANAGER, refused
from edgeml.kube.client import api_client


def create_pod(manifest: dict[str, Any]) -> bool:
    """Create the pod; False if one of that name exists already (a restart's retry)."""
    meta = manifest["metadata"]
    try:
        client.CoreV1Api(api_client()).create_namespaced_pod(
            meta["namespace"], cast(Any, manifest), field_manager=FIELD_MANAGER
        )
    except ApiException as err:
        if err.status == 409:
            return False
        raise refused("Pod", meta, err) from err
    return True


def delete_pod(namespace: str, name: str) -> bool:
    """Delete the pod with its grace period; False if it is gone already."""
    try:
        client.CoreV1Api(api_client()).delete_namespaced_pod(name, namespace)
    except ApiException as err:
        if err.status == 404:
            return False
        raise refused("Pod", {"namespace": namespace, "name": name}, err) from err
    return True
