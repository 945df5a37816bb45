"""Nodes and inference pods as the operator's watch sees them, read from memory.

The operator watches every node and every inference pod anyway (to wake the rollouts
they concern); kopf indexes keep the latest of each, so a reconcile reads them from
memory instead of listing them from the API server again: with 1,000 EdgeDeployments
over a fleet, listing the fleet on every reconcile was most of the API server's load.
kopf starts no other handler before every index is filled, so a first reconcile after
a restart sees the whole fleet.

What a watch shows can be a moment behind a write of ours: a pod just created may not
be in the index yet. That is safe because every action is idempotent (pods have
deterministic names, so a second create is a 409 and a second delete a 404), and the
watch event that brings the pod wakes the rollout again.

An index keeps only what the plans read of each object (`slim_node`, `slim_pod`): a
node's name, labels and condition verdicts; a pod's identity, labels, annotations, node
binding, phase, address and condition and container states. A full body carries
managedFields, the pod's whole spec, image lists and condition messages, several
kilobytes each that no decision reads; across thousands of objects held for good that
was most of the operator's memory at rest.

The indexes belong to kopf's event loop and change there; reconciles run in worker
threads, so every read is a copy made on the loop. Outside a running operator (a test
calling a controller directly) the same reads list from the API server.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import kopf

from edgeml.kube.reads import list_nodes, list_pods
from edgeml.objects.inference import DEPLOYMENT_LABEL, selector
from edgeml.rollout.fleet import selects

T = TypeVar("T")
READ_TIMEOUT_SECONDS = 30.0

_loop: asyncio.AbstractEventLoop | None = None
_nodes: kopf.Index[str, dict[str, Any]] | None = None
_pods: kopf.Index[tuple[str, str], dict[str, Any]] | None = None


_POD_METADATA = (
    "name", "namespace", "uid", "labels", "annotations", "creationTimestamp",
    "deletionTimestamp",
)  # fmt: skip
_POD_STATUS = ("phase", "podIP", "conditions", "containerStatuses")


def _pick(source: Mapping[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    """Deep copies of the keys of `source` that are present (the watch reuses its dicts)."""
    found = source or {}
    return {k: copy.deepcopy(found[k]) for k in keys if k in found}


def slim_node(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the plans read of a node: its name, labels, and its conditions' verdicts."""
    conditions = [
        _pick(c, ("type", "status", "reason"))
        for c in (body.get("status") or {}).get("conditions") or []
    ]
    return {
        "metadata": _pick(body.get("metadata"), ("name", "labels")),
        "status": {"conditions": conditions},
    }


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the plans and scrapes read of an inference pod: identity, labels, annotations,
    the node it is bound to, its phase, address, conditions and container states."""
    spec = body.get("spec") or {}
    return {
        "metadata": _pick(body.get("metadata"), _POD_METADATA),
        "spec": {"nodeName": spec["nodeName"]} if "nodeName" in spec else {},
        "status": _pick(body.get("status"), _POD_STATUS),
    }


@kopf.index("", "v1", "nodes")
def watched_nodes(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Every node, by name."""
    return {name: slim_node(body)}


@kopf.index("", "v1", "pods", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def watched_pods(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every inference pod, by (namespace, EdgeDeployment): the set `selector()` lists."""
    return {(namespace or "", labels[DEPLOYMENT_LABEL]): slim_pod(body)}


def attach(
    nodes: kopf.Index[str, dict[str, Any]], pods: kopf.Index[tuple[str, str], dict[str, Any]]
) -> None:
    """Read from these indexes from now on: kopf hands them to handlers as keyword
    arguments named after the index functions, and the loops pass them here, on the loop."""
    global _loop, _nodes, _pods
    _loop, _nodes, _pods = asyncio.get_running_loop(), nodes, pods


def _on_loop(read: Callable[[], T]) -> T:
    loop = _loop
    assert loop is not None
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return read()  # already on the loop: waiting for it would never return

    async def call() -> T:
        return read()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(READ_TIMEOUT_SECONDS)


def _matches(node: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    return selects(wanted, (node.get("metadata") or {}).get("labels") or {})


def nodes(node_selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """The nodes whose labels include every pair of `node_selector`, sorted by name."""
    index = _nodes
    if index is None or _loop is None:
        wanted = ",".join(f"{k}={v}" for k, v in sorted(node_selector.items()))
        return [slim_node(n) for n in list_nodes(wanted)]

    def read() -> list[dict[str, Any]]:
        found = [n for store in index.values() for n in store if _matches(n, node_selector)]
        return sorted(found, key=lambda n: str(n["metadata"]["name"]))

    return _on_loop(read)


def inference_pods(namespace: str, deployment: str) -> list[dict[str, Any]]:
    """The inference pods of one EdgeDeployment, sorted by name."""
    index = _pods
    if index is None or _loop is None:
        return [slim_pod(p) for p in list_pods(namespace, selector(deployment))]

    def read() -> list[dict[str, Any]]:
        store = index.get((namespace, deployment))
        return sorted(store or (), key=lambda p: str(p["metadata"]["name"]))

    return _on_loop(read)
