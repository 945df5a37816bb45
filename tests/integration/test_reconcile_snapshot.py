"""One reconcile reads one version of its object, even while the watch replaces it.

kopf hands timers a live body that watch events update in place. A reconcile that
parsed the old status but took the resourceVersion precondition from the newer body
would write a transition that already happened, and post its events twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from kubernetes import client

from edgeml.controllers.handlers import BY_KIND
from edgeml.controllers.reconcile import Controller, reconcile
from edgeml.kube import client as edgeml_client
from support.cluster import ClusterHandle
from support.objects import PLURALS, edge_deployment

GROUP, VERSION = "edgeml.io", "v1alpha1"
PLURAL = PLURALS["EdgeDeployment"]


@pytest.fixture
def in_process(cluster: ClusterHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The operator's own client modules, pointed at the test cluster."""
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    edgeml_client.api_client.cache_clear()
    yield
    edgeml_client.api_client.cache_clear()


def _events(core: client.CoreV1Api, ns: str, name: str) -> list[str]:
    items = core.list_namespaced_event(ns).items
    return [e.reason for e in items if e.involved_object.name == name]


def test_a_body_replaced_mid_reconcile_neither_rewrites_nor_reposts(
    in_process: None,
    crds: list[str],
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    name = "snapshot"
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, edge_deployment(name=name)
    )
    first = dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
    real = BY_KIND["EdgeDeployment"]
    # The first reconcile writes the ModelNotFound transition and posts its events.
    reconcile(real, kopf.Body(first), kopf_logger())
    assert _events(core, namespace, name) == ["ModelNotFound"]
    # Another writer (an older operator, a person) touches the status after that.
    written = dict(
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": {"phase": "Unknown"}}
        )
    )

    # A second reconcile starts from the version without status; while it observes, the
    # watch swaps the newer version into its live body, as kopf does for timers.
    stale: dict[str, Any] = dict(first)
    live = kopf.Body(stale)

    def observe_while_the_watch_moves(parsed: Any) -> Any:
        stale.clear()
        stale.update(written)
        return real.observe(parsed)

    racing = Controller(real.info, observe_while_the_watch_moves, real.decide, real.act)
    reconcile(racing, live, kopf_logger())

    after = dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
    assert after["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
    assert _events(core, namespace, name) == ["ModelNotFound"]


def kopf_logger() -> Any:
    import logging

    return logging.getLogger("test-reconcile-snapshot")
