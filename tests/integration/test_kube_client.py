"""The operator's own API client against the real API server: each way it authenticates
(a service account's rotating token, an exec credential plugin, client certificates given
inline), and what the server's refusals look like."""

from __future__ import annotations

import base64
import json
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes import client

from edgeml.kube.client import ApiClient, ApiError, path_of
from edgeml.kube.kubeconfig import (
    Connection,
    KubeconfigError,
    connection,
    in_cluster,
    load_kubeconfig,
)
from support.cluster import ClusterHandle
from support.kube import web_pod


@pytest.fixture
def admin(cluster: ClusterHandle) -> Connection:
    return connection(load_kubeconfig([Path(cluster.kubeconfig)]), None)


@pytest.fixture
def reader_token(core: client.CoreV1Api, namespace: str) -> str:
    """A token of a service account that may do nothing."""
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    made = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    )
    return str(made.status.token)


def _ca_pem(conn: Connection) -> bytes:
    if conn.ca_data:
        return conn.ca_data
    assert conn.ca_file, "the admin kubeconfig names no CA"
    return Path(conn.ca_file).read_bytes()


def _refused_as_reader(api: ApiClient, namespace: str) -> None:
    """A list the reader has no right to: a 403 naming the reader proves who we were."""
    with pytest.raises(ApiError) as refused:
        api.request("GET", path_of("api", "v1", "namespaces", namespace, "pods"))
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in refused.value.message


def test_in_cluster_uses_the_token_file_and_follows_its_rotation(
    admin: Connection, reader_token: str, namespace: str, tmp_path: Path
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "ca.crt").write_bytes(_ca_pem(admin))
    (account / "namespace").write_text(namespace)
    token = account / "token"
    token.write_text(reader_token)
    server = urlparse(admin.server)
    env = {
        "KUBERNETES_SERVICE_HOST": str(server.hostname),
        "KUBERNETES_SERVICE_PORT": str(server.port),
    }
    conn = in_cluster(account, env)
    assert conn.namespace == namespace
    _refused_as_reader(ApiClient(conn), namespace)

    token.write_text("not-a-token")
    rotated = ApiClient(conn)
    with pytest.raises(ApiError) as unauthorized:
        rotated.request("GET", "/api")
    assert unauthorized.value.status == 401
    # The kubelet writes the new token: the client still holds the bad one (read a moment
    # ago), gets a 401, reads the file again and succeeds without being recreated.
    token.write_text(reader_token)
    _refused_as_reader(rotated, namespace)


def _kubeconfig(path: Path, conn: Connection, user: dict[str, Any]) -> Path:
    cluster = {"server": conn.server,
               "certificate-authority-data": base64.b64encode(_ca_pem(conn)).decode()}  # fmt: skip
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "it",
        "clusters": [{"name": "it", "cluster": cluster}],
        "users": [{"name": "it", "user": user}],
        "contexts": [{"name": "it", "context": {"cluster": "it", "user": "it"}}],
    }))  # fmt: skip
    return path


def _plugin(path: Path, script: str) -> Path:
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


PLUGIN = """#!{python}
import json, os, pathlib
home = pathlib.Path(os.environ["DIR"])
(home / "info").write_text(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {{"token": (home / "token").read_text(),
                             "expirationTimestamp": "2999-01-01T00:00:00Z"}}}}))
"""


def test_an_exec_plugin_is_run_with_its_exec_info(
    admin: Connection, reader_token: str, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(reader_token)
    _plugin(tmp_path / "plugin", PLUGIN.format(python=sys.executable))
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./plugin",
                     "env": [{"name": "DIR", "value": str(tmp_path)}]}}  # fmt: skip
    config = _kubeconfig(tmp_path / "config", admin, user)
    _refused_as_reader(ApiClient(connection(load_kubeconfig([config]), None)), namespace)
    info = json.loads((tmp_path / "info").read_text())
    assert info["spec"] == {"interactive": False}  # no provideClusterInfo: nothing of it


def test_a_failing_exec_plugin_says_why(admin: Connection, tmp_path: Path) -> None:
    _plugin(tmp_path / "plugin", "#!/bin/sh\necho 'log in first' >&2\nexit 3\n")
    config = _kubeconfig(
        tmp_path / "config", admin, {"exec": {"command": str(tmp_path / "plugin")}}
    )
    api = ApiClient(connection(load_kubeconfig([config]), None))
    with pytest.raises(KubeconfigError, match=r"plugin .* exited 3: log in first"):
        api.request("GET", "/api")


def test_client_certificates_given_inline(
    admin: Connection, namespace: str, tmp_path: Path
) -> None:
    if not (admin.cert_file or admin.cert_data):
        pytest.skip("the cluster's admin kubeconfig authenticates without a client certificate")
    cert = admin.cert_data or Path(str(admin.cert_file)).read_bytes()
    key = admin.key_data or Path(str(admin.key_file)).read_bytes()
    user = {"client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode()}  # fmt: skip
    api = ApiClient(
        connection(load_kubeconfig([_kubeconfig(tmp_path / "config", admin, user)]), None)
    )
    found = api.request("GET", path_of("api", "v1", "namespaces", namespace))
    assert found["metadata"]["name"] == namespace
    with pytest.raises(ApiError) as missing:
        api.request("GET", path_of("api", "v1", "namespaces", namespace, "pods", "nope"))
    assert missing.value.status == 404
    assert missing.value.message == 'pods "nope" not found'


def test_scraping_by_pod_ip_and_through_the_api_servers_proxy_read_the_same_page(
    cluster: ClusterHandle, core: client.CoreV1Api, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`source.type: APIServerProxy` (EdgeDeployment analysis, DriftPolicy windows): the
    page the API server relays, query included, is the page the pod serves."""
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    from edgeml.kube import client as edgeml_client
    from edgeml.kube.scrape import scrape

    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    edgeml_client.api_client.cache_clear()
    ip = web_pod(core, namespace, "edge-proc-0")
    pod = {"metadata": {"name": "web", "namespace": namespace}, "status": {"podIP": ip}}
    for source in ("PodIP", "APIServerProxy"):
        page = scrape([pod], 8080, source, 5.0, path="/index.html", query={"seconds": "60"})
        assert page == {"web": "hello from web\n"}, source
        assert scrape([pod], 8080, source, 5.0, path="/absent") == {"web": None}, source
    edgeml_client.api_client.cache_clear()
