"""Readiness, liveness and startup probes: the threshold rules (pure) and the probers.

Probes run from inside the pod: HTTP and TCP probes use sockets created in the
pod's netns (so they still work while the node's uplink is cut, like a real
kubelet on the box), exec probes enter the container's namespaces with nsenter.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from localcluster.agent import netns

Obj = dict[str, Any]

KINDS = ("startup", "liveness", "readiness")
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"


@dataclass(frozen=True)
class ProbeSpec:
    """A probe with kubelet's defaults filled in."""

    kind: str
    handler: Obj
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class ProbeState:
    """Consecutive results so far; `result` is None until a threshold was first reached."""

    result: bool | None = None
    successes: int = 0
    failures: int = 0
    message: str = ""


def probe_spec(kind: str, probe: Obj) -> ProbeSpec:
    """Parse a container's `<kind>Probe` with kubelet's defaults."""
    return ProbeSpec(
        kind=kind,
        handler=probe,
        initial_delay=float(probe.get("initialDelaySeconds") or 0),
        period=float(probe.get("periodSeconds") or 10),
        timeout=float(probe.get("timeoutSeconds") or 1),
        success_threshold=int(probe.get("successThreshold") or 1),
        failure_threshold=int(probe.get("failureThreshold") or 3),
    )


def container_probes(container: Obj) -> dict[str, ProbeSpec]:
    """The probes a container declares, by kind."""
    return {
        kind: probe_spec(kind, container[f"{kind}Probe"])
        for kind in KINDS
        if container.get(f"{kind}Probe")
    }


def record(state: ProbeState, ok: bool, spec: ProbeSpec, message: str = "") -> ProbeState:
    """Fold one probe outcome into the state; the result flips only at a threshold."""
    if ok:
        successes = state.successes + 1
        result = True if successes >= spec.success_threshold else state.result
        return ProbeState(result, successes, 0, message)
    failures = state.failures + 1
    result = False if failures >= spec.failure_threshold else state.result
    return ProbeState(result, 0, failures, message)


def resolve_port(port: int | str, container: Obj) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {port!r}")


@dataclass(frozen=True)
class Target:
    """Where a probe runs: the pod's netns and address, the container's process and env."""

    ns_path: str | None  # None: host network
    pod_ip: str
    pid: int
    env: Mapping[str, str]
    working_dir: str
    container: Obj


class _NetnsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, timeout: float, ns_path: str | None) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ns_path = ns_path

    def connect(self) -> None:
        self.sock = _connect(self._ns_path, self.host, self.port, self.timeout)


class _NetnsHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, timeout: float, ns_path: str | None) -> None:
        # kubelet does not verify probe certificates either.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(host, port, timeout=timeout, context=ctx)
        self._ns_path = ns_path
        self._ctx = ctx

    def connect(self) -> None:
        raw = _connect(self._ns_path, self.host, self.port, self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self.host)


def _connect(ns_path: str | None, host: str, port: int, timeout: float | None) -> socket.socket:
    sock = netns.socket_in(ns_path) if ns_path else socket.socket()
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run_probe(spec: ProbeSpec, target: Target) -> tuple[bool, str]:
    """Run the probe once; (success, message for the failure)."""
    handler = spec.handler
    try:
        if "httpGet" in handler:
            return _http(handler["httpGet"], spec.timeout, target)
        if "tcpSocket" in handler:
            tcp = handler["tcpSocket"]
            port = resolve_port(tcp.get("port", 0), target.container)
            _connect(target.ns_path, tcp.get("host") or target.pod_ip, port, spec.timeout).close()
            return True, ""
        if "exec" in handler:
            return _exec(handler["exec"].get("command") or [], spec.timeout, target)
    except (OSError, ValueError, http.client.HTTPException) as e:
        return False, str(e) or type(e).__name__
    # grpc and anything newer: not simulated; count as passing so pods still become ready.
    return True, ""


def _http(get: Obj, timeout: float, target: Target) -> tuple[bool, str]:
    port = resolve_port(get.get("port", 80), target.container)
    host = get.get("host") or target.pod_ip
    cls = (
        _NetnsHTTPSConnection
        if str(get.get("scheme", "HTTP")).upper() == "HTTPS"
        else _NetnsHTTPConnection
    )
    conn = cls(host, port, timeout, target.ns_path)
    headers = {"User-Agent": "kube-probe/1.35", "Accept": "*/*"}
    headers.update({h["name"]: h.get("value", "") for h in get.get("httpHeaders") or []})
    try:
        conn.request("GET", get.get("path") or "/", headers=headers)
        resp = conn.getresponse()
        resp.read(10240)
        if 200 <= resp.status < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {resp.status}"
    finally:
        conn.close()


def _exec(command: list[str], timeout: float, target: Target) -> tuple[bool, str]:
    if not command:
        return False, "exec probe has no command"
    if target.pid <= 0:
        return False, "container is not running"
    ns_flags = ["--mount", "--uts"] + (["--net"] if target.ns_path else [])
    argv = [
        NSENTER,
        f"--target={target.pid}",
        *ns_flags,
        f"--wd={target.working_dir}",
        "--",
        *command,
    ]
    try:
        proc = subprocess.run(
            argv, env=dict(target.env), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return False, f"command timed out after {timeout:g}s"
    if proc.returncode == 0:
        return True, ""
    out = (proc.stdout + proc.stderr).decode(errors="replace").strip()
    return False, f"command exited {proc.returncode}" + (f": {out[-300:]}" if out else "")


class Prober:
    """A thread that runs one probe of one container instance every period."""

    def __init__(
        self,
        spec: ProbeSpec,
        target: Target,
        on_result: Callable[[ProbeSpec, ProbeState], None],
    ) -> None:
        """`on_result` is called (from the probe thread) after every run."""
        self.spec = spec
        self._target = target
        self._on_result = on_result
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"probe-{spec.kind}", daemon=True)

    def start(self) -> None:
        """Begin probing after the initial delay."""
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (a run in progress finishes within its timeout)."""
        self._stop.set()

    def _loop(self) -> None:
        if self._stop.wait(self.spec.initial_delay):
            return
        state = ProbeState()
        while not self._stop.is_set():
            began = time.monotonic()
            ok, message = run_probe(self.spec, self._target)
            if self._stop.is_set():
                return
            state = record(state, ok, self.spec, message)
            with contextlib.suppress(Exception):
                self._on_result(self.spec, replace(state))
            self._stop.wait(max(0.0, self.spec.period - (time.monotonic() - began)))
