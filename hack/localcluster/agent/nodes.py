"""The node part: register each Node, keep it Ready (Lease + status), simulate outages.

Pure builders make the Node, Lease and status bodies; `NodeAgent` runs one node:
its bridge, its heartbeat thread (which also polls the offline flag) and its pod
watch thread, which hands pods to `PodWorker`s.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.agent import containers, log, network
from localcluster.agent.context import NodeContext
from localcluster.agent.kube import STRATEGIC_PATCH, ApiError, now_micro, now_rfc3339
from localcluster.agent.pods import PodWorker
from localcluster.agent.resources import NODE_CAPACITY
from localcluster.agent.status import TERMINAL_PHASES

Obj = dict[str, Any]

KUBELET_VERSION = "v1.35.4"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 20
LEASE_RENEW = 5.0
STATUS_EVERY = 10.0
POLL = 1.0
WATCH_SECONDS = 120
# Taints the node controller manages (unreachable, not-ready...): never overwritten.
CONTROLLER_TAINT_PREFIX = "node.kubernetes.io/"


@dataclass(frozen=True)
class NodeConfig:
    """One entry of the nodes file."""

    name: str
    index: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Obj, ...] = ()


def load_nodes(path: Path) -> list[NodeConfig]:
    """Read and check the nodes file: names and indexes (1..200) unique."""
    raw = json.loads(path.read_text())
    nodes = [
        NodeConfig(
            name=str(n["name"]),
            index=int(n["index"]),
            labels={str(k): str(v) for k, v in (n.get("labels") or {}).items()},
            taints=tuple(dict(t) for t in n.get("taints") or []),
        )
        for n in raw
    ]
    for n in nodes:
        if not 1 <= n.index <= 200:
            raise ValueError(f"node {n.name}: index {n.index} is not in 1..200")
    if len({n.name for n in nodes}) != len(nodes) or len({n.index for n in nodes}) != len(nodes):
        raise ValueError("node names and indexes must be unique")
    return nodes


def merge_taints(configured: Iterable[Obj], existing: Iterable[Obj]) -> list[Obj]:
    """Our taints plus the node controller's, which it adds and removes itself."""
    out = [dict(t) for t in configured]
    keys = {(t.get("key"), t.get("effect")) for t in out}
    for t in existing:
        key = str(t.get("key", ""))
        if key.startswith(CONTROLLER_TAINT_PREFIX) and (key, t.get("effect")) not in keys:
            out.append(dict(t))
    return out


def node_object(cfg: NodeConfig) -> Obj:
    """The Node to create."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": cfg.name, "labels": dict(cfg.labels)},
        "spec": {"taints": [dict(t) for t in cfg.taints]} if cfg.taints else {},
    }


_CONDITIONS = (
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def node_status(cfg: NodeConfig, previous: list[Obj], now: str) -> Obj:
    """The Node status a healthy kubelet posts; unchanged conditions keep their transition time."""
    before = {c.get("type"): c for c in previous}
    conditions = []
    for ctype, status, reason, message in _CONDITIONS:
        old = before.get(ctype) or {}
        conditions.append(
            {
                "type": ctype,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": old["lastTransitionTime"]
                if old.get("status") == status and old.get("lastTransitionTime")
                else now,
            }
        )
    return {
        "capacity": dict(NODE_CAPACITY),
        "allocatable": dict(NODE_CAPACITY),
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": network.gateway_ip(cfg.index)},
            {"type": "Hostname", "address": cfg.name},
        ],
        "nodeInfo": {
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "process://edgeml-agent",
            "operatingSystem": "linux",
            "architecture": cfg.labels.get("kubernetes.io/arch", "amd64"),
            "osImage": "edgeml process node",
            "kernelVersion": "",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
    }


def lease_object(node: str, node_uid: str, renew_time: str) -> Obj:
    """The node's Lease in kube-node-lease, owned by the Node like kubelet's."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": renew_time,
        },
    }


class NodeAgent:
    """Runs one node: bridge, registration, heartbeats, offline simulation and its pods."""

    def __init__(self, cfg: NodeConfig, ctx: NodeContext) -> None:
        """Nothing happens until `start()`."""
        self.cfg = cfg
        self.ctx = ctx
        self.who = log.subject(cfg.name)
        self._stop = threading.Event()
        self._relist = threading.Event()
        self._workers: dict[str, PodWorker] = {}
        self._finished: set[str] = (
            set()
        )  # pods this agent already deleted: ignore their last events
        self._workers_lock = threading.Lock()
        self._node_uid = ""
        self._conditions: list[Obj] = []
        self._threads: list[threading.Thread] = []
        self._first_list = True

    # ---- lifecycle ----

    def start(self) -> None:
        """Create the bridge, then start the heartbeat and pod watch threads."""
        self.ctx.pods_dir.mkdir(parents=True, exist_ok=True)
        network.ensure_bridge(self.cfg.index, self.who)
        offline = self.ctx.offline_flag.exists()
        if offline:
            network.set_bridge_up(self.cfg.index, False, self.who)
            log.warn(self.who, "starting offline (the offline flag is set)")
        else:
            self.ctx.online.set()
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._watch_loop, "watch")):
            t = threading.Thread(target=target, name=f"{self.cfg.name}-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop heartbeats and watches, stop every pod's processes, remove the bridge.

        The Node object stays: it goes NotReady, like a node whose kubelet stopped.
        """
        self._stop.set()
        with self._workers_lock:
            workers = list(self._workers.values())
        for w in workers:
            w.shutdown()
        deadline = time.monotonic() + 15
        for w in workers:
            if not w.done.wait(max(0.0, deadline - time.monotonic())):
                log.warn(w.who, "worker did not stop in time")
        for t in self._threads:
            t.join(timeout=2)  # a watch blocked in a read is a daemon thread: not worth waiting for
        network.delete_bridge(self.cfg.index, self.who)
        log.info(self.who, "stopped")

    # ---- registration and heartbeats ----

    def _register(self) -> None:
        """Create the Node, or bring its labels and taints in line with the nodes file."""
        path = f"/api/v1/nodes/{self.cfg.name}"
        try:
            node = self.ctx.kube.request("GET", path)
        except ApiError as e:
            if e.status != 404:
                raise
            node = self.ctx.kube.request("POST", "/api/v1/nodes", body=node_object(self.cfg))
            log.info(self.who, "registered the node")
        else:
            spec = node.get("spec") or {}
            patch = {
                "metadata": {"labels": dict(self.cfg.labels)},
                "spec": {"taints": merge_taints(self.cfg.taints, spec.get("taints") or [])},
            }
            node = self.ctx.kube.request("PATCH", path, body=patch, content_type=STRATEGIC_PATCH)
            log.info(self.who, "updated the existing node")
        self._node_uid = node["metadata"]["uid"]
        self._conditions = list((node.get("status") or {}).get("conditions") or [])

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{self.cfg.name}"
        body = lease_object(self.cfg.name, self._node_uid, now_micro())
        try:
            self.ctx.kube.request(
                "PATCH", path, body={"spec": body["spec"]}, content_type=STRATEGIC_PATCH
            )
        except ApiError as e:
            if e.status != 404:
                raise
            self.ctx.kube.request(
                "POST",
                f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases",
                body=body,
            )

    def _post_status(self) -> None:
        status = node_status(self.cfg, self._conditions, now_rfc3339())
        try:
            node = self.ctx.kube.request(
                "PATCH",
                f"/api/v1/nodes/{self.cfg.name}/status",
                body={"status": status},
                content_type=STRATEGIC_PATCH,
            )
        except ApiError as e:
            if e.status == 404:
                self._node_uid = ""  # someone deleted the Node: register it again
            raise
        self._conditions = list((node.get("status") or {}).get("conditions") or [])

    def _heartbeat_loop(self) -> None:
        next_lease = next_status = 0.0
        failing = False
        while not self._stop.is_set():
            self._check_offline_flag()
            if self.ctx.is_online():
                now = time.monotonic()
                try:
                    if not self._node_uid:
                        self._register()
                        next_lease = next_status = now
                    if now >= next_status:
                        self._post_status()
                        next_status = now + STATUS_EVERY
                    if now >= next_lease:
                        self._renew_lease()
                        next_lease = now + LEASE_RENEW
                    if failing:
                        log.info(self.who, "heartbeats are back")
                    failing = False
                except ApiError as e:
                    if not failing:
                        log.warn(self.who, f"heartbeat failed (retrying every second): {e}")
                    failing = True
            self._stop.wait(POLL)

    def _check_offline_flag(self) -> None:
        offline = self.ctx.offline_flag.exists()
        if offline == (not self.ctx.is_online()):
            return
        if offline:
            log.warn(self.who, "going offline: heartbeats stop, network cut, pods keep running")
            self.ctx.online.clear()
            network.set_bridge_up(self.cfg.index, False, self.who)
            for w in self._worker_list():
                w.network_changed(False)
        else:
            log.info(self.who, "back online: network up, heartbeats resume, reconciling pods")
            network.set_bridge_up(self.cfg.index, True, self.who)
            self._node_uid = ""  # re-read the node (conditions, taints) before the first heartbeat
            self.ctx.online.set()
            self._relist.set()
            for w in self._worker_list():
                w.network_changed(True)
                w.resync()

    # ---- pods ----

    def _worker_list(self) -> list[PodWorker]:
        with self._workers_lock:
            return list(self._workers.values())

    def _watch_loop(self) -> None:
        query = {"fieldSelector": f"spec.nodeName={self.cfg.name}"}
        failing = False
        while not self._stop.is_set():
            if not self.ctx.is_online():
                self._stop.wait(POLL)
                continue
            self._relist.clear()
            try:
                listing = self.ctx.kube.request("GET", "/api/v1/pods", query=query)
                if failing:
                    log.info(self.who, "pod watch is back")
                failing = False
                self._reconcile(listing.get("items") or [])
                rv = (listing.get("metadata") or {}).get("resourceVersion", "")
                watch_query = {**query, "resourceVersion": rv, "allowWatchBookmarks": True}
                for event in self.ctx.kube.watch("/api/v1/pods", watch_query, WATCH_SECONDS):
                    if self._stop.is_set() or self._relist.is_set() or not self.ctx.is_online():
                        break
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        break  # 410 Gone and friends: list again
                    if kind == "BOOKMARK":
                        continue
                    if kind == "DELETED":
                        self._forget(obj)
                    else:
                        self._dispatch(obj)
            except ApiError as e:
                if not failing:
                    log.warn(self.who, f"pod watch failed (listing again every 2s): {e}")
                failing = True
                self._stop.wait(2)
            except Exception:
                log.error(
                    self.who,
                    "pod watch crashed: " + traceback.format_exc().strip().replace("\n", " | "),
                )
                self._stop.wait(2)

    def _reconcile(self, pods: list[Obj]) -> None:
        """Bring the workers in line with a full listing (at start and after each outage)."""
        seen = {p["metadata"]["uid"] for p in pods}
        if self._first_list:
            self._first_list = False
            self._clean_stale_dirs(seen)
            for p in pods:
                self._reserve_ip(p)
        for w in self._worker_list():
            if w.uid not in seen:
                self._forget_uid(w.uid)
        for p in pods:
            self._dispatch(p)

    def _reserve_ip(self, pod: Obj) -> None:
        """Keep the address a running pod had before an agent restart."""
        meta = pod["metadata"]
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return
        ip_file = self.ctx.pods_dir / f"{meta.get('namespace')}_{meta['name']}_{meta['uid']}" / "ip"
        try:
            octet = int(ip_file.read_text().strip().rsplit(".", 1)[-1])
        except (OSError, ValueError):
            return
        self.ctx.claim_ip(meta["uid"], octet)

    def _clean_stale_dirs(self, live: set[str]) -> None:
        """Pods of an earlier run that no longer exist: kill leftovers, drop netns and secrets."""
        if not self.ctx.pods_dir.exists():
            return
        for d in self.ctx.pods_dir.iterdir():
            uid = d.name.rsplit("_", 1)[-1]
            if not d.is_dir() or uid in live:
                continue
            for pid_file in d.glob("*.pid"):
                if containers.kill_recorded(pid_file):
                    log.info(self.who, f"killed leftover processes of vanished pod {d.name}")
            network.teardown_pod(uid, self.who)
            for name in ("volumes", "home"):
                shutil.rmtree(d / name, ignore_errors=True)
            for pattern in ("*.launch.json", "ip"):
                for f in d.glob(pattern):
                    f.unlink(missing_ok=True)

    def _dispatch(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self._workers_lock:
            worker = self._workers.get(uid)
            if worker is None:
                if self._stop.is_set() or uid in self._finished:
                    return
                worker = PodWorker(self.ctx, pod)
                self._workers[uid] = worker
                log.info(worker.who, f"pod assigned (uid {uid})")
                threading.Thread(target=self._reap_worker, args=(worker,), daemon=True).start()
                worker.start()
                return
        worker.update(pod)

    def _reap_worker(self, worker: PodWorker) -> None:
        """Forget a worker once it finished (its pod was deleted)."""
        worker.done.wait()
        with self._workers_lock:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]
                if not self._stop.is_set():
                    self._finished.add(worker.uid)

    def _forget(self, pod: Obj) -> None:
        self._forget_uid(pod["metadata"]["uid"])

    def _forget_uid(self, uid: str) -> None:
        with self._workers_lock:
            worker = self._workers.get(uid)
        if worker is not None:
            worker.vanish()
