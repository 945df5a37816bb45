"""The real-kubelet tier: nodes run by the upstream kubelet on Debian's containerd and runc.

Next to the process nodes (whose pods are processes, the image ignored), these nodes
run the project's images in real containers, so pod security (runAsNonRoot, a read-only
root, seccomp, dropped capabilities) is enforced for real, and `kubectl logs`, `exec`
and `port-forward` work. Each node has, under `<cluster>/real/<name>/`:

- `containerd/`: its own containerd (config, root, state; its sockets are under
  `/run/edgeml/`, a unix socket path being limited to 104 bytes); images are imported
  from archives (no registry), the sandbox image included (`pauseimage`);
- `kubelet/`: configuration, kubeconfig, certificates, `--root-dir`, pod logs;
- `cni/`: the network configuration and a plugin directory (Debian's bridge and
  host-local, and `edgeml-forward`, see `cniforward`).

Its network is the process nodes' kind (`agent.network`): bridge `emlbrN` whose
10.89.N.1 is the node's InternalIP and its pods' gateway, the pods' traffic confined to
the machine by policy routing; the CNI bridge plugin adds pods to it without touching
the bridge's address, ip_forward or iptables. Each pod also gets, inside its network
namespace, 127.0.0.1 forwards to the API server, MLflow and the object store, and the
`kubernetes` Service's address, as the process nodes' pods do.

The kubelet runs under its own cgroup root (`/edgeml-<cluster digest>-<node>` in every
v1 hierarchy) so
two kubelets on one machine never clean up each other's pods, and with
`makeIPTablesUtilChains: false` so it adds no chains to the host's iptables. `down`
kills what is left in those cgroups, unmounts what was mounted for the node, removes
the cgroups, bridges, netns files and the few host paths the kubelet and containerd
insist on (recorded when first created), and checks that none is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localcluster import build, pauseimage, pki
from localcluster.agent import network
from localcluster.fleet import NodeSpec
from localcluster.pki import KUBERNETES_SERVICE_IP
from localcluster.processes import Component
from localcluster.settings import HACK_DIR, MARKER_ENV, Settings

CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
RUNC = "/usr/sbin/runc"
DEBIAN_CNI_DIR = Path("/usr/lib/cni")
DEBIAN_PACKAGES = {
    CONTAINERD: "containerd",
    RUNC: "runc",
    str(DEBIAN_CNI_DIR / "bridge"): "containernetworking-plugins",
    "/usr/bin/nsenter": "util-linux",
    "/usr/sbin/iptables-save": "iptables",
}
CNI_PLUGINS = ("bridge", "host-local", "loopback")
SBIN = "/usr/sbin:/sbin"
"""Where Debian puts iptables, for a PATH without the sbin directories."""
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248

# Host paths the kubelet or containerd use whatever their configuration says.
HOST_PATHS = (
    Path("/var/lib/kubelet"),  # device-plugins/ (the path is compiled in)
    Path("/var/log/containers"),  # the kubelet's symlinks to container logs
    Path("/var/lib/cni"),  # libcni's result cache
    Path("/run/containerd"),  # the runc shim's sockets
    Path("/run/netns"),  # pod network namespaces (also the process nodes')
    Path("/var/run/netns"),
)


RUN_ROOT = Path("/run/edgeml")
"""Short paths for the nodes' sockets, one directory per cluster and node."""


def _cluster_digest(cluster_dir: Path) -> str:
    return hashlib.sha256(str(cluster_dir).encode()).hexdigest()[:6]


class RealNodeError(RuntimeError):
    """The real-kubelet tier cannot start here; the message says what to install or do."""


@dataclass(frozen=True)
class RealNode:
    """Where one real node keeps its files, and its network."""

    spec: NodeSpec
    cluster_dir: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dir(self) -> Path:
        return self.cluster_dir / "real" / self.name

    @property
    def ip(self) -> str:
        return network.gateway_ip(self.spec.index)

    @property
    def run_dir(self) -> Path:
        """containerd's sockets: a unix socket's path must stay under 104 bytes, which a
        path under a deep cluster directory would not."""
        return RUN_ROOT / _cluster_digest(self.cluster_dir) / self.name

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def cgroup_name(self) -> str:
        """Unique per cluster directory too: two clusters may both have `edge-real-0`."""
        return f"edgeml-{_cluster_digest(self.cluster_dir)}-{self.name}"

    @property
    def forwards_dir(self) -> Path:
        return self.dir / "cni" / "forwards"

    @property
    def netns_record(self) -> Path:
        """The pods' netns files the CNI plugin saw (to unmount if containerd cannot)."""
        return self.dir / "cni" / "netns.txt"

    def component_names(self) -> tuple[str, str]:
        return (f"containerd-{self.name}", f"kubelet-{self.name}")


def nodes(settings: Settings, specs: Iterable[NodeSpec]) -> list[RealNode]:
    """The real nodes among `specs`."""
    return [RealNode(s, settings.cluster_dir) for s in specs if s.simulator == "kubelet"]


def known_nodes(settings: Settings) -> list[RealNode]:
    """Every real node that has a directory, including ones no longer planned."""
    root = settings.cluster_dir / "real"
    if not root.exists():
        return []
    found = []
    for path in sorted(root.iterdir()):
        meta = path / "node.json"
        if meta.exists():
            spec = NodeSpec(**json.loads(meta.read_text()))
            found.append(RealNode(spec, settings.cluster_dir))
    return found


def _missing_packages() -> list[str]:
    return sorted({pkg for path, pkg in DEBIAN_PACKAGES.items() if not Path(path).exists()})


def check_host(say: Callable[[str], None] = print) -> None:
    """Install the Debian packages the tier needs (as root, as hack/ scripts do), or
    refuse early naming them."""
    missing = _missing_packages()
    if missing and os.geteuid() == 0:
        say(f"  installing Debian packages: {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            subprocess.run(argv, env=env, capture_output=True, check=False)
        missing = _missing_packages()
    if missing:
        raise RealNodeError(
            "the real-kubelet tier needs Debian packages: apt-get install " + " ".join(missing)
        )
    if not (CGROUP_ROOT / "memory").is_dir():
        raise RealNodeError(
            "the real-kubelet tier expects cgroup v1 hierarchies under /sys/fs/cgroup"
        )


def record_host_paths(settings: Settings) -> None:
    """Remember which of HOST_PATHS did not exist before the tier first ran."""
    record = settings.cluster_dir / "real" / "created-host-paths.txt"
    if record.exists():
        return
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("".join(f"{p}\n" for p in HOST_PATHS if not p.exists()))


# ---- files -----------------------------------------------------------------------------


def _containerd_config(node: RealNode) -> str:
    d = node.dir / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
# Generated by hack/localcluster/realnodes.py for {node.name}.
version = 2
root = "{d / "root"}"
state = "{d / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{node.socket}"

[ttrpc]
  address = "{node.run_dir / "containerd-ttrpc.sock"}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "opt"}"

[{cri}]
  sandbox_image = "{pauseimage.PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: without this runc fails every sandbox
  # ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  # exec, attach and port-forward streams, proxied by the kubelet: loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  max_container_log_line_size = 16384

[{cri}.cni]
  bin_dir = "{node.dir / "cni" / "bin"}"
  conf_dir = "{node.dir / "cni" / "net.d"}"
  max_conf_num = 1

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
  discard_unpacked_layers = false

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{RUNC}"
  SystemdCgroup = false
"""


def _cni_config(node: RealNode, settings: Settings) -> dict[str, Any]:
    index = node.spec.index
    p = settings.ports
    routes = [f"127.0.0.1:{port}:{port}" for port in (p.apiserver, p.mlflow, p.s3, p.webhook)]
    # The `kubernetes` Service, as in-cluster clients find it (KUBERNETES_SERVICE_HOST).
    routes.append(f"{KUBERNETES_SERVICE_IP}:443:{p.apiserver}")
    return {
        "cniVersion": "1.0.0",
        "name": f"edgeml-{node.name}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge_name(index),
                # The bridge and its gateway address are made by agent.network; the plugin
                # only attaches pods (no ip_forward, no masquerade, no iptables).
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": False,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(node.dir / "cni" / "ipam"),
                    "ranges": [
                        [
                            {
                                "subnet": network.subnet(index),
                                "rangeStart": network.pod_ip(index, network.FIRST_POD_OCTET),
                                "rangeEnd": network.pod_ip(index, network.LAST_POD_OCTET),
                                "gateway": network.gateway_ip(index),
                            }
                        ]
                    ],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {
                "type": "edgeml-forward",
                "routes": routes,
                "stateDir": str(node.forwards_dir),
                "netnsRecord": str(node.netns_record),
                "clusterDir": str(settings.cluster_dir),
            },
        ],
    }


def _forward_plugin(settings: Settings) -> str:
    return (
        f"#!{settings.python}\n"
        "# The real nodes' CNI plugin that forwards a pod's 127.0.0.1 ports to the host.\n"
        "import sys\n"
        f"sys.path.insert(0, {str(HACK_DIR)!r})\n"
        "from localcluster.cniforward import plugin_main\n"
        "sys.exit(plugin_main())\n"
    )


def _kubelet_config(node: RealNode, settings: Settings) -> dict[str, Any]:
    k = node.dir / "kubelet"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": node.ip,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(settings.pki_dir / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{node.cgroup_name}",
        "failCgroupV1": False,  # this kernel has cgroup v1 only
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,  # else KUBE-FIREWALL and canary chains on the host
        "imageGCHighThresholdPercent": 100,  # imported images cannot be pulled again
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
        },
        "podLogsDir": str(k / "pod-logs"),
        "resolvConf": "",  # no DNS: nothing a pod looks up goes to the machine's resolver
        "registerWithTaints": list(node.spec.taints),
        "serializeImagePulls": False,
        "nodeStatusReportFrequency": "10s",
        "nodeLeaseDurationSeconds": 20,  # renewed every 5 s, as the process nodes' are
        "nodeStatusUpdateFrequency": "5s",
        "maxPods": 30,
        "protectKernelDefaults": False,
    }


def prepare(node: RealNode, settings: Settings) -> None:
    """Write the node's configuration, certificate and network; idempotent."""
    node.run_dir.mkdir(parents=True, exist_ok=True)
    for sub in (
        "containerd",
        "kubelet/root",
        "kubelet/pki",
        "kubelet/pod-logs",
        "cni/net.d",
        "cni/bin",
        "cni/ipam",
        "cni/forwards",
    ):
        (node.dir / sub).mkdir(parents=True, exist_ok=True)
    (node.dir / "node.json").write_text(
        json.dumps(
            {
                "name": node.spec.name,
                "simulator": node.spec.simulator,
                "labels": node.spec.labels,
                "taints": list(node.spec.taints),
                "index": node.spec.index,
            },
            indent=1,
        )
    )
    (node.dir / "containerd" / "config.toml").write_text(_containerd_config(node))
    net_d = node.dir / "cni" / "net.d"
    (net_d / "10-edgeml.conflist").write_text(json.dumps(_cni_config(node, settings), indent=1))
    bin_dir = node.dir / "cni" / "bin"
    for plugin in CNI_PLUGINS:
        link = bin_dir / plugin
        if not link.is_symlink():
            link.symlink_to(DEBIAN_CNI_DIR / plugin)
    forward = bin_dir / "edgeml-forward"
    forward.write_text(_forward_plugin(settings))
    forward.chmod(0o755)
    ident = pki.ensure_node_cert(settings.pki_dir, node.name)
    pki.write_kubeconfig(
        node.dir / "kubelet" / "kubeconfig",
        settings.pki_dir,
        ident.file_stem,
        f"https://127.0.0.1:{settings.ports.apiserver}",
    )
    (node.dir / "kubelet" / "config.yaml").write_text(
        yaml.safe_dump(_kubelet_config(node, settings), sort_keys=False)
    )
    network.ensure_bridge(node.spec.index, node.name)
    _ensure_cgroups(node)


def _hierarchies() -> list[Path]:
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and (p / "cgroup.procs").exists())


def _ensure_cgroups(node: RealNode) -> None:
    """The kubelet's cgroup root must exist in every hierarchy before it starts."""
    for hierarchy in _hierarchies():
        path = hierarchy / node.cgroup_name
        path.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (path / knob).read_text().strip():
                    (path / knob).write_text((hierarchy / knob).read_text())


# ---- processes -------------------------------------------------------------------------


def _ctr(node: RealNode, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CTR, "--address", str(node.socket), "--namespace", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _containerd_ready(node: RealNode) -> Callable[[], bool]:
    return lambda: node.socket.exists() and _ctr(node, "version", timeout=5).returncode == 0


def containerd(node: RealNode) -> Component:
    """The node's containerd."""
    return Component(
        name=node.component_names()[0],
        argv=[
            CONTAINERD,
            f"--config={node.dir / 'containerd' / 'config.toml'}",
            "--log-level=warn",
        ],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        ready=_containerd_ready(node),
        ready_timeout=30,
    )


def kubelet(node: RealNode, settings: Settings, ready: Callable[[], bool]) -> Component:
    """The node's kubelet; `ready` tells when its Node reports Ready."""
    k = node.dir / "kubelet"
    return Component(
        name=node.component_names()[1],
        argv=[
            str(build.binary(settings, "kubelet")),
            f"--config={k / 'config.yaml'}",
            f"--kubeconfig={k / 'kubeconfig'}",
            f"--hostname-override={node.name}",
            f"--node-ip={node.ip}",
            f"--root-dir={k / 'root'}",
            f"--cert-dir={k / 'pki'}",
            "--v=1",
        ],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        ready=ready,
        ready_timeout=90,
    )


def images_dir(settings: Settings) -> Path:
    """Where `hack/images` writes the project's image archives."""
    return settings.home / "images"


POOL_IMAGES = {"edge": ("serving",), "training": ("operator", "training")}
"""Which of the project's images a node of each pool gets (an import takes seconds per
image and node): the edge server on edge nodes; the operator and trainer elsewhere."""


def image_archives(settings: Settings, pool: str, arch: str = "amd64") -> list[Path]:
    """The project's image archives a node of `pool` gets, as `hack/images build` writes
    them (those not built yet are left out)."""
    found = []
    for name in POOL_IMAGES.get(pool, ()):
        found += sorted(images_dir(settings).glob(f"edgeml-{name}-*-{arch}.tar"))
    return found


def import_images(node: RealNode, archives: Iterable[Path], say: Callable[[str], None]) -> None:
    """Import image archives into the node's containerd, each once per content."""
    stamp_dir = node.dir / "containerd" / "imported"
    stamp_dir.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        st = archive.stat()
        key = f"{st.st_size}-{st.st_mtime_ns}"
        stamp = stamp_dir / f"{archive.name}.stamp"
        if stamp.exists() and stamp.read_text() == key:
            continue
        started = time.monotonic()
        proc = _ctr(node, "images", "import", "--no-unpack=false", str(archive))
        if proc.returncode != 0:
            raise RealNodeError(f"importing {archive} into {node.name}: {proc.stderr.strip()}")
        stamp.write_text(key)
        say(f"  {node.name:<24} imported {archive.name} in {time.monotonic() - started:.1f}s")


def node_manifest_patch(node: RealNode) -> dict[str, Any]:
    """The labels a kubelet may not set on itself (node-role.kubernetes.io/*, ours)."""
    return {"metadata": {"labels": node.spec.labels}}


# ---- cleanup ---------------------------------------------------------------------------


def _cgroup_dirs(node: RealNode) -> list[Path]:
    """The node's cgroups, deepest first."""
    found: list[Path] = []
    for hierarchy in _hierarchies():
        root = hierarchy / node.cgroup_name
        if root.is_dir():
            found += [Path(d) for d, _, _ in os.walk(root)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids(node: RealNode) -> set[int]:
    pids: set[int] = set()
    for d in _cgroup_dirs(node):
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
    return pids


def kill_pods(node: RealNode, timeout: float = 10) -> None:
    """SIGKILL every process in the node's cgroups (the containers' processes carry no
    marker: their environment is the image's) and wait for them to go."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = _cgroup_pids(node)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _mounts_under(paths: Iterable[Path]) -> list[str]:
    prefixes = [str(p).rstrip("/") + "/" for p in paths]
    exact = {str(p) for p in paths}
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point in exact or any(point.startswith(pre) for pre in prefixes):
            found.append(point)
    # Deepest first, so a mount inside another goes before it.
    return sorted(set(found), key=lambda m: m.count("/"), reverse=True)


def _recorded_netns(node: RealNode) -> list[Path]:
    if not node.netns_record.exists():
        return []
    # containerd names them under /var/run, which mountinfo shows as /run.
    return [Path(line).resolve() for line in node.netns_record.read_text().split() if line]


def clean(node: RealNode, say: Callable[[str], None]) -> None:
    """Remove everything of a stopped node outside its directory (its processes must be
    stopped already): pods' processes, mounts, netns files, cgroups, its bridge."""
    kill_pods(node)
    for point in _mounts_under([node.dir, *_recorded_netns(node)]):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    for ns in _recorded_netns(node):
        with contextlib.suppress(OSError):
            ns.unlink()
    node.netns_record.unlink(missing_ok=True)
    for d in _cgroup_dirs(node):
        with contextlib.suppress(OSError):
            d.rmdir()
    network.delete_bridge(node.spec.index, node.name)
    shutil.rmtree(node.run_dir, ignore_errors=True)
    for parent in (node.run_dir.parent, RUN_ROOT):  # shared with other clusters' nodes
        with contextlib.suppress(OSError):
            parent.rmdir()
    for pidfile in node.forwards_dir.glob("*.pid") if node.forwards_dir.exists() else []:
        pidfile.unlink(missing_ok=True)
    say(f"  cleaned {node.name}")


def remove_node_dir(node: RealNode) -> None:
    """Delete the node's directory (after `clean`: nothing may be mounted in it)."""
    shutil.rmtree(node.dir, ignore_errors=True)


def clean_host_paths(settings: Settings) -> None:
    """Remove the host paths the cluster created (kept in the record, which `up` writes
    once, before anything ran), at `down`."""
    record = settings.cluster_dir / "real" / "created-host-paths.txt"
    if not record.exists():
        return
    for line in record.read_text().split():
        path = Path(line)
        if path in (Path("/run/netns"), Path("/var/run/netns")):
            _remove_netns_dir(path)
            continue
        if path.exists() and not _mounts_under([path]):
            shutil.rmtree(path, ignore_errors=True)


def _remove_netns_dir(path: Path) -> None:
    """Remove /run/netns if no namespace is pinned in it.

    It is shared with the process nodes and `ip netns`, so it goes only when empty. The
    first `ip netns add` (and the CNI's netns code) bind-mounts the directory onto
    itself to make it a shared mount; rmdir then fails with EBUSY, so that self-mount
    is unmounted first."""
    real = path.resolve()
    if not real.is_dir() or any(real.iterdir()):
        return
    # Mounted once per `ip netns` that raced to set it up; each mount is a stacked self-bind.
    for _ in range(8):
        if str(real) not in _mounts_under([real]):
            break
        subprocess.run(["umount", str(real)], capture_output=True, check=False)
    with contextlib.suppress(OSError):
        real.rmdir()


def leftovers(node: RealNode) -> list[str]:
    """What of a stopped node is still there."""
    found = [f"cgroup {d}" for d in _cgroup_dirs(node)]
    found += [f"mount {m}" for m in _mounts_under([node.dir, *_recorded_netns(node)])]
    if network.link_exists(network.bridge_name(node.spec.index)):
        found.append(f"link {network.bridge_name(node.spec.index)}")
    if node.run_dir.exists():
        found.append(f"path {node.run_dir}")
    return found


def host_leftovers(settings: Settings) -> list[str]:
    """Host state of the tier after `down`: iptables chains, host paths it created."""
    found = []
    # Without iptables (a machine where the tier never ran: it installs the package) no
    # kubelet or CNI plugin of ours can have made a chain.
    iptables_save = shutil.which("iptables-save") or shutil.which("iptables-save", path=SBIN)
    rules = (
        subprocess.run([iptables_save], capture_output=True, text=True, check=False).stdout
        if iptables_save
        else ""
    )
    for line in rules.splitlines():
        if line.startswith(":") and line[1:].split()[0].startswith(("KUBE-", "CNI-")):
            found.append(f"iptables chain {line[1:].split()[0]}")
    record = settings.cluster_dir / "real" / "created-host-paths.txt"
    if record.exists():
        # /var/run is /run on Debian: each directory is named once, as it resolves.
        paths = {Path(p).resolve() for p in record.read_text().split()}
        found += [f"path {p}" for p in sorted(paths) if p.exists()]
    return found


def marker_env(settings: Settings) -> dict[str, str]:
    """The marker every process of the tier carries (containerd passes it to shims and
    CNI plugins, and they to the forwarders)."""
    return {MARKER_ENV: str(settings.cluster_dir)}
