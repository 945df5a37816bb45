"""Names, labels and owner references shared by every child object."""

from __future__ import annotations

import hashlib
from typing import Any

from edgeml import __version__
from edgeml.config import OperatorConfig
from edgeml.registry.credentials import KEYS as REGISTRY_CREDENTIAL_KEYS

MANAGED_BY = "edgeml-operator"
NON_ROOT_UID = 65532
"""The uid (and gid) of the project's images' user."""


def pod_security_context() -> dict[str, Any]:
    """The pod-level securityContext of every pod the operator creates: the restricted
    Pod Security Standard (non-root uid/gid 65532, seccomp RuntimeDefault)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": NON_ROOT_UID,
        "runAsGroup": NON_ROOT_UID,
        "fsGroup": NON_ROOT_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """The container-level securityContext of every container the operator creates:
    restricted, and a read-only root filesystem (writable paths are emptyDirs)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


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


def pull_secrets(config: OperatorConfig) -> list[dict[str, str]]:
    """The pod's imagePullSecrets: the operator's configured ones, by name (each must
    exist in the pod's namespace: a Secret is never read across namespaces)."""
    return [{"name": name} for name in config.image_pull_secrets]


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


def registry_credentials_env(secret: str | None) -> list[dict[str, Any]]:
    """The MLflow credential variables from an EdgeModel's registry Secret, each key by name
    and optional: unlike envFrom, the Secret cannot set any other variable of the pod."""
    if not secret:
        return []
    return [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}
        for key in REGISTRY_CREDENTIAL_KEYS
    ]
