"""What the tests of the real-kubelet tier share: image names, kubectl, namespaces."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from kubernetes import client

from edgeml import __version__
from localcluster import build
from localcluster.fleet import EDGE_TAINT, RUNTIME_TAINT
from support.cluster import ClusterHandle

REGISTRY = os.environ.get("EDGEML_TEST_REGISTRY", "ghcr.io/edgeml")


def image_ref(name: str) -> str:
    """The reference of one of the project's images (operator, serving, training), as
    `hack/images build` tags them and the chart names them by default."""
    return f"{REGISTRY}/edgeml-{name}:{__version__}"


def kubectl(cluster: ClusterHandle, *args: str) -> subprocess.CompletedProcess[str]:
    """Run kubectl against the cluster (`.args` of the result is the command line)."""
    binary = (
        str(build.binary(cluster.settings, "kubectl"))
        if cluster.settings is not None
        else "kubectl"
    )
    argv = [binary, f"--kubeconfig={cluster.kubeconfig}", *args]
    if not args:
        return subprocess.CompletedProcess(argv, 0, "", "")
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


def restricted_namespace(core: client.CoreV1Api, namespace: str) -> None:
    """Enforce the restricted Pod Security Standard in the namespace, as a platform team
    does for tenants."""
    core.patch_namespace(
        namespace,
        {
            "metadata": {
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                }
            }
        },
    )


def tolerate_real_nodes() -> list[dict[str, Any]]:
    """Tolerations that let a pod onto the tier's nodes (edge and runtime taints)."""
    return [
        {"key": taint["key"], "operator": "Equal", "value": taint["value"], "effect": "NoSchedule"}
        for taint in (EDGE_TAINT, RUNTIME_TAINT)
    ]
