"""Writing an object's status, only if nobody changed the object since we read it."""

from __future__ import annotations

from typing import Any

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import ApiError, api_client, path_of

MERGE_PATCH = "application/merge-patch+json"


def patch_status(
    plural: str, namespace: str, name: str, resource_version: str, changes: dict[str, Any]
) -> bool:
    """Merge `changes` into the status; False if the object changed meanwhile (or is gone).

    The resourceVersion precondition makes a transition happen once: of two reconciles
    racing on one object, only the first writes, so only the first posts its events.
    """
    body = {"metadata": {"resourceVersion": resource_version}, "status": changes}
    path = path_of("apis", GROUP, VERSION, "namespaces", namespace, plural, name, "status")
    try:
        api_client().request("PATCH", path, body=body, content_type=MERGE_PATCH)
    except ApiError as err:
        if err.status in (404, 409):
            return False
        raise
    return True
