"""The Lease that elects the active operator replica (coordination.k8s.io/v1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edgeml.kube.client import ApiError, api_client, path_of


@dataclass(frozen=True)
class LeaseRecord:
    """A Lease as read: who holds it, and the version a write must name."""

    holder: str
    resource_version: str
    duration_seconds: int | None
    transitions: int
    acquired: datetime | None = None


TIMEOUT_SECONDS = 4.0
"""Per Lease call: well inside the renew deadline (7 s), so a hung renewal cannot let a
holder act on after a standby may have taken over."""


def _path(namespace: str, *name: str) -> str:
    return path_of("apis", "coordination.k8s.io", "v1", "namespaces", namespace, "leases", *name)


def _micro_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_lease(namespace: str, name: str) -> LeaseRecord | None:
    """The Lease, or None when it does not exist."""
    try:
        lease = api_client().request("GET", _path(namespace, name), timeout=TIMEOUT_SECONDS)
    except ApiError as err:
        if err.status == 404:
            return None
        raise
    spec = lease.get("spec") or {}
    acquired = spec.get("acquireTime")
    return LeaseRecord(
        spec.get("holderIdentity") or "",
        str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        spec.get("leaseDurationSeconds"),
        spec.get("leaseTransitions") or 0,
        datetime.fromisoformat(acquired) if acquired else None,
    )


def write_lease(
    namespace: str,
    name: str,
    holder: str,
    duration_seconds: int,
    *,
    read: LeaseRecord | None,
    acquired: bool,
    owner: tuple[str, str] | None = None,
) -> bool:
    """Create the Lease (when `read` is None) or replace the version read; False when
    another replica wrote first (409: compare-and-swap lost). `owner` (name, uid) is the
    operator's ServiceAccount: the Lease goes with it (helm uninstall, kubectl delete)."""
    now = _micro_time(datetime.now(UTC))
    spec: dict[str, object] = {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration_seconds,
        "renewTime": now,
        "leaseTransitions": (read.transitions if read else 0) + (1 if acquired and read else 0),
    }
    if acquired:
        spec["acquireTime"] = now
    elif read is not None and read.acquired is not None:
        spec["acquireTime"] = _micro_time(read.acquired)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if read is not None:
        metadata["resourceVersion"] = read.resource_version
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "name": owner[0], "uid": owner[1]}
        ]
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                 "spec": spec}  # fmt: skip
    try:
        if read is None:
            api_client().request("POST", _path(namespace), body=body, timeout=TIMEOUT_SECONDS)
        else:
            api_client().request("PUT", _path(namespace, name), body=body, timeout=TIMEOUT_SECONDS)
    except ApiError as err:
        if err.status == 409:
            return False
        raise
    return True
