"""Server-side apply of child objects with one field manager."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from edgeml.kube.client import api_client

FIELD_MANAGER = "edgeml-operator"
APPLY_PATCH = "application/apply-patch+yaml"


def apply_object(manifest: dict[str, Any]) -> None:
    """Create or update `manifest` by server-side apply (idempotent; we own what we set)."""
    meta = manifest["metadata"]
    kwargs: dict[str, Any] = {
        "field_manager": FIELD_MANAGER,
        "force": True,
        "_content_type": APPLY_PATCH,
    }
    kind = manifest["kind"]
    if kind == "Job":
        client.BatchV1Api(api_client()).patch_namespaced_job(
            meta["name"], meta["namespace"], manifest, **kwargs
        )
    elif kind == "Service":
        client.CoreV1Api(api_client()).patch_namespaced_service(
            meta["name"], meta["namespace"], manifest, **kwargs
        )
    else:
        raise ValueError(f"apply_object does not handle {kind}")
