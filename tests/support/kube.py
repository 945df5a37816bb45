"""Small readers over the kubernetes client used by many tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from localcluster.fleet import EDGE_TAINT
from support.objects import TEST_IMAGE
from support.wait import wait_for

EDGE_TOLERATION = {"key": EDGE_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}


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


def web_pod(core: client.CoreV1Api, namespace: str, node: str) -> str:
    """A pod on `node` serving "hello from web" on :8080; its IP once Ready."""
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "nodeName": node,
                "tolerations": [EDGE_TOLERATION],
                "containers": [
                    {
                        "name": "web",
                        "image": TEST_IMAGE,
                        "command": ["python", "-m", "http.server", "8080"],
                        "workingDir": "/srv",
                        "volumeMounts": [{"name": "site", "mountPath": "/srv"}],
                        "readinessProbe": {
                            "httpGet": {"path": "/index.html", "port": 8080},
                            "periodSeconds": 1,
                        },
                    }
                ],
                "initContainers": [
                    {
                        "name": "site",
                        "image": TEST_IMAGE,
                        "command": ["sh", "-c", "echo hello from $(POD_NAME) > /srv/index.html"],
                        "env": [
                            {
                                "name": "POD_NAME",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            }
                        ],
                        "volumeMounts": [{"name": "site", "mountPath": "/srv"}],
                    }
                ],
                "volumes": [{"name": "site", "emptyDir": {}}],
            },
        },
    )
    pod = wait_for(
        lambda: core.read_namespaced_pod("web", namespace),
        pod_ready,
        timeout=60,
        what="the web pod to be Ready",
    )
    return str(pod.status.pod_ip or "")


def event_reasons(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    *,
    awaiting: tuple[str, ...] = (),
    timeout: float = 30,
) -> list[str]:
    """The reasons of the Events about object `name`, once each of `awaiting` is among them.

    The operator writes status before it posts the Events the change is news of (so a
    failed status write never posts them twice): a test that has just seen the condition
    waits for its Event rather than reading the list once.
    """

    def reasons() -> list[str]:
        found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        return [e.reason for e in found.items]

    return wait_for(
        reasons,
        lambda seen: all(r in seen for r in awaiting),
        timeout=timeout,
        what=f"Events {', '.join(awaiting)} about {namespace}/{name}",
    )
