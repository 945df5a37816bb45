"""Session fixtures: the cluster (brought up once, or reused), API clients, a namespace per test.

Set KUBECONFIG to run against any cluster (a kind cluster made by hack/kind-up, say);
otherwise the local cluster is used, brought up on first use and taken down at the
end unless it was already running or EDGEML_KEEP_CLUSTER=1.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from localcluster.settings import Settings
from support.cluster import ClusterHandle, cluster_cli
from support.objectstore import Bucket, new_bucket


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its directory: tests/unit → unit, tests/integration → integration..."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in ("unit", "integration", "e2e", "containers"):
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterHandle]:
    """The cluster under test: KUBECONFIG's, or the local one (up once per run)."""
    foreign = os.environ.get("KUBECONFIG")
    if foreign:
        yield ClusterHandle(foreign, None)
        return
    settings = Settings()
    already_up = cluster_cli("status").returncode == 0
    if not already_up:
        up = cluster_cli("up")
        if up.returncode != 0:
            pytest.exit(
                f"the local cluster did not come up:\n{up.stdout}\n{up.stderr}", returncode=3
            )
    yield ClusterHandle(str(settings.kubeconfig), settings)
    if not already_up and not os.environ.get("EDGEML_KEEP_CLUSTER"):
        cluster_cli("down")


@pytest.fixture(scope="session")
def api_client(cluster: ClusterHandle) -> client.ApiClient:
    """An API client with the cluster's admin credentials."""
    return config.new_client_from_config(config_file=cluster.kubeconfig)


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def batch(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture
def bucket(cluster: ClusterHandle) -> Iterator[Bucket]:
    """A fresh bucket on the local cluster's object store, removed afterwards."""
    if cluster.settings is None:
        pytest.skip("no object store: a foreign cluster (KUBECONFIG) has none of ours")
    made = new_bucket(cluster.settings)
    yield made
    made.remove()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    stem = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"edgeml.io/test": "true"}}})
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def _namespace_events(core: client.CoreV1Api, namespace: str) -> str:
    events = core.list_namespaced_event(namespace).items
    events.sort(key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
    return "\n".join(
        f"{e.type:<8} {e.reason:<24} {e.involved_object.kind}/{e.involved_object.name}: {e.message}"
        for e in events
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """On failure, attach the namespace's events and every component's log tail."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    handle = funcargs.get("cluster")
    ns = funcargs.get("namespace")
    if ns and "core" in funcargs:
        try:
            report.sections.append((f"events in {ns}", _namespace_events(funcargs["core"], ns)))
        except Exception as err:
            report.sections.append((f"events in {ns}", f"could not list events: {err!r}"))
    op = funcargs.get("operator")
    if op is not None:
        report.sections.append(("operator log", op.logs()[-20000:]))
    if isinstance(handle, ClusterHandle):
        report.sections.append(("cluster component logs", handle.component_logs()))


@pytest.fixture(scope="session")
def crds(api_client: client.ApiClient) -> list[str]:
    """The CRDs of crds/ (generated from the models), applied and Established."""
    from edgeml.api.crds import KINDS, build_crd, peering_crds
    from support.wait import wait_for

    ext = client.ApiextensionsV1Api(api_client)
    names = []
    # kopf's peering kinds ship with ours: the chart's ClusterKopfPeering needs them.
    for crd in [build_crd(info) for info in KINDS] + peering_crds():
        name = crd["metadata"]["name"]
        try:
            ext.patch_custom_resource_definition(
                name,
                crd,
                field_manager="edgeml-tests",
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        except client.ApiException as err:
            raise AssertionError(f"the API server refused CRD {name}: {err.body}") from err
        names.append(name)
    for name in names:
        wait_for(
            lambda n=name: ext.read_custom_resource_definition(n).status.conditions or [],
            lambda conds: any(c.type == "Established" and c.status == "True" for c in conds),
            timeout=30,
            what=f"CRD {name} to be Established",
        )
    return names


@pytest.fixture(scope="session")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="session")
def operator_kubeconfig(
    cluster: ClusterHandle,
    api_client: client.ApiClient,
    crds: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """A kubeconfig with the operator's ServiceAccount token (RBAC as the chart grants it)."""
    from support.operator import (
        identity_kubeconfig,
        in_cluster_operator_stood_down,
        install_identity,
    )

    install_identity(api_client)
    with in_cluster_operator_stood_down(api_client):
        yield identity_kubeconfig(
            api_client, cluster.kubeconfig, tmp_path_factory.mktemp("operator") / "kubeconfig"
        )


@pytest.fixture
def operator(
    request: pytest.FixtureRequest,
    operator_kubeconfig: Path,
    namespace: str,
    custom: client.CustomObjectsApi,
    tmp_path: Path,
) -> Iterator[Any]:
    """The operator watching this test's namespace, under its own identity.

    `@pytest.mark.operator_env(NAME="value")` adds environment (operator settings).
    """
    from support.objects import PLURALS
    from support.operator import OperatorProcess, custom_objects_in
    from support.wait import wait_for

    marker = request.node.get_closest_marker("operator_env")
    env = {k: str(v) for k, v in marker.kwargs.items()} if marker else {}
    proc = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "operator.log", env=env)
    proc.start()
    yield proc
    # Delete our objects while the operator runs, so their finalizers are released.
    if proc.proc is None or proc.proc.poll() is not None:
        proc.start()
    for plural in PLURALS.values():
        custom.delete_collection_namespaced_custom_object(
            "edgeml.io", "v1alpha1", namespace, plural
        )
    wait_for(
        lambda: sum(len(custom_objects_in(custom, namespace, p)) for p in PLURALS.values()),
        lambda left: left == 0,
        timeout=60,
        what="edgeml objects to be deleted (their finalizers released)",
    )
    proc.stop()
