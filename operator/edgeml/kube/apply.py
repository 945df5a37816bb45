"""Server-side apply of child objects with one field manager."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import api_client, custom_objects

FIELD_MANAGER = "edgeml-operator"
APPLY_PATCH = "application/apply-patch+yaml"


class ApplyRefusedError(RuntimeError):
    """The API server refused a child object the plan asked for (a quota, an admission
    policy, a full service range); the message names the object and says why."""


def refused(kind: str, meta: Mapping[str, Any], err: ApiException) -> ApplyRefusedError:
    """The refusal of `err` about the child `kind` named by `meta`."""
    return ApplyRefusedError(f"{kind} {meta['namespace']}/{meta['name']}: {_refusal(err)}")


def apply_object(manifest: dict[str, Any]) -> None:
    """Create or update `manifest` by server-side apply (idempotent; we own what we set).
    A refusal raises ApplyRefusedError."""
    meta = manifest["metadata"]
    try:
        _apply(manifest)
    except ApiException as err:
        raise refused(manifest["kind"], meta, err) from err


def _apply(manifest: dict[str, Any]) -> None:
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


class CreateRefusedError(RuntimeError):
    """The API server refused to create an object (forbidden, invalid); the message says why."""


def create_custom(plural: str, manifest: dict[str, Any]) -> bool:
    """Create one of our objects once: True if created now, False if it already existed
    (its name is its de-duplication key). Other refusals raise CreateRefusedError."""
    meta = manifest["metadata"]
    try:
        custom_objects().create_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], plural, manifest, field_manager=FIELD_MANAGER
        )
    except ApiException as err:
        if err.status == 409:
            return False
        if err.status in (400, 403, 404, 422):
            raise CreateRefusedError(_refusal(err)) from err
        raise
    return True


def _refusal(err: ApiException) -> str:
    try:
        message = str(json.loads(err.body or "{}").get("message") or "")
    except ValueError:
        message = ""
    return f"HTTP {err.status}: {message or err.reason}"[:500]
