"""The operator as a process under its own ServiceAccount (RBAC from the chart, not admin)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, dynamic

from support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
RENDERED = REPO / "manifests" / "base" / "edgeml.yaml"
OPERATOR_NAMESPACE = "edgeml-system"
SERVICE_ACCOUNT = "edgeml"
IDENTITY_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
LOCAL_VOLUME_TYPES = "persistentVolumeClaim,configMap,secret,emptyDir,csi,hostPath"
"""As the local overlay allows: the tests' training data is a directory on the host,
mounted by hostPath (the local cluster has no storage provisioner)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_identity(api: client.ApiClient) -> None:
    """Apply the operator's namespace, ServiceAccount and RBAC exactly as the chart renders them."""
    dyn = dynamic.DynamicClient(api)
    docs = [
        d for d in yaml.safe_load_all(RENDERED.read_text()) if d and d["kind"] in IDENTITY_KINDS
    ]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
    for doc in [namespace, *docs]:
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        resource.server_side_apply(
            body=doc,
            name=doc["metadata"]["name"],
            namespace=doc["metadata"].get("namespace"),
            field_manager="edgeml-tests",
            force_conflicts=True,
        )


@contextmanager
def in_cluster_operator_stood_down(api: client.ApiClient) -> Iterator[None]:
    """An in-cluster operator (from hack/demo) reconciles every namespace, so it would
    act in a test's or a bench's namespace too, and no kill of ours would stop it: it
    stands down for the block and comes back as it was."""
    apps = client.AppsV1Api(api)
    try:
        replicas = apps.read_namespaced_deployment_scale("edgeml", "edgeml-system").spec.replicas
        apps.patch_namespaced_deployment_scale("edgeml", "edgeml-system", {"spec": {"replicas": 0}})
    except client.ApiException as err:
        if err.status != 404:
            raise
        replicas = None
    try:
        yield
    finally:
        if replicas:
            apps.patch_namespaced_deployment_scale(
                "edgeml", "edgeml-system", {"spec": {"replicas": replicas}}
            )


def identity_kubeconfig(api: client.ApiClient, admin_kubeconfig: str, path: Path) -> Path:
    """A kubeconfig carrying a token of the operator's ServiceAccount."""
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        SERVICE_ACCOUNT,
        OPERATOR_NAMESPACE,
        {"spec": {"expirationSeconds": 7200, "audiences": []}},
    )
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "edgeml-operator", "user": {"token": token.status.token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster["name"], "user": "edgeml-operator"}}
        ],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: have the kernel send SIGTERM when the parent dies, so
    an operator never outlives the test or bench run that started it (a Ctrl-C or a
    SIGKILL of pytest included). Linux sends it when the spawning *thread* exits: every
    caller starts the operator from its main thread."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class OperatorProcess:
    """`edgeml run` watching one namespace, as a child process of the test."""

    kubeconfig: Path
    namespace: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ("--standalone",)
    """How it peers: standalone by default (one instance per test namespace)."""
    program: tuple[str, ...] = ()
    """The command that runs `edgeml` (default: this venv's `edgeml`)."""

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *(self.program or (str(Path(sys.executable).parent / "edgeml"),)),
                "run",
                *self.args,
                f"--namespace={self.namespace}",
                f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={self.metrics_port}",
                "--log-format=text",
            ],
            env={
                **os.environ,
                "KUBECONFIG": str(self.kubeconfig),
                # As the local overlay configures the in-cluster operator.
                "EDGEML_MLFLOW_TRACKING_URI": os.environ.get(
                    "EDGEML_TEST_MLFLOW_URI", "http://127.0.0.1:15000"
                ),
                "EDGEML_TRAINING_NODE_SELECTOR": '{"edgeml.io/pool": "training"}',
                "EDGEML_TRAINING_VOLUME_TYPES": LOCAL_VOLUME_TYPES,
                **self.env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        wait_for(self.healthy, bool, timeout=30, what="the operator's liveness endpoint")

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the operator exited with {self.proc.returncode}:\n{self.logs()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as r:
            return bool(r.status == 200)

    def kill(self) -> None:
        """SIGKILL: no chance to finish what it was doing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return str(r.read().decode())

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        got = series[len(name) :].strip("{}")
        if ",".join(sorted(got.split(","))) == want or (not want and not got):
            return float(value)
    return 0.0


def custom_objects_in(custom: client.CustomObjectsApi, namespace: str, plural: str) -> list[Any]:
    return list(
        custom.list_namespaced_custom_object("edgeml.io", "v1alpha1", namespace, plural)["items"]
    )
