"""Server-side apply of child objects with one field manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import ApiError, api_client, path_of

FIELD_MANAGER = "edgeml-operator"
APPLY_PATCH = "application/apply-patch+yaml"


class ApplyRefusedError(RuntimeError):
    """The API server refused a child object the plan asked for (a quota, an admission
    policy, a full service range); the message names the object and says why."""


def refused(kind: str, meta: Mapping[str, Any], err: ApiError) -> ApplyRefusedError:
    """The refusal of `err` about the child `kind` named by `meta`."""
    return ApplyRefusedError(f"{kind} {meta['namespace']}/{meta['name']}: {_refusal(err)}")


def apply_object(manifest: dict[str, Any]) -> None:
    """Create or update `manifest` by server-side apply (idempotent; we own what we set).
    A refusal raises ApplyRefusedError."""
    meta = manifest["metadata"]
    try:
        _apply(manifest)
    except ApiError as err:
        raise refused(manifest["kind"], meta, err) from err


_APPLIED_KINDS = {"Job": ("apis", "batch", "v1", "jobs"), "Service": ("api", "v1", "services")}


def _apply(manifest: dict[str, Any]) -> None:
    meta = manifest["metadata"]
    kind = manifest["kind"]
    if kind not in _APPLIED_KINDS:
        raise ValueError(f"apply_object does not handle {kind}")
    *group_version, plural = _APPLIED_KINDS[kind]
    api_client().request(
        "PATCH",
        path_of(*group_version, "namespaces", meta["namespace"], plural, meta["name"]),
        query={"fieldManager": FIELD_MANAGER, "force": "true"},
        body=manifest,
        content_type=APPLY_PATCH,
    )


class CreateRefusedError(RuntimeError):
    """The API server refused to create an object (forbidden, invalid); the message says why."""


def create_custom(plural: str, manifest: dict[str, Any]) -> bool:
    """Create one of our objects once: True if created now, False if it already existed
    (its name is its de-duplication key). Other refusals raise CreateRefusedError."""
    meta = manifest["metadata"]
    try:
        api_client().request(
            "POST",
            path_of("apis", GROUP, VERSION, "namespaces", meta["namespace"], plural),
            query={"fieldManager": FIELD_MANAGER},
            body=manifest,
        )
    except ApiError as err:
        if err.status == 409:
            return False
        if err.status in (400, 403, 404, 422):
            raise CreateRefusedError(_refusal(err)) from err
        raise
    return True


def _refusal(err: ApiError) -> str:
    return f"HTTP {err.status}: {err.message or err.reason}"[:500]
