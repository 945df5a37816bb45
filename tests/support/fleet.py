"""Node and Pod objects shaped as the API server returns them, for fleet tests."""

from __future__ import annotations

from typing import Any

from edgeml.objects.inference import NODE_ANNOTATION, SHA256_ANNOTATION, VERSION_LABEL
from edgeml.rollout import Version


def node(name: str, ready: str = "True", zone: str = "site-a") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def pod(
    name: str,
    on: str,
    version: Version,
    *,
    ready: bool = True,
    phase: str = "Running",
    created: str = "2026-01-01T00:00:00Z",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {VERSION_LABEL: str(version.version)},
        "annotations": {NODE_ANNOTATION: on, SHA256_ANNOTATION: version.sha256},
        "creationTimestamp": created,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}
    return {"metadata": meta, "status": status}
