"""Annotating our objects on a person's behalf (approvals from `edgeml promote`)."""

from __future__ import annotations

from edgeml.api.common import GROUP, VERSION
from edgeml.kube.client import api_client, path_of

MERGE_PATCH = "application/merge-patch+json"


def annotate(plural: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
    """Merge `annotations` into an edgeml.io object's metadata."""
    api_client().request(
        "PATCH",
        path_of("apis", GROUP, VERSION, "namespaces", namespace, plural, name),
        body={"metadata": {"annotations": annotations}},
        content_type=MERGE_PATCH,
    )
