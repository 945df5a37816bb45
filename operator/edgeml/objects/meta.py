"""Names, labels and owner references shared by every child object."""

from __future__ import annotations

import hashlib
from typing import Any

from edgeml import __version__

MANAGED_BY = "edgeml-operator"


def child_name(owner: str, suffix: str, limit: int = 63) -> str:
    """A deterministic DNS-1123 name `<owner>-<suffix>`, shortened with a hash if too long."""
    name = f"{owner}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{owner[:keep].rstrip('-')}-{digest}-{suffix}"


def labels(name: str, instance: str, component: str, **extra: str) -> dict[str, str]:
    """The app.kubernetes.io labels of a child object, plus ours."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "edgeml",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": __version__,
        **extra,
    }


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """A controller owner reference to `owner`, so the child goes when the owner does."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
