"""Reading kubeconfigs and the service account into a Connection (edgeml.kube.kubeconfig)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edgeml.kube.kubeconfig import (
    Connection,
    ExecPlugin,
    KubeconfigError,
    connection,
    context_namespace,
    in_cluster,
    kubeconfig_paths,
    load_kubeconfig,
    run_exec_plugin,
    token_service_account,
)


def _config(
    *,
    context: str = "c",
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    namespace: str | None = None,
    current: str | None = "",
) -> dict[str, Any]:
    """One context, its cluster and user; current-context is that context unless given."""
    ctx: dict[str, Any] = {"cluster": f"{context}-cluster", "user": f"{context}-user"}
    if namespace:
        ctx["namespace"] = namespace
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": f"{context}-cluster", "cluster": cluster or {"server": "https://a:1"}}
        ],
        "users": [{"name": f"{context}-user", "user": user or {"token": "t"}}],
        "contexts": [{"name": context, "context": ctx}],
    }
    if current is not None:
        doc["current-context"] = current or context
    return doc


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_current_context_gives_server_credentials_and_namespace(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(namespace="team"))
    merged = load_kubeconfig([path])
    assert connection(merged, None) == Connection(server="https://a:1", token="t")
    assert connection(merged, None).namespace == "team"
    assert context_namespace(merged, None) == "team"


def test_relative_paths_are_the_defining_files_and_data_is_decoded(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
    wrapped = base64.encodebytes(pem).decode()  # with line breaks, as Go accepts too
    doc = _config(
        cluster={"server": "https://a:1/", "certificate-authority": "pki/ca.crt",
                 "tls-server-name": "api.internal"},
        user={"client-certificate-data": wrapped,
              "client-key": "pki/admin.key", "tokenFile": "~/token"},
    )  # fmt: skip
    merged = load_kubeconfig([_write(tmp_path / "dir" / "config", doc)])
    conn = connection(merged, None)
    assert conn.server == "https://a:1"
    assert conn.ca_file == str(tmp_path / "dir" / "pki" / "ca.crt")
    assert conn.key_file == str(tmp_path / "dir" / "pki" / "admin.key")
    assert conn.cert_data == pem
    assert conn.token_file == str(Path("~/token").expanduser())
    assert conn.tls_server_name == "api.internal"


@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4))
def test_the_first_file_to_name_an_entry_wins(owners: list[str]) -> None:
    """As kubectl merges KUBECONFIG: each file defines context `x` with its own server;
    the server chosen is the first file's, and so is the current context."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            _write(Path(tmp) / f"{i}-{who}", _config(context="x",
                   cluster={"server": f"https://{who}:{i}"}, current="x" if i == 0 else "zz"))
            for i, who in enumerate(owners)
        ]  # fmt: skip
        merged = load_kubeconfig([Path(tmp) / "absent", *paths])
    assert merged["current-context"] == "x"
    assert connection(merged, None).server == f"https://{owners[0]}:0"


def test_a_named_context_is_chosen_over_the_current_one(tmp_path: Path) -> None:
    one = _write(tmp_path / "one", _config(context="one", namespace="n1"))
    two = _write(tmp_path / "two", _config(context="two", namespace="n2", current=None,
                                           cluster={"server": "https://b:2"}))  # fmt: skip
    merged = load_kubeconfig([one, two])
    assert connection(merged, "two").server == "https://b:2"
    assert context_namespace(merged, "two") == "n2"
    assert context_namespace(merged, None) == "n1"


@pytest.mark.parametrize(
    ("doc", "context", "said"),
    [
        (_config(), "nowhere", "context 'nowhere' is not in /.*/config$"),
        (_config(current=None), None, "has no current-context"),
        (_config(cluster={"insecure-skip-tls-verify": True}), None, "no cluster with a server"),
        (_config(user={"auth-provider": {"name": "gcp"}}), None, "auth-provider plugin"),
        (_config(cluster={"server": "https://a:1", "proxy-url": "socks5://p:1"}), None,
         "proxy-url is not supported"),
        (_config(user={"username": "u", "password": "p"}), None, "uses basic auth"),
        (_config(user={"token": "t", "as": "admin"}), None, "impersonates: not supported"),
        (_config(user={"client-key-data": "not base64!"}), None, "client-key-data is not base64"),
        (_config(user={"exec": {"args": ["x"]}}), None, "names no command"),
    ],
    ids=["unknown context", "no current context", "no server", "auth-provider", "proxy",
         "basic auth", "impersonation", "bad base64", "exec without command"],
)  # fmt: skip
def test_what_cannot_work_is_a_clear_error(
    tmp_path: Path, doc: dict[str, Any], context: str | None, said: str
) -> None:
    merged = load_kubeconfig([_write(tmp_path / "config", doc)])
    with pytest.raises(KubeconfigError, match=said):
        connection(merged, context)


@pytest.mark.parametrize(
    ("text", "said"),
    [("- a list\n", "not a kubeconfig"), ("a: [\n", "cannot be read"),
     ("contexts: [{context: {}}]\n", "an entry of contexts has no name")],
)  # fmt: skip
def test_a_malformed_file_is_a_clear_error(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(KubeconfigError, match=said):
        load_kubeconfig([path])


def test_no_file_at_all_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=f"no kubeconfig at {tmp_path}/a:{tmp_path}/b"):
        load_kubeconfig(kubeconfig_paths(f"{tmp_path}/a:{tmp_path}/b"))


def test_kubeconfig_paths_explicit_then_env_then_home() -> None:
    assert kubeconfig_paths("/x", {"KUBECONFIG": "/y"}) == [Path("/x")]
    assert kubeconfig_paths(None, {"KUBECONFIG": "/y::/z"}) == [Path("/y"), Path("/z")]
    assert kubeconfig_paths(None, {}) == [Path("~/.kube/config").expanduser()]


def test_an_exec_plugin_is_read_with_its_file_directory(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "./plug",
                     "args": ["get", "token"], "env": [{"name": "A", "value": "1"}]}}  # fmt: skip
    merged = load_kubeconfig([_write(tmp_path / "config", _config(user=user))])
    assert connection(merged, None).exec_plugin == ExecPlugin(
        command="./plug",
        args=("get", "token"),
        env=(("A", "1"),),
        api_version="client.authentication.k8s.io/v1beta1",
        base_dir=str(tmp_path),
    )


def test_in_cluster_reads_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok")
    (tmp_path / "namespace").write_text("edgeml-system\n")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    conn = in_cluster(tmp_path, env)
    assert conn == Connection(
        server="https://[fd00::1]:443", ca_file=str(tmp_path / "ca.crt"),
        token_file=str(tmp_path / "token"),
    )  # fmt: skip
    assert conn.namespace == "edgeml-system"
    with pytest.raises(KubeconfigError, match="not running in a pod"):
        in_cluster(tmp_path, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    with pytest.raises(KubeconfigError, match="not running in a pod"):
        in_cluster(tmp_path / "absent", env)


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    ("token", "account"),
    [
        (_jwt({"kubernetes.io": {"namespace": "ops", "serviceaccount": {"name": "op", "uid": "u1"},
                                 "pod": {"name": "p", "uid": "u2"}}}), ("ops", "op", "u1")),
        (_jwt({"kubernetes.io/serviceaccount/namespace": "ops",
               "kubernetes.io/serviceaccount/service-account.name": "old",
               "kubernetes.io/serviceaccount/service-account.uid": "u3"}), ("ops", "old", "u3")),
        (_jwt({"sub": "system:serviceaccount:ops:op"}), None),
        ("not-a-jwt", None),
        ("a.!!!.c", None),
        (f"a.{base64.urlsafe_b64encode(b'[1]').decode()}.c", None),
    ],
    ids=["projected", "legacy secret", "no claims", "not a jwt", "bad base64", "not an object"],
)  # fmt: skip
def test_the_service_account_a_token_names(
    token: str, account: tuple[str, str, str] | None
) -> None:
    assert token_service_account(token) == account


PLUGIN = {"exec": {"command": "./plug"}}


@pytest.mark.parametrize(
    ("credential", "wins"),
    [
        ({"token": "t"}, True),
        ({"tokenFile": "t.txt"}, True),
        ({"client-certificate": "c.crt", "client-key": "c.key"}, True),
        ({"client-certificate-data": "Yw==", "client-key-data": "aw=="}, True),
        ({"client-certificate-data": "Yw=="}, False),  # half a pair is no credential
        ({}, False),
    ],
)
def test_a_credential_stated_outright_wins_over_the_exec_plugin(
    tmp_path: Path, credential: dict[str, str], wins: bool
) -> None:
    """As client-go: `kubectl --token` (or a certificate) is used, the plugin not run."""
    merged = load_kubeconfig([_write(tmp_path / "config", _config(user={**PLUGIN, **credential}))])
    assert (connection(merged, None).exec_plugin is None) is wins


def test_the_plugin_is_told_of_the_cluster_only_when_it_asks(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA PEM")
    cluster = {
        "server": "https://a:1/",
        "certificate-authority": "ca.crt",
        "tls-server-name": "api.internal",
        "extensions": [
            {"name": "other", "extension": {"x": 1}},
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "edge"}},
        ],
    }
    asks = {"exec": {"command": "./plug", "provideClusterInfo": True}}
    merged = load_kubeconfig([_write(tmp_path / "a", _config(cluster=cluster, user=asks))])
    plugin = connection(merged, None).exec_plugin
    assert plugin is not None
    assert plugin.cluster_info is not None
    assert json.loads(plugin.cluster_info) == {
        "server": "https://a:1",
        "tls-server-name": "api.internal",
        "certificate-authority-data": base64.b64encode(b"CA PEM").decode(),
        "config": {"audience": "edge"},
    }
    silent = load_kubeconfig([_write(tmp_path / "b", _config(cluster=cluster, user=PLUGIN))])
    quiet = connection(silent, None).exec_plugin
    assert quiet is not None
    assert quiet.cluster_info is None


def test_the_exec_info_carries_the_cluster_when_asked(tmp_path: Path) -> None:
    script = tmp_path / "plug"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s" "$KUBERNETES_EXEC_INFO" > {tmp_path}/info\n'
        'echo \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"tok"}}\'\n'
    )
    script.chmod(0o755)
    cluster = json.dumps({"server": "https://a:1", "insecure-skip-tls-verify": True})
    for info, spec in (
        (None, {"interactive": False}),
        (cluster, {"interactive": False, "cluster": json.loads(cluster)}),
    ):
        plugin = ExecPlugin(command=str(script), base_dir=str(tmp_path), cluster_info=info)
        assert run_exec_plugin(plugin).token == "tok"
        sent = json.loads((tmp_path / "info").read_text())
        assert sent == {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "spec": spec,
        }


def test_a_plugin_that_must_be_interactive_is_refused(tmp_path: Path) -> None:
    user = {"exec": {"command": "./login", "interactiveMode": "Always"}}
    merged = load_kubeconfig([_write(tmp_path / "config", _config(user=user))])
    with pytest.raises(KubeconfigError, match=r"login needs a terminal \(interactiveMode Always\)"):
        connection(merged, None)
