"""The command lines of the cluster's components and how each one shows it is ready.

All of them listen on 127.0.0.1 only; the order of `components()` is the start order.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path

from localcluster import build
from localcluster.agent.network import KWOK_POD_CIDR
from localcluster.pki import SERVICE_CLUSTER_IP_RANGE
from localcluster.processes import Component
from localcluster.settings import HACK_DIR, S3_ACCESS_KEY, S3_SECRET_KEY, Settings

# Lease and grace periods short enough that tests see an offline node go NotReady
# in about 20 s, instead of the 40-50 s a production cluster waits.
NODE_MONITOR_GRACE = "20s"


def _get_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
        return bool(resp.status == 200)


def _insecure() -> ssl.SSLContext:
    # The controller-manager and scheduler serve health on self-signed certificates.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def admin_ssl(settings: Settings) -> ssl.SSLContext:
    """A TLS context that trusts the cluster CA and presents the admin certificate."""
    ctx = ssl.create_default_context(cafile=str(settings.pki_dir / "ca.crt"))
    ctx.load_cert_chain(settings.pki_dir / "admin.crt", settings.pki_dir / "admin.key")
    return ctx


def _probe(
    url: str, context: Callable[[], ssl.SSLContext | None] = lambda: None
) -> Callable[[], bool]:
    return lambda: _get_ok(url, context())


def kubeconfig_for(settings: Settings, identity: str) -> Path:
    """Where the kubeconfig of a component identity lives."""
    if identity == "admin":
        return settings.kubeconfig
    return settings.cluster_dir / "kubeconfigs" / f"{identity}.kubeconfig"


def nodes_file(settings: Settings) -> Path:
    """The process nodes the agent runs, as JSON written by `up`."""
    return settings.cluster_dir / "process-nodes.json"


def etcd(settings: Settings) -> Component:
    p = settings.ports
    data = settings.cluster_dir / "etcd"
    return Component(
        name="etcd",
        argv=[
            str(build.binary(settings, "etcd")),
            "--name=edgeml-local",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{p.etcd}",
            f"--advertise-client-urls=http://127.0.0.1:{p.etcd}",
            f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-cluster=edgeml-local=http://127.0.0.1:{p.etcd_peer}",
            "--listen-metrics-urls=",
            "--quota-backend-bytes=4294967296",
            "--unsafe-no-fsync",  # a throwaway test cluster; fsync dominates its latency
            "--log-level=warn",
        ],
        ports=(p.etcd, p.etcd_peer),
        ready=_probe(f"http://127.0.0.1:{p.etcd}/health"),
        ready_timeout=30,
    )


def kube_apiserver(settings: Settings) -> Component:
    p, pki = settings.ports, settings.pki_dir
    return Component(
        name="kube-apiserver",
        argv=[
            str(build.binary(settings, "kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{p.etcd}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={p.apiserver}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=Node,RBAC",
            # Nodes by their InternalIP only (logs, exec, port-forward, proxy): never a
            # lookup of a node's name, which would go to the machine's resolver.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            # Request-header settings only so the controller-manager and scheduler find the
            # CA bundle they look for; no front proxy certificate is issued.
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",  # one user; APF only adds queueing here
            "--max-requests-inflight=800",
            "--max-mutating-requests-inflight=400",
            "--event-ttl=2h",
            "--profiling=false",
            "--v=1",
        ],
        ports=(p.apiserver,),
        ready=_probe(f"https://127.0.0.1:{p.apiserver}/readyz", lambda: admin_ssl(settings)),
        ready_timeout=90,
    )


def kube_controller_manager(settings: Settings) -> Component:
    p, pki = settings.ports, settings.pki_dir
    kubeconfig = kubeconfig_for(settings, "controller-manager")
    return Component(
        name="kube-controller-manager",
        argv=[
            str(build.binary(settings, "kube-controller-manager")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p.controller_manager}",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
            "--node-monitor-period=2s",
            "--leader-elect=false",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--profiling=false",
            "--v=1",
        ],
        ports=(p.controller_manager,),
        ready=_probe(f"https://127.0.0.1:{p.controller_manager}/healthz", _insecure),
    )


def kube_scheduler(settings: Settings) -> Component:
    p = settings.ports
    kubeconfig = kubeconfig_for(settings, "scheduler")
    return Component(
        name="kube-scheduler",
        argv=[
            str(build.binary(settings, "kube-scheduler")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p.scheduler}",
            "--leader-elect=false",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--profiling=false",
            "--v=1",
        ],
        ports=(p.scheduler,),
        ready=_probe(f"https://127.0.0.1:{p.scheduler}/healthz", _insecure),
    )


def kwok(settings: Settings) -> Component:
    p = settings.ports
    return Component(
        name="kwok",
        argv=[
            str(build.binary(settings, "kwok")),
            f"--kubeconfig={kubeconfig_for(settings, 'kwok')}",
            f"--config={build.kwok_stages(settings)}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={KWOK_POD_CIDR}",
            "--node-ip=10.90.0.1",
            f"--server-address=127.0.0.1:{p.kwok}",
            "--node-lease-duration-seconds=40",
        ],
        ports=(p.kwok,),
        ready=_probe(f"http://127.0.0.1:{p.kwok}/healthz"),
    )


def mlflow(settings: Settings) -> Component:
    p = settings.ports
    data = settings.cluster_dir / "mlflow"
    data.mkdir(parents=True, exist_ok=True)
    return Component(
        name="mlflow",
        argv=[
            str(settings.python.parent / "mlflow"),
            "server",
            "--host=127.0.0.1",
            f"--port={p.mlflow}",
            f"--backend-store-uri=sqlite:///{data / 'mlflow.db'}",
            f"--artifacts-destination={data / 'artifacts'}",
            "--serve-artifacts",
            "--workers=1",
        ],
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        ports=(p.mlflow,),
        ready=_probe(f"http://127.0.0.1:{p.mlflow}/health"),
        ready_timeout=120,
        cwd=data,
    )


def object_store(settings: Settings) -> Component:
    """versitygw over a plain directory: a real S3 server (signatures, ETags, listing),
    each top-level directory a bucket."""
    p = settings.ports
    data = settings.cluster_dir / "s3"
    data.mkdir(parents=True, exist_ok=True)
    return Component(
        name="s3",
        argv=[
            str(build.binary(settings, "versitygw")),
            f"--port=127.0.0.1:{p.s3}",
            "--health=/health",
            "--quiet",
            "posix",
            str(data),
        ],
        env={"ROOT_ACCESS_KEY_ID": S3_ACCESS_KEY, "ROOT_SECRET_ACCESS_KEY": S3_SECRET_KEY},
        ports=(p.s3,),
        ready=_probe(f"http://127.0.0.1:{p.s3}/health"),
        ready_timeout=30,
    )


def node_agent(settings: Settings, ready: Callable[[], bool]) -> Component:
    """The process node agent; `ready` tells when its nodes report Ready."""
    p = settings.ports
    return Component(
        name="node-agent",
        argv=[
            str(settings.python),
            "-m",
            "localcluster.agent",
            f"--kubeconfig={kubeconfig_for(settings, 'node-agent')}",
            f"--state-dir={settings.cluster_dir / 'agent'}",
            f"--nodes-file={nodes_file(settings)}",
            f"--forward-port={p.apiserver}",
            f"--forward-port={p.mlflow}",
            f"--forward-port={p.s3}",
            f"--forward-port={p.webhook}",
            f"--python-bin-dir={settings.python.parent}",
        ],
        env={"PYTHONPATH": str(HACK_DIR), "PYTHONUNBUFFERED": "1"},
        ready=ready,
        ready_timeout=60,
    )


def describe(settings: Settings) -> str:
    """A JSON summary of where everything is, for `status --json`."""
    return json.dumps(
        {
            "kubeconfig": str(settings.kubeconfig),
            "mlflow": settings.mlflow_uri,
            "s3": settings.s3_endpoint,
            "apiserver": f"https://127.0.0.1:{settings.ports.apiserver}",
            "logs": str(settings.log_dir),
        }
    )
