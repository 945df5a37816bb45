"""Where the API server is and how to authenticate: a kubeconfig or the pod's service account.

Written here rather than taken from the `kubernetes` package: importing that package loads
every generated API and model (26 MB of the operator's memory, more than the operator's
own code and kopf together), and the operator needs a dozen REST calls. What is read is
the part of the kubeconfig format client-go reads for these credentials: clusters
(server, CA file or data, insecure-skip-tls-verify, tls-server-name), users (token,
tokenFile, client certificate and key as file or data, exec plugins of
client.authentication.k8s.io/v1 and v1beta1 with `provideClusterInfo`), contexts
(cluster, user, namespace), `current-context`, and KUBECONFIG lists merged as kubectl
merges them (the first file to name a context, cluster or user wins). As in client-go, a
token, token file or client certificate of the user wins over its exec plugin, which is
then not run. The long-removed `auth-provider` plugins, basic auth, a cluster's
`proxy-url` and a plugin that must be interactive are refused with a message saying so.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"


class KubeconfigError(Exception):
    """No usable kubeconfig: missing, malformed, or naming what it does not define."""


@dataclass(frozen=True)
class ExecPlugin:
    """A credential plugin the kubeconfig names (`users[].user.exec`)."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    base_dir: str = "."
    cluster_info: str | None = None
    """The JSON of the ExecCredential's spec.cluster, when the plugin asked for it
    (`provideClusterInfo: true`); None: the plugin is told nothing of the cluster."""


@dataclass(frozen=True)
class Connection:
    """How to reach one API server. Paths are absolute; data fields hold PEM bytes."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    token: str | None = None
    token_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    exec_plugin: ExecPlugin | None = None
    namespace: str | None = field(default=None, compare=False)


def in_cluster(root: Path = SERVICE_ACCOUNT, env: Mapping[str, str] | None = None) -> Connection:
    """The pod's own service account; KubeconfigError when not running in a pod."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token = root / "token"
    if not host or not port or not token.exists():
        raise KubeconfigError("not running in a pod (no service account and API address)")
    host = f"[{host}]" if ":" in host else host
    namespace = root / "namespace"
    return Connection(
        server=f"https://{host}:{port}",
        ca_file=str(root / "ca.crt"),
        # Re-read as it goes: the kubelet rotates projected tokens.
        token_file=str(token),
        namespace=namespace.read_text().strip() if namespace.exists() else None,
    )


def token_service_account(token: str) -> tuple[str, str, str] | None:
    """(namespace, name, uid) of the service account a token was issued to, read from its JWT claims
    (projected tokens: `kubernetes.io.serviceaccount`; legacy Secret tokens: the
    `kubernetes.io/serviceaccount/service-account.*` claims). Not a verification: the
    API server verifies; this only names the account the pod runs as."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict):
        return None
    bound = claims.get("kubernetes.io") or {}
    account = bound.get("serviceaccount") or {}
    legacy = "kubernetes.io/serviceaccount/"
    namespace = bound.get("namespace") or claims.get(legacy + "namespace")
    name = account.get("name") or claims.get(legacy + "service-account.name")
    uid = account.get("uid") or claims.get(legacy + "service-account.uid")
    return (str(namespace), str(name), str(uid)) if namespace and name and uid else None


def own_service_account(root: Path = SERVICE_ACCOUNT) -> tuple[str, str, str] | None:
    """(namespace, name, uid) of the service account this pod runs as; None outside a pod."""
    try:
        return token_service_account((root / "token").read_text().strip())
    except OSError:
        return None


def kubeconfig_paths(explicit: str | None, env: Mapping[str, str] | None = None) -> list[Path]:
    """The files to merge: `explicit`, else KUBECONFIG's list, else ~/.kube/config."""
    env = os.environ if env is None else env
    listed = explicit or env.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]


def load_kubeconfig(paths: Sequence[Path]) -> dict[str, Any]:
    """The merged kubeconfig of `paths` (each entry remembers its file's directory for
    relative paths); files that do not exist are skipped, as kubectl skips them."""
    merged: dict[str, Any] = {
        "clusters": {}, "users": {}, "contexts": {}, "current-context": None, "_files": [],
    }  # fmt: skip
    for path in paths:
        if not path.is_file():
            continue
        merged["_files"].append(str(path))
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise KubeconfigError(f"{path} cannot be read: {err}") from err
        if not isinstance(doc, dict):
            raise KubeconfigError(f"{path} is not a kubeconfig (not a mapping)")
        _merge(merged, doc, str(path.parent))
        if merged["current-context"] is None and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
    if not merged["_files"]:
        raise KubeconfigError(f"no kubeconfig at {os.pathsep.join(map(str, paths))}")
    return merged


def _merge(merged: dict[str, Any], doc: Mapping[str, Any], base_dir: str) -> None:
    for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        for entry in doc.get(section) or []:
            if not isinstance(entry, dict) or not entry.get("name"):
                raise KubeconfigError(f"an entry of {section} has no name")
            body = dict(entry.get(key) or {})
            merged[section].setdefault(str(entry["name"]), {**body, "_dir": base_dir})


def context_namespace(config: Mapping[str, Any], context: str | None) -> str | None:
    """The namespace the chosen (or current) context names, if any."""
    name = context or config.get("current-context")
    chosen = config["contexts"].get(name) if name else None
    return str(chosen["namespace"]) if chosen and chosen.get("namespace") else None


def connection(config: Mapping[str, Any], context: str | None) -> Connection:
    """The Connection of `context` (default: the current one) in a merged kubeconfig."""
    name = context or config.get("current-context")
    if not name:
        raise KubeconfigError("no context given and the kubeconfig has no current-context")
    chosen = config["contexts"].get(name)
    if chosen is None:
        raise KubeconfigError(f"context {name!r} is not in {', '.join(config['_files'])}")
    cluster = config["clusters"].get(chosen.get("cluster"))
    if cluster is None or not cluster.get("server"):
        raise KubeconfigError(f"context {name!r} names no cluster with a server")
    if cluster.get("proxy-url"):
        raise KubeconfigError(f"context {name!r}: the cluster's proxy-url is not supported")
    user = config["users"].get(chosen.get("user")) or {}
    if user.get("auth-provider"):
        raise KubeconfigError(
            f"user {chosen.get('user')!r} uses an auth-provider plugin, which Kubernetes "
            "removed in 1.26: use its exec credential plugin instead"
        )
    if user.get("as") or user.get("as-groups") or user.get("as-uid") or user.get("as-user-extra"):
        raise KubeconfigError(f"user {chosen.get('user')!r} impersonates: not supported")
    if user.get("username") or user.get("password"):
        raise KubeconfigError(
            f"user {chosen.get('user')!r} uses basic auth, which is not supported"
        )
    conn = Connection(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=_path(cluster, "certificate-authority"),
        ca_data=_data(cluster, "certificate-authority-data"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        token=user.get("token"),
        token_file=_path(user, "tokenFile"),
        cert_file=_path(user, "client-certificate"),
        key_file=_path(user, "client-key"),
        cert_data=_data(user, "client-certificate-data"),
        key_data=_data(user, "client-key-data"),
        namespace=chosen.get("namespace"),
    )
    has_cert = bool(conn.cert_file or conn.cert_data) and bool(conn.key_file or conn.key_data)
    if conn.token or conn.token_file or has_cert:
        # client-go's rule: a credential stated outright wins, the plugin is not run.
        return conn
    plugin = _exec(user)
    if plugin is not None and (user.get("exec") or {}).get("provideClusterInfo"):
        plugin = replace(plugin, cluster_info=json.dumps(_cluster_info(conn, cluster)))
    return replace(conn, exec_plugin=plugin)


EXEC_EXTENSION = "client.authentication.k8s.io/exec"
"""The cluster extension whose value a plugin gets as spec.cluster.config."""


def _cluster_info(conn: Connection, cluster: Mapping[str, Any]) -> dict[str, Any]:
    """spec.cluster of the ExecCredential, as client-go fills it (CA bytes, not a path)."""
    info: dict[str, Any] = {"server": conn.server}
    if conn.tls_server_name:
        info["tls-server-name"] = conn.tls_server_name
    if conn.insecure:
        info["insecure-skip-tls-verify"] = True
    ca = conn.ca_data
    if ca is None and conn.ca_file:
        try:
            ca = Path(conn.ca_file).read_bytes()
        except OSError as err:
            raise KubeconfigError(f"certificate-authority {conn.ca_file}: {err}") from err
    if ca:
        info["certificate-authority-data"] = base64.b64encode(ca).decode()
    if cluster.get("disable-compression"):
        info["disable-compression"] = True
    for entry in cluster.get("extensions") or []:
        if isinstance(entry, dict) and entry.get("name") == EXEC_EXTENSION:
            info["config"] = entry.get("extension")
    return info


def _path(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return str(Path(entry["_dir"], os.path.expanduser(str(value)))) if value else None


def _data(entry: Mapping[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    if not value:
        return None
    try:
        return base64.b64decode("".join(str(value).split()), validate=True)
    except ValueError as err:
        raise KubeconfigError(f"{key} is not base64") from err


def _exec(user: Mapping[str, Any]) -> ExecPlugin | None:
    spec = user.get("exec")
    if not spec:
        return None
    if not spec.get("command"):
        raise KubeconfigError("an exec credential plugin names no command")
    if spec.get("interactiveMode") == "Always":
        raise KubeconfigError(
            f"exec credential plugin {spec['command']} needs a terminal (interactiveMode "
            "Always); the operator runs without one"
        )
    return ExecPlugin(
        command=str(spec["command"]),
        args=tuple(str(a) for a in spec.get("args") or []),
        env=tuple((str(e["name"]), str(e["value"])) for e in spec.get("env") or []),
        api_version=str(spec.get("apiVersion") or "client.authentication.k8s.io/v1"),
        base_dir=str(user["_dir"]),
    )


@dataclass(frozen=True)
class ExecCredential:
    """What a credential plugin answered: a token or a client certificate, and until when."""

    token: str | None
    cert_data: bytes | None
    key_data: bytes | None
    expires: datetime | None


def run_exec_plugin(plugin: ExecPlugin, timeout: float = 60.0) -> ExecCredential:
    """Run the plugin as kubectl does (not interactively) and read its ExecCredential."""
    command = plugin.command
    if os.sep in command and not os.path.isabs(command):
        command = str(Path(plugin.base_dir, command))
    spec: dict[str, Any] = {"interactive": False}
    if plugin.cluster_info is not None:
        spec["cluster"] = json.loads(plugin.cluster_info)
    info = {"apiVersion": plugin.api_version, "kind": "ExecCredential", "spec": spec}
    env = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    try:
        done = subprocess.run(
            [command, *plugin.args], env=env, capture_output=True, text=True, timeout=timeout,
            check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        raise KubeconfigError(f"credential plugin {plugin.command} did not run: {err}") from err
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[-1][:300]
        raise KubeconfigError(
            f"credential plugin {plugin.command} exited {done.returncode}: {said}"
        )
    try:
        status = json.loads(done.stdout)["status"]
    except (ValueError, KeyError, TypeError) as err:
        raise KubeconfigError(
            f"credential plugin {plugin.command} wrote no ExecCredential"
        ) from err
    expires, cert, key = (
        status.get(k) for k in ("expirationTimestamp", "clientCertificateData", "clientKeyData")
    )
    try:
        until = datetime.fromisoformat(expires).astimezone(UTC) if expires else None
    except (TypeError, ValueError) as err:
        raise KubeconfigError(
            f"credential plugin {plugin.command}: bad expiry {expires!r}"
        ) from err
    return ExecCredential(
        token=status.get("token"),
        cert_data=cert.encode() if cert else None,
        key_data=key.encode() if key else None,
        expires=until,
    )
