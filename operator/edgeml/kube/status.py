"""Writing an object's status, only if nobody changed the object since we read it."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import custom_objects

MERGE_PATCH = "application/merge-patch+json"


def patch_status(
    plural: str, namespace: str, name: str, resource_version: str, changes: dict[str, Any]
) -> bool:
    """Merge `changes` into the status; False if the object changed meanwhile (or is gone).

    The resourceVersion precondition makes a transition happen once: of two reconciles
    racing on one object, only the first writes, so only the first posts its events.
    """
    body = {"metadata": {"resourceVersion": resource_version}, "status": changes}
    try:
        custom_objects().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, body, _content_type=MERGE_PATCH
        )
    except ApiException as err:
        if err.status in (404, 409):
            return False
        raise
    return True
