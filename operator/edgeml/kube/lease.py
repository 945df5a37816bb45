"""The Lease that elects the active operator replica (coordination.k8s.io/v1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from edgeml.kube.client import api_client


@dataclass(frozen=True)
class LeaseRecord:
    """A Lease as read: who holds it, and the version a write must name."""

    holder: str
    resource_version: str
    duration_seconds: int | None
    transitions: int
    acquired: datetime | None = None


def _api() -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api_client())


def _micro_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_lease(namespace: str, name: str) -> LeaseRecord | None:
    """The Lease, or None when it does not exist."""
    try:
        lease = _api().read_namespaced_lease(name, namespace)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    spec = lease.spec or client.V1LeaseSpec()
    return LeaseRecord(
        spec.holder_identity or "",
        str(lease.metadata.resource_version if lease.metadata else ""),
        spec.lease_duration_seconds,
        spec.lease_transitions or 0,
        spec.acquire_time,
    )


def write_lease(
    namespace: str,
    name: str,
    holder: str,
    duration_seconds: int,
    *,
    read: LeaseRecord | None,
    acquired: bool,
) -> bool:
    """Create the Lease (when `read` is None) or replace the version read; False when
    another replica wrote first (409: compare-and-swap lost)."""
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
    metadata: dict[str, str] = {"name": name, "namespace": namespace}
    if read is not None:
        metadata["resourceVersion"] = read.resource_version
    # A plain dict: the client serializes it as it is (camelCase keys, MicroTime strings).
    body: Any = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                 "spec": spec}  # fmt: skip
    try:
        if read is None:
            _api().create_namespaced_lease(namespace, body)
        else:
            _api().replace_namespaced_lease(name, namespace, body)
    except ApiException as err:
        if err.status == 409:
            return False
        raise
    return True
