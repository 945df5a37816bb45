"""The real-kubelet tier for the tests under tests/containers/.

These tests run in their own pytest run (`hack/test` runs them after the rest): the
tier's nodes are edge nodes too, and the other tests' default selectors would include
them. The tier is brought up here (with the project's images imported, built by
`hack/images` if missing) and removed again at the end unless it was already up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from kubernetes import client

from localcluster.fleet import SIMULATOR_LABEL
from localcluster.settings import REPO_ROOT
from support.cluster import ClusterHandle, cluster_cli

REAL_EDGE_NODES = 2
IMAGES = ("operator", "serving", "training")


def _real_nodes(core: client.CoreV1Api) -> list[str]:
    return sorted(
        n.metadata.name for n in core.list_node(label_selector=f"{SIMULATOR_LABEL}=kubelet").items
    )


@pytest.fixture(scope="session")
def real_tier(cluster: ClusterHandle, core: client.CoreV1Api) -> Iterator[list[str]]:
    """The real nodes' names (edge-real-0, edge-real-1, train-real-0)."""
    if not cluster.local:
        # Any cluster in KUBECONFIG (kind with the images loaded) runs them as they are.
        yield []
        return
    images = subprocess.run(
        [str(REPO_ROOT / "hack" / "images"), "build", "all"],
        capture_output=True,
        text=True,
        check=False,
    )
    if images.returncode != 0:
        pytest.exit(f"hack/images build failed:\n{images.stdout}\n{images.stderr}", returncode=3)
    before = _real_nodes(core)
    up = cluster_cli("up", "--real-nodes", str(REAL_EDGE_NODES))
    if up.returncode != 0:
        pytest.exit(
            f"the real-kubelet tier did not come up:\n{up.stdout}\n{up.stderr}\n"
            + cluster.component_logs(),
            returncode=3,
        )
    yield _real_nodes(core)
    if not before:
        cluster_cli("up", "--real-nodes", "0")
