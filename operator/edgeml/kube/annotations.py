"""Annotating our objects on a person's behalf (approvals from `edgeml promote`)."""

from __future__ import annotations

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import custom_objects

MERGE_PATCH = "application/merge-patch+json"


def annotate(plural: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
    """Merge `annotations` into an edgeml.io object's metadata."""
    custom_objects().patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        plural,
        name,
        {"metadata": {"annotations": annotations}},
        _content_type=MERGE_PATCH,
    )
