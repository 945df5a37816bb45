"""`edgeml-forward`: the real nodes' chained CNI plugin that gives each pod the host's
loopback servers, as the process nodes' pods have them.

The API server, MLflow and the object store listen on the host's 127.0.0.1 only, and
in-cluster clients look for the API server at the `kubernetes` Service's address; there
is no kube-proxy. On ADD (after the bridge plugin gave the pod its address), the plugin
starts one forwarder process for the pod, which adds the Service address to the pod's
loopback and listens inside the pod's network namespace on each route's address
(`LISTEN_HOST:LISTEN_PORT:HOST_PORT`), copying bytes to 127.0.0.1:HOST_PORT on the host.
ADD returns only once every listener is bound, so no container of the pod starts before
its forwards exist. DEL stops the forwarder. The plugin passes the previous plugin's
result through, as a chained plugin must (CNI spec 1.0).

The forwarder carries the local cluster's marker (containerd passes its environment to
CNI plugins), so `hack/cluster down` finds it even if DEL never came.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

SUPPORTED_VERSIONS = ("0.4.0", "1.0.0")


def _error(code: int, msg: str, details: str = "") -> int:
    # The CNI error shape; containerd shows `msg` in the pod's events.
    print(json.dumps({"cniVersion": "1.0.0", "code": code, "msg": msg, "details": details}))
    return 1


def _pidfile(conf: dict[str, Any], container_id: str) -> Path:
    return Path(conf["stateDir"]) / f"{container_id}.pid"


def _add(conf: dict[str, Any], container_id: str, netns: str) -> int:
    pidfile = _pidfile(conf, container_id)
    _stop(pidfile)  # a retried ADD replaces the earlier forwarder
    with open(conf["netnsRecord"], "a") as record:
        record.write(f"{netns}\n")
    log = Path(conf["stateDir"]) / f"{container_id}.log"
    argv = [sys.executable, "-m", "localcluster.cniforward", "--netns", netns]
    for route in conf["routes"]:
        argv += ["--route", route]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # only "ready": containerd's pipe must not be inherited
            stderr=out,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    proc.stdout.close()
    if line != "ready":
        proc.kill()
        return _error(11, "edgeml-forward: the forwarder did not start", log.read_text()[-2000:])
    pidfile.write_text(f"{proc.pid}\n")
    result = conf.get("prevResult") or {}
    print(json.dumps({**result, "cniVersion": conf.get("cniVersion", "1.0.0")}))
    return 0


def _stop(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Only our forwarder: the PID may have been reused since.
        if "localcluster.cniforward" in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGTERM)
    pidfile.unlink(missing_ok=True)


def plugin_main() -> int:
    """The CNI plugin's entry point: the command in CNI_COMMAND, the config on stdin."""
    command = os.environ.get("CNI_COMMAND", "")
    if command == "VERSION":
        print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": list(SUPPORTED_VERSIONS)}))
        return 0
    try:
        conf = json.loads(sys.stdin.read() or "{}")
    except json.JSONDecodeError as err:
        return _error(6, "edgeml-forward: the network configuration is not JSON", str(err))
    container_id = os.environ.get("CNI_CONTAINERID", "")
    if command == "ADD":
        netns = os.environ.get("CNI_NETNS", "")
        if not netns or not container_id:
            return _error(4, "edgeml-forward: ADD needs CNI_NETNS and CNI_CONTAINERID")
        return _add(conf, container_id, netns)
    if command == "DEL":
        if container_id:
            _stop(_pidfile(conf, container_id))
        return 0
    if command in ("CHECK", "GC", "STATUS"):
        return 0
    return _error(4, f"edgeml-forward: unknown CNI_COMMAND {command!r}")


def _parse_route(text: str) -> tuple[str, int, int]:
    host, listen, upstream = text.rsplit(":", 2)
    return host, int(listen), int(upstream)


def forwarder_main(argv: list[str] | None = None) -> int:
    """Listen inside the pod's netns on every route; print "ready" when all are bound."""
    from localcluster.agent import forward

    parser = argparse.ArgumentParser(prog="edgeml-forward")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--route", action="append", type=_parse_route, default=[])
    args = parser.parse_args(argv)
    extra = sorted({host for host, _, _ in args.route if host != "127.0.0.1"})
    # The pod's loopback is up (containerd sets it up); service addresses are added to it.
    for address in extra:
        subprocess.run(
            [
                "nsenter",
                f"--net={args.netns}",
                "ip",
                "addr",
                "replace",
                f"{address}/32",
                "dev",
                "lo",
            ],
            check=True,
        )
    fwd = forward.Forwarder(
        args.netns, args.route, f"forward {Path(args.netns).name}", lambda: True
    )
    fwd.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print("ready", flush=True)
    os.close(1)
    os.open(os.devnull, os.O_WRONLY)  # fd 1 again, so a stray print cannot fail
    stopped.wait()
    fwd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(forwarder_main())
