"""`up`, `down` and `status` of the local cluster.

`up` is idempotent: a running component is left alone, a crashed one is reported
and restarted. `down` stops everything by PID, then sweeps for strays by the
cluster's marker, and removes the network namespaces and links the node agent made.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from localcluster import build, components, fleet, objectstore, pauseimage, pki, realnodes
from localcluster.processes import (
    Component,
    ComponentError,
    Supervisor,
    find_strays,
    port_in_use,
    terminate,
)
from localcluster.settings import S3_BUCKET, Settings

# Names of the network objects the node agent creates (see localcluster.agent.network).
NETNS_PREFIX = "emlp-"
LINK_PREFIXES = ("emlbr", "emlv")


LEASE_FRESHNESS = timedelta(seconds=10)


class ClusterError(RuntimeError):
    """`up` could not bring the cluster up; the message says what to do."""


def supervisor(settings: Settings) -> Supervisor:
    """The PID-file supervisor of this cluster's processes."""
    return Supervisor(str(settings.cluster_dir), settings.pid_dir, settings.log_dir)


def kube_client(settings: Settings) -> Any:
    """A kubernetes CoreV1Api on the admin kubeconfig."""
    from kubernetes import client, config  # local: the build step must not need it

    api = config.new_client_from_config(config_file=str(settings.kubeconfig))  # type: ignore[no-untyped-call]
    return client.CoreV1Api(api)


def _write_kubeconfigs(settings: Settings) -> None:
    server = f"https://127.0.0.1:{settings.ports.apiserver}"
    for ident in pki.CLIENTS:
        pki.write_kubeconfig(
            components.kubeconfig_for(settings, ident.file_stem),
            settings.pki_dir,
            ident.file_stem,
            server,
        )


def _node_ready(node: Any) -> bool:
    for cond in node.status.conditions or []:
        if cond.type == "Ready":
            return bool(cond.status == "True")
    return False


def _nodes_ready(settings: Settings, names: set[str]) -> Callable[[], bool]:
    def check() -> bool:
        nodes = kube_client(settings).list_node().items
        ready = {n.metadata.name for n in nodes if _node_ready(n)}
        return names <= ready

    return check


def _leases_renewed(
    settings: Settings, names: set[str], started: Path | None = None
) -> Callable[[], bool]:
    """Ready means fresh heartbeats (the agent renews every 5 s): a Ready condition or a
    lease may be left over from an agent that is gone. With `started` (a PID file): also
    renewed since that file was written, by the process it names, not a predecessor."""
    from kubernetes import client

    def check() -> bool:
        since = datetime.now(UTC) - LEASE_FRESHNESS
        if started is not None:
            since = max(since, datetime.fromtimestamp(started.stat().st_mtime, UTC))
        api = client.CoordinationV1Api(kube_client(settings).api_client)
        for name in names:
            spec = api.read_namespaced_lease(name, "kube-node-lease").spec
            renewed = spec.renew_time if spec is not None else None
            if renewed is None or renewed < since:
                return False
        return _nodes_ready(settings, names)()

    return check


def _ensure(sup: Supervisor, comp: Component, say: Callable[[str], None]) -> None:
    state = sup.state(comp.name)
    if state == "running":
        try:
            healthy = comp.ready()
        except Exception:  # a probe that cannot connect is simply "not healthy"
            healthy = False
        if healthy:
            say(f"  {comp.name:<24} already running (pid {sup.pid(comp.name)})")
            return
        say(f"  {comp.name:<24} running but not healthy: restarting")
        sup.stop(comp.name)
    elif state == "crashed":
        say(
            f"  {comp.name:<24} had stopped unexpectedly; the end of its log:\n"
            + _indent(sup.log_tail(comp.name, 10))
            + "\n  restarting it"
        )
        sup.pid_file(comp.name).unlink(missing_ok=True)
    started = time.monotonic()
    pid = sup.start(comp)
    say(f"  {comp.name:<24} ready in {time.monotonic() - started:5.1f}s (pid {pid})")


def _indent(text: str) -> str:
    return "\n".join("    | " + line for line in text.splitlines())


def up(
    settings: Settings, kwok_edge: int | None = None, say: Callable[[str], None] = print
) -> None:
    """Bring the whole cluster up, or repair it; return when every node is Ready."""
    started = time.monotonic()
    try:
        build.ensure_built(settings)
    except build.BuildError as err:
        raise ClusterError(str(err)) from err
    settings.cluster_dir.mkdir(parents=True, exist_ok=True)
    realnodes.record_host_paths(settings)
    pki.ensure_pki(settings.pki_dir)
    _write_kubeconfigs(settings)
    specs = fleet.plan_fleet(settings.fleet, kwok_edge)
    process_nodes = [s for s in specs if s.simulator == "process"]
    components.nodes_file(settings).write_text(
        json.dumps([s.to_agent_json() for s in process_nodes], indent=1)
    )
    sup = supervisor(settings)
    say(f"local cluster in {settings.cluster_dir}")
    try:
        for comp in (
            components.etcd(settings),
            components.kube_apiserver(settings),
            components.kube_controller_manager(settings),
            components.kube_scheduler(settings),
            components.kwok(settings),
        ):
            _ensure(sup, comp, say)
        core = kube_client(settings)
        created = fleet.apply_kwok_nodes(core, specs)
        removed = _remove_extra_kwok_nodes(core, specs)
        kwok_names = {s.name for s in specs if s.simulator == "kwok"}
        say(f"  kwok nodes               {len(kwok_names)} ({created} created, {removed} removed)")
        _ensure(sup, components.mlflow(settings), say)
        _ensure(sup, components.object_store(settings), say)
        objectstore.ensure_bucket(settings, S3_BUCKET)
        if process_nodes:
            ready = _leases_renewed(settings, {s.name for s in process_nodes})
            _ensure(sup, components.node_agent(settings, ready), say)
        _ensure_real_nodes(settings, sup, specs, say)
        # About 50 s for 1,000 nodes on 2 busy cores (docs/local-cluster.md); scale with count.
        _wait(
            _nodes_ready(settings, kwok_names),
            120 + 0.2 * len(kwok_names),
            "KWOK nodes to become Ready",
        )
    except (ComponentError, realnodes.RealNodeError, pauseimage.PauseImageError) as err:
        raise ClusterError(f"{err}\n`hack/cluster down` cleans up what was started.") from err
    except build.BuildError as err:
        raise ClusterError(str(err)) from err
    took = time.monotonic() - started
    say(f"cluster ready in {took:.1f}s: export KUBECONFIG={settings.kubeconfig}")


def _ensure_real_nodes(
    settings: Settings, sup: Supervisor, specs: list[fleet.NodeSpec], say: Callable[[str], None]
) -> None:
    """Start (or repair) the planned real-kubelet nodes; stop and remove the others."""
    wanted = realnodes.nodes(settings, specs)
    core = kube_client(settings)
    for node in realnodes.known_nodes(settings):
        if node.name not in {w.name for w in wanted}:
            _stop_real_node(sup, node, say)
            realnodes.clean(node, say)
            realnodes.remove_node_dir(node)
            with contextlib.suppress(Exception):  # already gone is fine
                core.delete_node(node.name)
            say(f"  {node.name:<24} removed")
    if not wanted:
        return
    realnodes.check_host()
    build.ensure_built(settings, real_nodes=True)
    pause = pauseimage.ensure_pause_image(settings)
    if not list(realnodes.images_dir(settings).glob("edgeml-*.tar")):
        say("  (no project images yet: `hack/images build` makes them for the real nodes)")
    for node in wanted:
        realnodes.prepare(node, settings)
        _ensure(sup, realnodes.containerd(node), say)
        pool = node.spec.labels.get(fleet.POOL_LABEL, "")
        realnodes.import_images(node, [pause, *realnodes.image_archives(settings, pool)], say)
        kubelet_pid = sup.pid_file(node.component_names()[1])
        renewed = _leases_renewed(settings, {node.name}, started=kubelet_pid)
        _ensure(sup, realnodes.kubelet(node, settings, renewed), say)
        # Labels a kubelet may not give itself (node-role.kubernetes.io/*), set once it
        # registered; its taints keep everything off it until then.
        core.patch_node(node.name, realnodes.node_manifest_patch(node))


def _stop_real_node(sup: Supervisor, node: realnodes.RealNode, say: Callable[[str], None]) -> None:
    containerd_name, kubelet_name = node.component_names()
    if sup.stop(kubelet_name, grace=10):
        say(f"  stopped {kubelet_name}")
    # The containers' processes carry no marker: kill them by cgroup before containerd
    # (and its shims) go, so no shim is left waiting for them.
    realnodes.kill_pods(node)
    if sup.stop(containerd_name, grace=10):
        say(f"  stopped {containerd_name}")


def _remove_extra_kwok_nodes(core: Any, specs: list[fleet.NodeSpec]) -> int:
    wanted = {s.name for s in specs}
    extra = [
        n.metadata.name
        for n in core.list_node(label_selector=f"{fleet.SIMULATOR_LABEL}=kwok").items
        if n.metadata.name not in wanted
    ]
    for name in extra:
        core.delete_node(name)
    return len(extra)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The API may blink while components start: an error is just "not yet".
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


COMPONENT_ORDER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "mlflow",
    "s3",
    "node-agent",
)


def _netns_leftovers() -> list[str]:
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(NETNS_PREFIX)]


def _link_leftovers() -> list[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=False
    ).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith(LINK_PREFIXES)]


def _has_process_nodes(settings: Settings) -> bool:
    # The node agent's network objects are named without a cluster prefix (interface
    # names are short), so only a cluster with process nodes may sweep them.
    return settings.fleet.process_edge + settings.fleet.process_training > 0


def _remove_created_mountpoints(settings: Settings) -> None:
    record = settings.cluster_dir / "agent" / "created-mountpoints.txt"
    if not record.exists():
        return
    for line in reversed(record.read_text().splitlines()):
        path = Path(line.strip())
        # Only empty directories and empty files the agent itself created.
        try:
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            elif path.is_file() and path.stat().st_size == 0:
                path.unlink()
        except OSError:
            continue
    record.unlink()


def down(settings: Settings, purge: bool = False, say: Callable[[str], None] = print) -> list[str]:
    """Stop everything the cluster started; return what could not be cleaned (empty if all)."""
    sup = supervisor(settings)
    real = realnodes.known_nodes(settings)
    for node in real:
        _stop_real_node(sup, node, say)
    for name in reversed(COMPONENT_ORDER):
        if sup.stop(name, grace=20 if name == "node-agent" else 10):
            say(f"  stopped {name}")
    strays = find_strays(str(settings.cluster_dir))
    if strays:
        say(f"  stopping {len(strays)} stray processes: {strays}")
        terminate(strays, 5, str(settings.cluster_dir))
    for node in real:
        realnodes.clean(node, say)
    if _has_process_nodes(settings):
        for ns in _netns_leftovers():
            subprocess.run(["ip", "netns", "delete", ns], check=False)
        for link in _link_leftovers():
            subprocess.run(["ip", "link", "delete", link], check=False)
        _remove_created_mountpoints(settings)
    realnodes.clean_host_paths(settings)
    if purge and settings.cluster_dir.exists():
        shutil.rmtree(settings.cluster_dir)
        say(f"  removed {settings.cluster_dir}")
    return leftovers(settings)


def leftovers(settings: Settings) -> list[str]:
    """Anything of the cluster still alive: processes, network namespaces, links, ports."""
    found = [f"process {pid}" for pid in find_strays(str(settings.cluster_dir))]
    for node in realnodes.known_nodes(settings):
        found += realnodes.leftovers(node)
    found += realnodes.host_leftovers(settings)
    if _has_process_nodes(settings):
        found += [f"netns {ns}" for ns in _netns_leftovers()]
        found += [f"link {link}" for link in _link_leftovers()]
    p = settings.ports
    for name, port in (
        ("etcd", p.etcd),
        ("kube-apiserver", p.apiserver),
        ("kube-controller-manager", p.controller_manager),
        ("kube-scheduler", p.scheduler),
        ("kwok", p.kwok),
        ("mlflow", p.mlflow),
        ("s3", p.s3),
    ):
        if port_in_use(port):
            found.append(f"port {port} ({name}'s) still answers")
    return found


@dataclass(frozen=True)
class ComponentStatus:
    """One row of `status`."""

    name: str
    state: str
    pid: int | None


def status(settings: Settings) -> list[ComponentStatus]:
    """The state of every component, from PID files checked against live processes."""
    sup = supervisor(settings)
    names = [n for n in COMPONENT_ORDER if n != "node-agent" or _has_process_nodes(settings)]
    for node in realnodes.known_nodes(settings):
        names += node.component_names()
    return [ComponentStatus(n, sup.state(n), sup.pid(n)) for n in names]


def node_summary(settings: Settings) -> dict[str, dict[str, int]]:
    """Ready / total nodes per simulator and pool, read from the API server."""
    summary: dict[str, dict[str, int]] = {}
    for node in kube_client(settings).list_node().items:
        labels = node.metadata.labels or {}
        key = f"{labels.get(fleet.SIMULATOR_LABEL, '?')}/{labels.get(fleet.POOL_LABEL, '?')}"
        row = summary.setdefault(key, {"ready": 0, "total": 0})
        row["total"] += 1
        row["ready"] += int(_node_ready(node))
    return summary


def set_node_offline(settings: Settings, name: str, offline: bool) -> None:
    """Take a process node offline (heartbeats stop, its network is cut) or bring it back."""
    known = json.loads(components.nodes_file(settings).read_text())
    if name not in {n["name"] for n in known}:
        raise ClusterError(
            f"{name} is not a process node of this cluster: {[n['name'] for n in known]}"
        )
    flag = settings.cluster_dir / "agent" / "nodes" / name / "offline"
    if offline:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text("offline\n")
    else:
        flag.unlink(missing_ok=True)
