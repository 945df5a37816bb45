"""The REST client of the API server: in-cluster when running in a pod, else the kubeconfig.

A thin layer on urllib3 (see kube/kubeconfig.py for why not the `kubernetes` package):
JSON in, JSON out, an ApiError carrying the API server's status and answer.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import HTTPError

from edgeml.kube.kubeconfig import (
    Connection,
    ExecCredential,
    KubeconfigError,
    context_namespace,
    in_cluster,
    kubeconfig_paths,
    load_kubeconfig,
    run_exec_plugin,
)
from edgeml.kube.kubeconfig import connection as kubeconfig_connection

IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
TOKEN_FILE_REREAD_SECONDS = 60.0
"""How long a token read from a file is used before reading it again (client-go's minute)."""
EXEC_EARLY_SECONDS = 10.0
"""A plugin's credential is renewed this long before it says it expires."""
DEFAULT_TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
POOL_SIZE = 16
_chosen: dict[str, str | None] = {"kubeconfig": None, "context": None}


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body

    @property
    def message(self) -> str:
        """The Status object's message, when the answer is one."""
        try:
            return str(json.loads(self.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            return ""


def path_of(*parts: str) -> str:
    """An API path from its segments, each quoted (names are DNS labels, but never trust)."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


class ApiClient:
    """One API server, one connection pool; safe to share between threads."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._token: str | None = conn.token
        self._token_read = 0.0
        self._exec: ExecCredential | None = None
        self._files: str | None = None
        self._pool = self._pool_for(conn.cert_data, conn.key_data)

    @property
    def server(self) -> str:
        """The API server's base URL."""
        return self._conn.server

    def _pool_for(self, cert: bytes | None, key: bytes | None) -> urllib3.PoolManager:
        conn = self._conn
        if conn.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(
                cafile=conn.ca_file, cadata=conn.ca_data.decode() if conn.ca_data else None
            )
        cert_file, key_file = conn.cert_file, conn.key_file
        if cert is not None and key is not None:
            cert_file, key_file = self._write_pair(cert, key)
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
        extra: dict[str, Any] = {}
        if conn.tls_server_name:
            extra["server_hostname"] = conn.tls_server_name
        return urllib3.PoolManager(
            maxsize=POOL_SIZE,
            ssl_context=context,
            # Connect failures only (nothing was sent); every answer, a 429 or a 503 with
            # Retry-After included, reaches the caller as it came.
            retries=urllib3.Retry(
                total=2,
                connect=2,
                read=0,
                redirect=0,
                status=0,
                other=0,
                respect_retry_after_header=False,
                raise_on_status=False,
            ),
            timeout=DEFAULT_TIMEOUT,
            **extra,
        )

    def _write_pair(self, cert: bytes, key: bytes) -> tuple[str, str]:
        # ssl loads a client certificate only from files: a private directory for them.
        if self._files is None:
            self._files = tempfile.mkdtemp(prefix="edgeml-kube-")
            atexit.register(shutil.rmtree, self._files, True)
        paths = (os.path.join(self._files, "client.crt"), os.path.join(self._files, "client.key"))
        for path, data in zip(paths, (cert, key), strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        return paths

    def _authorization(self, refused: tuple[str | None] | None) -> str | None:
        """The header to send. `refused` holds the header a 401 just answered: the
        credential is renewed then, unless another thread renewed it meanwhile."""
        with self._lock:
            held = self._held()
            renew = refused is not None and refused[0] == (f"Bearer {held}" if held else None)
            if self._conn.exec_plugin is not None:
                token = self._plugin_token(renew)
            elif self._conn.token_file is not None:
                token = self._file_token(self._conn.token_file, renew)
            else:
                token = self._token
        return f"Bearer {token}" if token else None

    def _held(self) -> str | None:
        if self._conn.exec_plugin is not None:
            return self._exec.token if self._exec else None
        return self._token

    def _plugin_token(self, renew: bool) -> str | None:
        plugin = self._conn.exec_plugin
        assert plugin is not None
        soon = datetime.now(UTC) + timedelta(seconds=EXEC_EARLY_SECONDS)
        held = self._exec
        if renew or held is None or (held.expires is not None and held.expires < soon):
            fresh = run_exec_plugin(plugin)
            if (
                fresh.cert_data
                and fresh.key_data
                and (held is None or held.cert_data != fresh.cert_data)
            ):
                self._pool = self._pool_for(fresh.cert_data, fresh.key_data)
            self._exec = held = fresh
        return held.token

    def _file_token(self, path: str, renew: bool) -> str | None:
        age = time.monotonic() - self._token_read
        if renew or self._token is None or age > TOKEN_FILE_REREAD_SECONDS:
            with open(path) as f:
                self._token = f.read().strip()
            self._token_read = time.monotonic()
        return self._token

    def credentials(self) -> tuple[Connection, str | None, ExecCredential | None]:
        """The connection, a bearer token read now (a token file re-read, a plugin run
        again) and the plugin's credential, for kopf's own login: kopf asks at start and
        after a 401, so what it held is stale then."""
        with self._lock:
            if self._conn.exec_plugin is not None:
                token = self._plugin_token(renew=True)
            elif self._conn.token_file is not None:
                token = self._file_token(self._conn.token_file, renew=True)
            else:
                token = self._token
            return self._conn, token, self._exec

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """One request; the response whatever its status (the caller reads it). A 401 with a
        credential that can be renewed (a token file, a plugin) is retried once, renewed."""
        url = self._conn.server + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        refused: tuple[str | None] | None = None
        for attempt in (0, 1):
            headers = {"Accept": "application/json", "User-Agent": "edgeml-operator"}
            if data is not None:
                headers["Content-Type"] = content_type
            auth = self._authorization(refused)
            if auth:
                headers["Authorization"] = auth
            response = self._pool.request(
                method, url, body=data, headers=headers, preload_content=True,
                timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            )  # fmt: skip
            renewable = self._conn.exec_plugin is not None or self._conn.token_file is not None
            if response.status != 401 or attempt == 1 or not renewable:
                return response
            refused = (auth,)
        raise AssertionError("unreachable")

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer of one request; ApiError for an error status."""
        response = self.call(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout
        )
        if response.status >= 400:
            raise ApiError(
                response.status, response.reason or "", response.data.decode(errors="replace")
            )
        return json.loads(response.data) if response.data else None  # fmt: skip


def use_kubeconfig(path: str | None, context: str | None) -> None:
    """The kubeconfig file and context of this process (the CLI's --kubeconfig and
    --context); call before the first API call."""
    _chosen.update(kubeconfig=path, context=context)
    api_client.cache_clear()


def connection() -> Connection:
    """The connection this process uses: the pod's service account when in a pod and no
    kubeconfig was chosen, else the kubeconfig (KUBECONFIG read now, not at import)."""
    path, context = _chosen["kubeconfig"], _chosen["context"]
    if path is None and context is None:
        try:
            return in_cluster()
        except KubeconfigError:
            pass
    return kubeconfig_connection(load_kubeconfig(kubeconfig_paths(path)), context)


@functools.cache
def api_client() -> ApiClient:
    """One shared API client for the process."""
    return ApiClient(connection())


def current_namespace() -> str:
    """The namespace a person means when they give none: their kube context's, else the
    pod's own (in a cluster), else `default`."""
    path, context = _chosen["kubeconfig"], _chosen["context"]
    try:
        namespace = context_namespace(load_kubeconfig(kubeconfig_paths(path)), context)
        if namespace:
            return namespace
    except KubeconfigError:
        if os.path.exists(IN_CLUSTER_NAMESPACE):
            with open(IN_CLUSTER_NAMESPACE) as f:
                return f.read().strip() or "default"
    return "default"


CLUSTER_ERRORS: tuple[type[Exception], ...] = (KubeconfigError, ApiError, HTTPError, OSError)
"""What talking to a cluster can raise that is the cluster's or the kubeconfig's doing."""


def explain(err: Exception) -> str:
    """One line saying what went wrong talking to the cluster (for the CLI)."""
    if isinstance(err, KubeconfigError):
        return f"no usable kubeconfig: {err}"
    if isinstance(err, ApiError):
        return f"the API server answered {err.status} {err.reason}"
    return f"the API server cannot be reached: {err}"
