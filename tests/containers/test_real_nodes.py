"""The real-kubelet tier: pods from the project's images in real containers.

What the process nodes cannot show: pod security enforced by the kubelet and runc, and
`kubectl logs`, `exec` and `port-forward` through the API server to the kubelet.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localcluster import pauseimage, realnodes
from localcluster.fleet import EDGE_TAINT, RUNTIME_TAINT
from support.cluster import ClusterHandle
from support.containers import image_ref, kubectl, restricted_namespace, tolerate_real_nodes
from support.kube import pod_ready
from support.wait import wait_for

# A small web server that says who it is and what it may do, for logs/exec/port-forward.
WEB = """
import http.server, os, sys
print("serving as uid", os.getuid(), flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from a container"
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pod(name: str, node: str, image: str, command: list[str], **extra: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "securityContext": RESTRICTED_CONTAINER,
        "ports": [{"containerPort": 8080}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        **extra,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": tolerate_real_nodes(),
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 2,
            "enableServiceLinks": False,
        },
    }


def _given(value: object) -> bool:
    return value is not None


def _running(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 60) -> Any:
    def ready() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod_ready(pod) else None

    return wait_for(ready, _given, timeout=timeout, what=f"pod {namespace}/{name} to be ready")


@pytest.fixture
def web(real_tier: list[str], core: client.CoreV1Api, namespace: str) -> tuple[str, str, Any]:
    """A web pod from the serving image on edge-real-0, in a restricted namespace."""
    restricted_namespace(core, namespace)
    name = f"web-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_pod(
        namespace, _pod(name, "edge-real-0", image_ref("serving"), ["python3", "-c", WEB])
    )
    return namespace, name, _running(core, namespace, name)


def test_a_restricted_pod_serves_on_its_pod_ip_with_its_logs_readable(
    cluster: ClusterHandle, web: tuple[str, str, Any]
) -> None:
    namespace, name, pod = web
    assert pod.status.pod_ip.startswith("10.89."), pod.status.pod_ip
    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/", timeout=5) as reply:
        assert reply.read() == b"hello from a container"
    logs = kubectl(cluster, "logs", "-n", namespace, name)
    assert logs.returncode == 0, logs.stderr
    assert "serving as uid 65532" in logs.stdout


def test_exec_sees_pod_security_enforced_by_the_runtime(
    cluster: ClusterHandle, web: tuple[str, str, Any]
) -> None:
    namespace, name, _ = web
    probe = (
        "import os\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "print('uid', os.getuid())\n"
        "print('caps', status['CapEff'].strip())\n"
        "print('seccomp', status['Seccomp'].strip())\n"
        "print('nnp', status['NoNewPrivs'].strip())\n"
        "try:\n"
        "    open('/written-at-root', 'w')\n"
        "    print('root writable')\n"
        "except OSError as e:\n"
        "    print('root', e.strerror)\n"
        "open('/tmp/ok', 'w').write('x'); print('tmp writable')\n"
    )
    out = kubectl(cluster, "exec", "-n", namespace, name, "--", "python3", "-c", probe)
    assert out.returncode == 0, out.stderr
    lines = set(out.stdout.splitlines())
    assert {
        "uid 65532",
        "caps 0000000000000000",
        "seccomp 2",  # a filter: RuntimeDefault
        "nnp 1",
        "root Read-only file system",
        "tmp writable",
    } <= lines, out.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_port_forward_reaches_the_pod(cluster: ClusterHandle, web: tuple[str, str, Any]) -> None:
    namespace, name, _ = web
    port = _free_port()
    proc = subprocess.Popen(
        [*kubectl(cluster).args, "port-forward", "-n", namespace, name, f"{port}:8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8080"
        assert f"127.0.0.1:{port}" in line, line + (proc.stderr.read() if proc.stderr else "")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.read() == b"hello from a container"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_image_that_runs_as_root_is_refused_under_run_as_non_root(
    real_tier: list[str],
    cluster: ClusterHandle,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    """runAsNonRoot is checked by the kubelet against the image's user: only a real
    kubelet can refuse this pod (the API server sees nothing wrong with it)."""
    assert cluster.settings is not None
    binary = (pauseimage.ensure_pause_image(cluster.settings).parent / "pause").read_bytes()
    ref = f"localhost/edgeml/runs-as-root:{uuid.uuid4().hex[:6]}"
    archive = tmp_path / "root.tar"
    archive.write_bytes(pauseimage.image_archive(binary, ref, user="0:0"))
    node = next(n for n in realnodes.known_nodes(cluster.settings) if n.name == "edge-real-0")
    realnodes.import_images(node, [archive], lambda _: None)
    pod = _pod("as-root", "edge-real-0", ref, ["/pause"])
    pod["spec"]["containers"][0].pop("volumeMounts")
    core.create_namespaced_pod(namespace, pod)

    def refused() -> str | None:
        status = core.read_namespaced_pod("as-root", namespace).status
        for c in status.container_statuses or []:
            if c.state.waiting and c.state.waiting.reason == "CreateContainerConfigError":
                return str(c.state.waiting.message)
        return None

    message = wait_for(
        refused, _given, timeout=60, what="the kubelet to refuse a root image under runAsNonRoot"
    )
    assert "runAsNonRoot" in message, message
    assert "will run as root" in message, message


def test_in_cluster_clients_find_the_api_server_at_the_kubernetes_service(
    real_tier: list[str], core: client.CoreV1Api, namespace: str, cluster: ClusterHandle
) -> None:
    """KUBERNETES_SERVICE_HOST is the `kubernetes` Service's address; with no kube-proxy
    here the node's CNI plugin answers it inside the pod, so in-cluster config works."""
    restricted_namespace(core, namespace)
    script = (
        "import os, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "url = 'https://%s:%s/version' % (os.environ['KUBERNETES_SERVICE_HOST'],"
        " os.environ['KUBERNETES_SERVICE_PORT'])\n"
        "req = urllib.request.Request(url, headers={'Authorization': 'Bearer ' +"
        " open(sa + '/token').read()})\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "print(urllib.request.urlopen(req, context=ctx, timeout=10).read().decode())\n"
    )
    pod = _pod("in-cluster", "edge-real-1", image_ref("serving"), ["python3", "-c", script])
    pod["spec"]["restartPolicy"] = "Never"
    core.create_namespaced_pod(namespace, pod)

    def finished() -> str | None:
        phase = core.read_namespaced_pod("in-cluster", namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, _given, timeout=60, what="the in-cluster client pod to finish")
    logs = kubectl(cluster, "logs", "-n", namespace, "in-cluster").stdout
    assert phase == "Succeeded", logs
    assert '"gitVersion": "v1.35.4"' in logs, logs


def test_the_real_nodes_carry_the_edge_and_runtime_taints(
    real_tier: list[str], core: client.CoreV1Api
) -> None:
    for name in real_tier:
        node = core.read_node(name)
        taints = {(t.key, t.value, t.effect) for t in node.spec.taints or []}
        assert (RUNTIME_TAINT["key"], "containerd", "NoSchedule") in taints, name
        if name.startswith("edge-"):
            assert (EDGE_TAINT["key"], "true", "NoSchedule") in taints, name
        addresses = {a.type: a.address for a in node.status.addresses}
        assert addresses["InternalIP"].startswith("10.89."), addresses
