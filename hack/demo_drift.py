"""The demo's drift props: edge clients whose inputs can shift at one site, and a webhook.

    PYTHONPATH=hack:operator:tests .venv/bin/python hack/demo_drift.py \
        clients NS DEPLOYMENT MODEL CSV SHIFT_FILE
    PYTHONPATH=hack:operator:tests .venv/bin/python hack/demo_drift.py receiver PORT OUT_FILE

`clients` sends batches of rows drawn from the training CSV to every ready pod of the
deployment; while SHIFT_FILE names a node, the rows sent to that node's pod have their
first two inputs moved by three standard deviations (a plant in a heat wave). `receiver`
is an Alertmanager-style webhook receiver on 127.0.0.1:PORT that appends each JSON body
it gets to OUT_FILE, one per line. Both end when killed or when the process that started
them is gone, like the canary props (hack/demo_canary.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from kubernetes import client, config

PARENT_CHECK_SECONDS = 0.5
BATCH = 20


def _until_orphaned(stop: threading.Event) -> None:
    parent = int(os.environ.get("EDGEML_PROP_PARENT") or os.getppid())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(PARENT_CHECK_SECONDS) and os.getppid() == parent:
        pass
    stop.set()


def _ready_pods(core: client.CoreV1Api, namespace: str, deployment: str) -> list[tuple[str, str]]:
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"edgeml.io/deployment={deployment}"
    ).items
    return [
        (p.spec.node_name, p.status.pod_ip)
        for p in pods
        if p.status.pod_ip
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]


def clients(namespace: str, deployment: str, model: str, csv: Path, shift_file: Path) -> None:
    """Send training-like rows to every ready pod until stopped (see the module doc)."""
    config.load_kube_config()
    core = client.CoreV1Api()
    frame = pd.read_csv(csv)
    data = frame.drop(columns=["label"]).to_numpy(dtype=np.float32)
    spread = data.std(axis=0)
    stop = threading.Event()

    def run() -> None:
        rng = np.random.default_rng(1)
        with httpx.Client(timeout=2) as http:
            while not stop.is_set():
                try:
                    targets = _ready_pods(core, namespace, deployment)
                except Exception:
                    targets = []
                shifted = shift_file.read_text().strip() if shift_file.exists() else ""
                until = time.monotonic() + 1.0
                while time.monotonic() < until and not stop.is_set():
                    for node, ip in targets:
                        rows = data[rng.integers(0, len(data), BATCH)].copy()
                        if node == shifted:
                            rows[:, :2] += 3 * spread[:2]
                        tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32"}
                        body = {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}
                        with contextlib.suppress(httpx.HTTPError):
                            http.post(f"http://{ip}:8080/v2/models/{model}/infer", json=body)
                    stop.wait(0.1)

    threading.Thread(target=run, daemon=True).start()
    _until_orphaned(stop)


def receiver(port: int, out: Path) -> None:
    """Keep every JSON body POSTed to 127.0.0.1:PORT, one per line in `out`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body: Any = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            with out.open("a") as f:
                f.write(json.dumps(body) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    _until_orphaned(stop)
    server.shutdown()


def main(argv: list[str]) -> int:
    """Run one of the two props; see the module doc."""
    if argv[:1] == ["clients"] and len(argv) == 6:
        _, namespace, deployment, model, csv, shift = argv
        clients(namespace, deployment, model, Path(csv), Path(shift))
        return 0
    if argv[:1] == ["receiver"] and len(argv) == 3:
        receiver(int(argv[1]), Path(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
