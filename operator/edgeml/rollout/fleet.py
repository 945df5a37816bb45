"""The targeted nodes and their inference pods, as the machine sees them (pure).

Input is what the API server returned (Node and Pod objects as dicts); output is one
`NodeObservation` per node, plus which pod that is, so the controller can scrape it
and delete the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edgeml.objects.inference import NODE_ANNOTATION, SHA256_ANNOTATION, VERSION_LABEL
from edgeml.rollout.model import NodeObservation, Pod, Version

ZONE_LABEL = "topology.kubernetes.io/zone"
Obj = Mapping[str, Any]


def _condition(obj: Obj, kind: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def selects(node_selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether labels hold every pair of a nodeSelector (equality, as the scheduler reads it)."""
    return all(labels.get(k) == v for k, v in node_selector.items())


def node_online(node: Obj) -> bool:
    """A node is online while its Ready condition is True (the node controller's verdict)."""
    return _condition(node, "Ready") == "True"


def pod_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True and it is not being deleted."""
    return not pod["metadata"].get("deletionTimestamp") and _condition(pod, "Ready") == "True"


def pod_version(pod: Obj) -> Version | None:
    """The version a pod was made for, from its label and annotation."""
    meta = pod["metadata"]
    raw = (meta.get("labels") or {}).get(VERSION_LABEL, "")
    if not raw.isdigit():
        return None
    return Version(int(raw), (meta.get("annotations") or {}).get(SHA256_ANNOTATION, ""))


def pod_node(pod: Obj) -> str:
    """The node a pod is for (its annotation; the scheduler's binding must agree)."""
    meta = pod["metadata"]
    return str((meta.get("annotations") or {}).get(NODE_ANNOTATION) or "")


def _live(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get(
        "phase"
    ) not in ("Failed", "Succeeded")


@dataclass(frozen=True)
class Fleet:
    """The observations, and the pod behind each one."""

    nodes: tuple[NodeObservation, ...]
    pods: dict[str, Obj]
    """Node name → its current pod."""
    extra: tuple[Obj, ...]
    """Pods to delete: duplicates, finished pods, pods of nodes no longer targeted."""


def observe_fleet(
    nodes: Iterable[Obj], pods: Iterable[Obj], unverified: Iterable[str] = ()
) -> Fleet:
    """Pair each targeted node with its newest live pod.

    A ready pod is verified (`edgeml serve` turns ready only after the sha256 check);
    pods named in `unverified` reported a sha256 mismatch on their /metrics.
    """
    refused = set(unverified)
    by_node: dict[str, list[Obj]] = defaultdict(list)
    extra: list[Obj] = []
    for obj in pods:
        if pod_version(obj) is None:
            continue  # not ours to judge
        if _live(obj):
            by_node[pod_node(obj)].append(obj)
        elif not obj["metadata"].get("deletionTimestamp"):
            extra.append(obj)
    observations = []
    current: dict[str, Obj] = {}
    names = set()
    for node in nodes:
        name = node["metadata"]["name"]
        names.add(name)
        mine = sorted(
            by_node.get(name, []),
            key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]),
        )
        pod: Pod | None = None
        if mine:
            chosen = mine[-1]
            extra.extend(mine[:-1])
            current[name] = chosen
            version = pod_version(chosen)
            assert version is not None
            ready = pod_ready(chosen)
            verified: bool | None = True if ready else None
            if chosen["metadata"]["name"] in refused:
                verified = False
            pod = Pod(version, ready=ready and verified is True, verified=verified)
        zone = str((node["metadata"].get("labels") or {}).get(ZONE_LABEL, ""))
        observations.append(NodeObservation(name, zone, node_online(node), pod))
    for node_name, stray in by_node.items():
        if node_name not in names:
            extra.extend(stray)
    return Fleet(tuple(observations), current, tuple(extra))


MAX_VERIFY = 20
"""Unready pods checked for a sha256 refusal per reconcile (the rest wait their turn)."""


def verification_candidates(
    nodes: Iterable[Obj], pods: Iterable[Obj], target: Version
) -> list[Obj]:
    """Running, unready pods of the target on online nodes: did they refuse the artifact?"""
    online = {n["metadata"]["name"] for n in nodes if node_online(n)}
    found = [
        p
        for p in pods
        if pod_version(p) == target
        and pod_node(p) in online
        and _live(p)
        and not pod_ready(p)
        and (p.get("status") or {}).get("phase") == "Running"
    ]
    return sorted(found, key=lambda p: str(p["metadata"]["name"]))[:MAX_VERIFY]


def serving_pods(fleet: Fleet, version: Version | None, limit: int) -> list[Obj]:
    """Up to `limit` pods (by node name) that verifiably serve `version` on online nodes."""
    if version is None:
        return []
    names = [n.name for n in fleet.nodes if n.serves(version)]
    return [fleet.pods[name] for name in sorted(names)[:limit]]
