"""The kubelet part: one worker thread per pod runs its sandbox, volumes and containers.

The worker is level-triggered: every tick (a second, or sooner when woken) it
looks at the latest pod object and its processes, does the next step, and
reports the status the pure `status` module computes.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.agent import containers, env, events, log, network, probes, resources, volumes
from localcluster.agent.context import NodeContext
from localcluster.agent.forward import Forwarder
from localcluster.agent.kube import MERGE_PATCH, ApiError, now_rfc3339
from localcluster.agent.restarts import Backoff, after_restart, restart_delay, should_restart
from localcluster.agent.status import (
    TERMINAL_PHASES,
    ContainerView,
    PodView,
    Running,
    State,
    Terminated,
    Waiting,
    pod_status,
)

Obj = dict[str, Any]

TICK = 1.0
VOLUME_REFRESH = 60.0  # kubelet resyncs ConfigMap/Secret volumes about once a minute
RETRY = 5.0  # setup steps that failed are retried this often
SHUTDOWN_GRACE = 5.0  # agent exit: SIGTERM, then SIGKILL after this long
TOKEN_REFRESH = 0.8  # a token is renewed after 80% of its lifetime, like kubelet
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"


@dataclass
class ContainerRun:
    """One container of the pod: its spec and what its processes did so far."""

    spec: Obj
    init: bool
    state: State = field(default_factory=lambda: Waiting(CONTAINER_CREATING))
    restart_count: int = 0
    last_state: Terminated | None = None
    has_run: bool = False
    popen: subprocess.Popen[bytes] | None = None
    pid: int = 0
    container_id: str = ""
    started_at: str = ""
    backoff: Backoff | None = None
    finished_mono: float = 0.0
    started: bool = False
    ready: bool = False
    generation: int = 0
    probers: dict[str, probes.Prober] = field(default_factory=dict)
    probe_results: dict[str, probes.ProbeState] = field(default_factory=dict)
    kill_reason: str = ""
    kill_deadline: float = 0.0
    retry_at: float = 0.0
    log_offset: int = 0
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self.spec["name"])

    def view(self) -> ContainerView:
        """This container as the status computation sees it."""
        return ContainerView(
            name=self.name,
            image=str(self.spec.get("image", "")),
            state=self.state,
            restart_count=self.restart_count,
            last_state=self.last_state,
            ready=self.ready,
            started=self.started,
            container_id=self.container_id if isinstance(self.state, Running | Terminated) else "",
        )


class ApiSources:
    """ConfigMaps, Secrets and tokens for one pod; the last good copies serve offline spells."""

    def __init__(self, ctx: NodeContext, pod_ref: Obj) -> None:
        """`pod_ref` is the pod's name and uid (tokens are bound to it)."""
        self._ctx = ctx
        self._pod_ref = pod_ref
        self._cache: dict[str, Obj | None] = {}
        self._tokens: dict[tuple[str, str, str, int], tuple[str, float]] = {}

    def _get(self, path: str) -> Obj | None:
        if not self._ctx.is_online():
            if path in self._cache:
                return self._cache[path]
            raise volumes.VolumeNotReadyError("the node is offline")
        try:
            obj: Obj | None = self._ctx.kube.request("GET", path)
        except ApiError as e:
            if e.status == 404:
                obj = None
            elif path in self._cache:
                return self._cache[path]
            else:
                raise volumes.VolumeNotReadyError(f"cannot read {path}: {e}") from e
        self._cache[path] = obj
        return obj

    def config_map(self, namespace: str, name: str) -> Obj | None:
        """The ConfigMap, or None if it does not exist."""
        return self._get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")

    def secret(self, namespace: str, name: str) -> Obj | None:
        """The Secret, or None if it does not exist."""
        return self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def service_account_token(
        self, namespace: str, service_account: str, audience: str, expiration: int
    ) -> str:
        """A token from the TokenRequest API, bound to the pod; renewed at 80% of its life."""
        key = (namespace, service_account, audience, expiration)
        cached = self._tokens.get(key)
        now = time.monotonic()
        if cached and (now - cached[1] < TOKEN_REFRESH * expiration or not self._ctx.is_online()):
            return cached[0]
        if not self._ctx.is_online():
            raise volumes.VolumeNotReadyError("the node is offline")
        spec: Obj = {
            "expirationSeconds": expiration,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", **self._pod_ref},
        }
        if audience:
            spec["audiences"] = [audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        try:
            answer = self._ctx.kube.request("POST", path, body=body)
        except ApiError as e:
            if cached:
                return cached[0]
            raise volumes.VolumeNotReadyError(
                f"cannot get a token for service account {service_account}: {e}"
            ) from e
        token = str((answer.get("status") or {}).get("token", ""))
        self._tokens[key] = (token, now)
        return token


class PodWorker:
    """Runs one pod on one node, from first sight until it is deleted (or the agent stops)."""

    def __init__(self, ctx: NodeContext, pod: Obj) -> None:
        """Prepare the worker; `start()` runs it."""
        meta = pod["metadata"]
        self.ctx = ctx
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta.get("namespace", "default")
        self.name: str = meta["name"]
        self.who = log.subject(ctx.name, self.namespace, self.name)
        self.dir = ctx.pods_dir / f"{self.namespace}_{self.name}_{self.uid}"
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._vanished = False
        self._stopping = False
        self._force_status = True
        spec = pod.get("spec") or {}
        self._host_network = bool(spec.get("hostNetwork"))
        self._policy = str(spec.get("restartPolicy") or "Always")
        self._runs = [ContainerRun(c, True) for c in spec.get("initContainers") or []] + [
            ContainerRun(c, False) for c in spec.get("containers") or []
        ]
        self._sources = ApiSources(ctx, {"name": self.name, "uid": self.uid})
        self._pod_ip = ""
        self._start_time = ""
        self._sandbox_ready = False
        self._forwarder: Forwarder | None = None
        self._sandbox_retry_at = 0.0
        self._volumes_ready = False
        self._volume_refresh_at = 0.0
        self._volume_error: volumes.VolumeError | None = None
        self._terminal = False
        self._frozen = False  # terminal before this agent saw it: never report, only delete
        self._deleting = False
        self._last_pushed: Obj | None = None
        self._last_error = ""
        self._conditions: dict[str, tuple[str, str]] = {}
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)

    # ---- inputs (any thread) ----

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def update(self, pod: Obj) -> None:
        """A newer version of the pod object."""
        with self._lock:
            self.pod = pod
        self._wake.set()

    def vanish(self) -> None:
        """The pod is gone from the API (force-deleted, or deleted while the node was offline)."""
        self._vanished = True
        self._wake.set()

    def shutdown(self) -> None:
        """The agent is stopping: kill the processes and tear down the network, report nothing."""
        self._stopping = True
        self._wake.set()

    def resync(self) -> None:
        """Report the full status again (the node is back online)."""
        self._force_status = True
        self._wake.set()

    # ---- the loop ----

    def _run(self) -> None:
        try:
            self._adopt()
            while True:
                try:
                    if self._sync():
                        return
                except Exception:
                    log.error(
                        self.who,
                        "sync failed: " + traceback.format_exc().strip().replace("\n", " | "),
                    )
                self._wake.wait(TICK)
                self._wake.clear()
        finally:
            self.done.set()

    def _sync(self) -> bool:
        """One step; True when the worker is finished."""
        if self._stopping:
            self._kill_all(SHUTDOWN_GRACE)
            self._teardown_sandbox(release=False)
            return True
        if self._vanished:
            log.info(self.who, "pod is gone from the API: stopping it")
            self._kill_all(2.0)
            self._teardown_sandbox(release=True)
            self._scrub()
            return True
        with self._lock:
            pod = self.pod
        meta = pod.get("metadata") or {}
        if self._deleting or meta.get("deletionTimestamp"):
            # Offline, a deletion waits for the uplink; nothing restarts meanwhile.
            return self._delete(pod) if self.ctx.is_online() else False
        if self._frozen:
            return False
        if not self._terminal:
            self._ensure_sandbox()
            if self._sandbox_ready:  # downward API files need the pod's address
                self._ensure_volumes()
            self._reap()
            self._apply_probe_results()
            self._handle_kills()
            self._advance()
        self._report()
        return False

    # ---- adoption (first sight, maybe after an agent restart) ----

    def _adopt(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for pid_file in self.dir.glob("*.pid"):
            killed = containers.kill_recorded(pid_file)
            if killed:
                log.info(self.who, f"killed leftover process {killed} of a previous agent")
        status = self.pod.get("status") or {}
        self._start_time = status.get("startTime") or ""
        if status.get("phase") in TERMINAL_PHASES:
            self._terminal = self._frozen = True
            self._pod_ip = status.get("podIP") or ""
            return
        by_name = {
            s.get("name"): s
            for s in (status.get("initContainerStatuses") or [])
            + (status.get("containerStatuses") or [])
        }
        now = now_rfc3339()
        for run in self._runs:
            seen = by_name.get(run.name)
            if not seen:
                continue
            run.restart_count = int(seen.get("restartCount") or 0)
            state = seen.get("state") or {}
            last = _terminated(seen.get("lastState") or {})
            if "running" in state:
                # Its process died with the previous agent: restart it, as a runtime would.
                run.has_run = True
                run.last_state = Terminated(
                    137,
                    "Error",
                    state["running"].get("startedAt") or now,
                    now,
                    "the node agent restarted",
                    signal.SIGKILL,
                    seen.get("containerID", ""),
                )
            elif "terminated" in state:
                done = _terminated(state)
                assert done is not None
                run.has_run = True
                finished_for_good = (
                    done.exit_code == 0
                    if run.init
                    else not should_restart(self._policy, done.exit_code)
                )
                if finished_for_good:
                    run.state = done
                else:
                    run.last_state = done
            elif last is not None:
                run.has_run = True
                run.last_state = last

    # ---- sandbox: netns, address, port forwarding ----

    def _ensure_sandbox(self) -> None:
        if self._sandbox_ready or time.monotonic() < self._sandbox_retry_at:
            return
        if self._host_network:
            self._pod_ip = self.ctx.host_ip
            self._sandbox_ready = True
            return
        ip_file = self.dir / "ip"
        preferred = None
        with contextlib.suppress(OSError, ValueError):
            preferred = int(ip_file.read_text().strip().rsplit(".", 1)[-1])
        try:
            octet = self.ctx.claim_ip(self.uid, preferred)
            address = network.pod_ip(self.ctx.index, octet)
            ip_file.write_text(address + "\n")
            network.setup_pod(self.uid, self.ctx.index, octet, self.who)
            ns_path = network.netns_path(network.netns_name(self.uid))
            if self.ctx.forward_ports:
                fwd = Forwarder(ns_path, self.ctx.forward_ports, self.who, self.ctx.is_online)
                try:
                    fwd.start()
                except OSError:
                    fwd.stop()
                    raise
                self._forwarder = fwd
        except (network.NetworkError, OSError) as e:
            log.error(self.who, f"network setup failed (retrying): {e}")
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            self._sandbox_retry_at = time.monotonic() + RETRY
            network.teardown_pod(self.uid, self.who)
            return
        self._pod_ip = address
        hostname = self._hostname()
        (self.dir / "etc-hosts").write_text(
            "# Kubernetes-managed hosts file (process node).\n"
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{address}\t{hostname}\n"
        )
        self._sandbox_ready = True
        self._force_status = True
        log.info(self.who, f"sandbox ready: {network.netns_name(self.uid)} {address}")

    def _teardown_sandbox(self, *, release: bool) -> None:
        if self._forwarder:
            self._forwarder.stop()
            self._forwarder = None
        if not self._host_network and (self._sandbox_ready or release):
            network.teardown_pod(self.uid, self.who)
        self._sandbox_ready = False
        if release:
            self.ctx.release_ip(self.uid)
            with contextlib.suppress(OSError):
                (self.dir / "ip").unlink()

    def _hostname(self) -> str:
        spec = self.pod.get("spec") or {}
        return str(spec.get("hostname") or self.name)[:63]

    def network_changed(self, online: bool) -> None:
        """The node went offline (cut open connections) or came back."""
        fwd = self._forwarder
        if fwd and not online:
            fwd.drop_connections()

    # ---- volumes ----

    def _ensure_volumes(self) -> None:
        now = time.monotonic()
        if (
            isinstance(self._volume_error, volumes.UnsupportedVolumeError)
            or now < self._volume_refresh_at
        ):
            return
        self._volume_refresh_at = now + (VOLUME_REFRESH if self._volumes_ready else RETRY)
        try:
            volumes.check_supported(self.pod)
            addresses = env.PodAddresses(self._pod_ip, self.ctx.host_ip)
            for vol in (self.pod.get("spec") or {}).get("volumes") or []:
                kind = volumes.volume_kind(vol)
                if kind == "hostPath":
                    volumes.prepare_host_path(vol)
                elif kind == "emptyDir":
                    self._volume_dir(vol).mkdir(parents=True, exist_ok=True)
                else:
                    files = volumes.render(vol, self.pod, self._sources, addresses)
                    volumes.sync_dir(self._volume_dir(vol), files)
        except volumes.VolumeError as e:
            if self._volumes_ready and not isinstance(e, volumes.UnsupportedVolumeError):
                log.warn(self.who, f"volume refresh failed: {e}")
                return
            if str(e) != str(self._volume_error):
                log.warn(self.who, f"volumes not ready: {e}")
                self._event("Warning", "FailedMount", f"MountVolume.SetUp failed: {e}")
            self._volume_error = e
            return
        if not self._volumes_ready:
            log.info(self.who, "volumes ready")
        self._volumes_ready = True
        self._volume_error = None

    def _volume_dir(self, vol: Obj) -> Path:
        return self.dir / "volumes" / str(vol["name"])

    def _volume_source(self, vol: Obj) -> str:
        if volumes.volume_kind(vol) == "hostPath":
            return str((vol.get("hostPath") or {}).get("path", ""))
        return str(self._volume_dir(vol))

    # ---- containers ----

    def _reap(self) -> None:
        for run in self._runs:
            if run.popen is None:
                continue
            rc = run.popen.poll()
            if rc is None:
                continue
            self._finish(run, rc)

    def _finish(self, run: ContainerRun, rc: int) -> None:
        exit_code, sig = containers.exit_status(rc)
        containers.signal_group(
            run.pid, signal.SIGKILL
        )  # its leftovers die with it, as in a container
        message = containers.termination_message(
            self.dir / f"{run.name}.termination-log",
            str(run.spec.get("terminationMessagePolicy") or "File"),
            self.dir / f"{run.name}.log",
            run.log_offset,
            exit_code,
        )
        run.state = Terminated(
            exit_code,
            "Completed" if exit_code == 0 else "Error",
            run.started_at,
            now_rfc3339(),
            message,
            sig,
            run.container_id,
        )
        run.popen = None
        run.finished_mono = time.monotonic()
        run.ready = run.started = False
        run.kill_reason, run.kill_deadline = "", 0.0
        self._stop_probers(run)
        with contextlib.suppress(OSError):
            (self.dir / f"{run.name}.pid").unlink()
        log.info(
            self.who,
            f"container {run.name} exited {exit_code}" + (f" (signal {sig})" if sig else ""),
        )

    def _advance(self) -> None:
        """Start whatever should run next: init containers in order, then the app containers."""
        waiting_reason = ""
        if not self._sandbox_ready or not self._volumes_ready:
            err = self._volume_error
            for run in self._runs:
                if err is not None and isinstance(run.state, Waiting):
                    run.state = Waiting(err.reason, str(err))
            return
        now = time.monotonic()
        for run in (r for r in self._runs if r.init):
            if isinstance(run.state, Running):
                waiting_reason = POD_INITIALIZING
                break
            if isinstance(run.state, Terminated):
                if run.state.exit_code == 0:
                    continue
                if should_restart(self._policy, run.state.exit_code, init=True):
                    self._try_start(run, now)
                waiting_reason = POD_INITIALIZING
                break
            self._try_start(run, now)
            waiting_reason = POD_INITIALIZING
            break
        if waiting_reason:
            for run in self._runs:
                if not run.init and not run.has_run and isinstance(run.state, Waiting):
                    run.state = Waiting(POD_INITIALIZING)
            return
        for run in (r for r in self._runs if not r.init):
            if isinstance(run.state, Running):
                continue
            if isinstance(run.state, Terminated) and not should_restart(
                self._policy, run.state.exit_code
            ):
                continue
            self._try_start(run, now)

    def _try_start(self, run: ContainerRun, now: float) -> None:
        if now < run.retry_at:
            return
        if isinstance(run.state, Terminated):
            run.last_state = run.state
            run.state = Waiting(CONTAINER_CREATING)
        if run.finished_mono:
            # It ran and stopped under this agent: restarts back off like kubelet's.
            delay = restart_delay(run.backoff, run.finished_mono, now)
            if delay > 0:
                assert run.backoff is not None
                if not (isinstance(run.state, Waiting) and run.state.reason == "CrashLoopBackOff"):
                    self._event(
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {run.name} in pod {self.name}",
                        run.name,
                    )
                run.state = Waiting(
                    "CrashLoopBackOff",
                    f"back-off {run.backoff.seconds:g}s restarting failed container={run.name}"
                    f" pod={self.name}_{self.namespace}({self.uid})",
                )
                return
            run.backoff = after_restart(run.backoff, now)
            run.finished_mono = 0.0
        self._start(run)

    def _start(self, run: ContainerRun) -> None:
        try:
            launch = self._launch_for(run)
        except env.ConfigError as e:
            if run.state != Waiting("CreateContainerConfigError", str(e)):
                log.warn(self.who, f"container {run.name}: {e}")
                self._event("Warning", "Failed", f"Error: {e}", run.name)
            run.state = Waiting("CreateContainerConfigError", str(e))
            run.retry_at = time.monotonic() + RETRY
            return
        log_path = self.dir / f"{run.name}.log"
        (self.dir / f"{run.name}.termination-log").write_bytes(b"")
        try:
            run.log_offset = log_path.stat().st_size
        except OSError:
            run.log_offset = 0
        try:
            popen = containers.start(launch, self.dir / f"{run.name}.launch.json", log_path)
        except OSError as e:
            log.error(self.who, f"container {run.name} failed to start: {e}")
            run.state = Waiting("RunContainerError", str(e))
            run.retry_at = time.monotonic() + RETRY
            return
        if run.has_run:
            run.restart_count += 1
        run.has_run = True
        run.popen = popen
        run.pid = popen.pid
        run.container_id = f"process://{popen.pid}"
        run.started_at = now_rfc3339()
        run.state = Running(run.started_at)
        run.generation += 1
        run.env = launch.env
        run.working_dir = launch.working_dir
        containers.write_pid_file(self.dir / f"{run.name}.pid", popen.pid)
        self._event("Normal", "Started", f"Started container {run.name}", run.name)
        log.info(
            self.who,
            f"container {run.name} started: pid {popen.pid}: {' '.join(launch.command)[:200]}",
        )
        specs = probes.container_probes(run.spec)
        with self._lock:
            run.probe_results = {}
        if "startup" in specs:
            self._start_prober(run, specs["startup"])
        else:
            run.started = True
            self._start_after_startup(run, specs)

    def _launch_for(self, run: ContainerRun) -> containers.Launch:
        """The launcher spec of a container (raises ConfigError for what kubelet would refuse)."""
        kube_env = env.service_env(self.ctx.forward_ports[0]) if self.ctx.forward_ports else {}
        addresses = env.PodAddresses(self._pod_ip, self.ctx.host_ip)
        try:
            spec_env = env.container_env(self.pod, run.spec, self._sources, addresses, kube_env)
        except volumes.VolumeNotReadyError as e:
            raise env.ConfigError(str(e)) from e
        home = self.dir / "home"
        home.mkdir(exist_ok=True)
        full_env = env.process_env(
            spec_env,
            python_bin_dir=self.ctx.python_bin_dir,
            home=str(home),
            hostname=self._hostname(),
        )
        command = env.command_line(run.spec, full_env)
        working_dir = str(run.spec.get("workingDir") or self.dir / "work")
        vols = {v["name"]: v for v in (self.pod.get("spec") or {}).get("volumes") or []}
        mounts: list[Obj] = []
        for vm in run.spec.get("volumeMounts") or []:
            vol = vols.get(vm.get("name"))
            if vol is None:
                raise env.ConfigError(f'volumeMount "{vm.get("name")}" names no volume of the pod')
            source = Path(self._volume_source(vol))
            sub = vm.get("subPath") or env.expand(vm.get("subPathExpr") or "", full_env.get)
            if sub:
                if Path(sub).is_absolute() or ".." in Path(sub).parts:
                    raise env.ConfigError(f"invalid subPath {sub!r}")
                source = source / sub
                if not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
            mounts.append(
                {
                    "source": str(source),
                    "target": vm["mountPath"],
                    "readOnly": bool(vm.get("readOnly")),
                }
            )
        targets = {m["target"] for m in mounts}
        message_path = str(run.spec.get("terminationMessagePath") or "/dev/termination-log")
        mounts.append(
            {"source": str(self.dir / f"{run.name}.termination-log"), "target": message_path}
        )
        if not self._host_network and "/etc/hosts" not in targets:
            mounts.append(
                {"source": str(self.dir / "etc-hosts"), "target": "/etc/hosts", "readOnly": True}
            )
        # Parents before children, so a mount inside another volume's mount point lands on top.
        mounts.sort(key=lambda m: len(Path(m["target"]).parts))
        return containers.Launch(
            command=command,
            env=full_env,
            working_dir=working_dir,
            hostname=self._hostname(),
            mounts=mounts,
            mountpoint_record=str(self.ctx.mountpoint_record),
            netns=None if self._host_network else network.netns_name(self.uid),
        )

    # ---- probes ----

    def _start_prober(self, run: ContainerRun, spec: probes.ProbeSpec) -> None:
        target = probes.Target(
            ns_path=None
            if self._host_network
            else network.netns_path(network.netns_name(self.uid)),
            pod_ip=self._pod_ip,
            pid=run.pid,
            env=run.env,
            working_dir=run.working_dir,
            container=run.spec,
        )
        generation = run.generation

        def on_result(s: probes.ProbeSpec, state: probes.ProbeState) -> None:
            with self._lock:
                if run.generation != generation:
                    return
                run.probe_results[s.kind] = state
            self._wake.set()

        prober = probes.Prober(spec, target, on_result)
        run.probers[spec.kind] = prober
        prober.start()

    def _start_after_startup(self, run: ContainerRun, specs: dict[str, probes.ProbeSpec]) -> None:
        for kind in ("liveness", "readiness"):
            if kind in specs:
                self._start_prober(run, specs[kind])
        run.ready = "readiness" not in specs

    def _stop_probers(self, run: ContainerRun) -> None:
        for prober in run.probers.values():
            prober.stop()
        run.probers.clear()

    def _apply_probe_results(self) -> None:
        for run in self._runs:
            if not isinstance(run.state, Running):
                continue
            with self._lock:
                results = dict(run.probe_results)
            startup = results.get("startup")
            if startup is not None and not run.started:
                if startup.result is True:
                    prober = run.probers.pop("startup", None)
                    if prober:
                        prober.stop()
                    run.started = True
                    self._start_after_startup(run, probes.container_probes(run.spec))
                    log.info(self.who, f"container {run.name} passed its startup probe")
                elif startup.result is False and not run.kill_reason:
                    self._request_kill(run, "startup", startup.message)
            liveness = results.get("liveness")
            if (
                run.started
                and liveness is not None
                and liveness.result is False
                and not run.kill_reason
            ):
                self._request_kill(run, "liveness", liveness.message)
            readiness = results.get("readiness")
            if run.started and "readiness" in run.probers:
                ready = readiness is not None and readiness.result is True
                if ready != run.ready:
                    log.info(self.who, f"container {run.name} {'is' if ready else 'is not'} ready")
                    if not ready and readiness is not None:
                        message = f"Readiness probe failed: {readiness.message}"
                        self._event("Warning", "Unhealthy", message, run.name)
                run.ready = ready

    def _request_kill(self, run: ContainerRun, kind: str, message: str) -> None:
        reason = f"failed {kind} probe, will be restarted"
        log.warn(self.who, f"container {run.name} {reason}: {message}")
        self._event(
            "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}", run.name
        )
        self._event("Normal", "Killing", f"Container {run.name} {reason}", run.name)
        run.kill_reason = reason
        run.ready = False

    def _handle_kills(self) -> None:
        for run in self._runs:
            if not run.kill_reason or run.popen is None:
                continue
            now = time.monotonic()
            if not run.kill_deadline:
                containers.signal_group(run.pid, signal.SIGTERM)
                run.kill_deadline = now + self._grace(None)
            elif now >= run.kill_deadline:
                containers.signal_group(run.pid, signal.SIGKILL)

    def _grace(self, pod: Obj | None) -> float:
        meta = (pod or {}).get("metadata") or {}
        if meta.get("deletionGracePeriodSeconds") is not None:
            return float(meta["deletionGracePeriodSeconds"])
        spec = self.pod.get("spec") or {}
        value = spec.get("terminationGracePeriodSeconds")
        return float(30 if value is None else value)

    # ---- stopping ----

    def _kill_all(self, grace: float) -> None:
        """SIGTERM every running container's group, SIGKILL what is left after `grace`, reap."""
        running = [r for r in self._runs if r.popen is not None]
        for run in running:
            self._stop_probers(run)
            containers.signal_group(run.pid, signal.SIGTERM)
            if not self._stopping:
                self._event("Normal", "Killing", f"Stopping container {run.name}", run.name)
        deadline = time.monotonic() + grace
        while any(r.popen is not None and r.popen.poll() is None for r in running):
            if self._stopping:
                # The agent is exiting: a long deletion grace must not hold it up.
                deadline = min(deadline, time.monotonic() + SHUTDOWN_GRACE)
            if time.monotonic() >= deadline:
                for run in running:
                    containers.signal_group(run.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        for run in running:
            if run.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.popen.wait(timeout=5)
                self._finish(run, run.popen.returncode if run.popen.returncode is not None else -9)

    def _delete(self, pod: Obj) -> bool:
        """Graceful deletion: stop the containers, report, then remove the pod object."""
        if not self._deleting:
            self._deleting = True
            grace = self._grace(pod)
            log.info(self.who, f"pod is being deleted: stopping containers (grace {grace:g}s)")
            self._kill_all(grace)
            self._report()
            self._teardown_sandbox(release=True)
        try:
            self.ctx.kube.request(
                "DELETE",
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": self.uid},
                },
            )
        except ApiError as e:
            if e.status not in (404, 409):
                log.warn(self.who, f"deleting the pod failed (retrying): {e}")
                return False
        log.info(self.who, "pod deleted")
        self._scrub()
        return True

    def _scrub(self) -> None:
        """Remove all but the logs from the pod dir: volumes (secrets), launch specs, pid files."""
        shutil.rmtree(self.dir / "volumes", ignore_errors=True)
        shutil.rmtree(self.dir / "home", ignore_errors=True)
        for pattern in ("*.launch.json", "*.pid", "ip"):
            for path in self.dir.glob(pattern):
                with contextlib.suppress(OSError):
                    path.unlink()

    def _event(self, kind: str, reason: str, message: str, container: str = "") -> None:
        with self._lock:
            pod = self.pod
        events.record(self.ctx, pod, kind, reason, message, container)

    # ---- status ----

    def _view(self) -> PodView:
        spec = self.pod.get("spec") or {}
        return PodView(
            init_containers=tuple(r.view() for r in self._runs if r.init),
            containers=tuple(r.view() for r in self._runs if not r.init),
            restart_policy=self._policy,
            host_ip=self.ctx.host_ip,
            pod_ip=self._pod_ip,
            start_time=self._start_time,
            sandbox_ready=self._sandbox_ready,
            qos_class=resources.qos_class(self.pod),
            readiness_gates=tuple(
                str(g.get("conditionType")) for g in spec.get("readinessGates") or []
            ),
            deleting=self._deleting,
        )

    def _report(self) -> None:
        if self._frozen:
            return
        if not self._start_time:
            self._start_time = now_rfc3339()
        with self._lock:
            previous = dict(self.pod.get("status") or {})
        # Our own last report is fresher than what the watch brought back.
        conditions = [
            c for c in previous.get("conditions") or [] if c.get("type") not in self._conditions
        ]
        conditions += [
            {"type": t, "status": s, "lastTransitionTime": ts}
            for t, (s, ts) in self._conditions.items()
        ]
        previous["conditions"] = conditions
        if self._last_pushed:
            previous["phase"] = self._last_pushed.get("phase")
        status = pod_status(self._view(), previous, now_rfc3339())
        if status["phase"] in TERMINAL_PHASES and not self._terminal:
            self._terminal = True
            log.info(self.who, f"pod {status['phase']}")
            for run in self._runs:
                self._stop_probers(run)
            self._teardown_sandbox(release=True)
            status = pod_status(self._view(), previous, now_rfc3339())
        if not self.ctx.is_online():
            return
        if status == self._last_pushed and not self._force_status:
            return
        try:
            self.ctx.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status",
                body={"metadata": {"uid": self.uid}, "status": status},
                content_type=MERGE_PATCH,
            )
        except ApiError as e:
            if e.status != 404 and str(e) != self._last_error:
                log.warn(self.who, f"status update failed: {e}")
            self._last_error = str(e)
            return
        self._last_error = ""
        self._last_pushed = status
        self._force_status = False
        self._conditions = {
            c["type"]: (c["status"], c["lastTransitionTime"]) for c in status["conditions"]
        }


def _terminated(state: Obj) -> Terminated | None:
    t = state.get("terminated")
    if not t:
        return None
    return Terminated(
        int(t.get("exitCode") or 0),
        str(t.get("reason") or ""),
        str(t.get("startedAt") or ""),
        str(t.get("finishedAt") or ""),
        str(t.get("message") or ""),
        int(t.get("signal") or 0),
        str(t.get("containerID") or ""),
    )
