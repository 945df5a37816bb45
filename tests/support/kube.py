"""Small readers over the kubernetes client used by many tests."""

from __future__ import annotations

from typing import Any


def node_ready(node: Any) -> str:
    """The status of a node's Ready condition: "True", "False", "Unknown" or "" if absent."""
    for cond in node.status.conditions or []:
        if cond.type == "Ready":
            return str(cond.status)
    return ""


def pod_ready(pod: Any) -> bool:
    """True when the pod's Ready condition is True."""
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def job_condition(job: Any, cond_type: str) -> bool:
    """True when the Job has condition `cond_type` with status True."""
    return any(c.type == cond_type and c.status == "True" for c in job.status.conditions or [])
