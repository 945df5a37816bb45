"""Kubernetes Events for a pod, as kubelet records them (best effort, never blocking a pod)."""

from __future__ import annotations

from typing import Any

from localcluster.agent import log
from localcluster.agent.context import NodeContext
from localcluster.agent.kube import ApiError, now_rfc3339

Obj = dict[str, Any]


def event_object(
    node: str, pod: Obj, kind: str, reason: str, message: str, container: str, now: str
) -> Obj:
    """A core/v1 Event about the pod (or one of its containers) from this node's kubelet."""
    meta = pod.get("metadata") or {}
    involved: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", "default"),
        "uid": meta.get("uid", ""),
    }
    if container:
        involved["fieldPath"] = f"spec.containers{{{container}}}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{meta.get('name', 'pod')}.",
            "namespace": involved["namespace"],
        },
        "involvedObject": involved,
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "kubelet", "host": node},
        "reportingComponent": "kubelet",
        "reportingInstance": node,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def record(
    ctx: NodeContext, pod: Obj, kind: str, reason: str, message: str, container: str = ""
) -> None:
    """Post an Event; offline or failing, it is dropped (events are not worth retrying)."""
    if not ctx.is_online():
        return
    body = event_object(ctx.name, pod, kind, reason, message, container, now_rfc3339())
    namespace = body["metadata"]["namespace"]
    try:
        ctx.kube.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body, timeout=5)
    except ApiError as e:
        log.warn(ctx.name, f"event {reason} dropped: {e}")
