"""A real Prometheus server (Debian's package) scraping the inference pods of a namespace.

A user points Prometheus at an edge fleet with Kubernetes service discovery
(`kubernetes_sd_configs`, or a Prometheus Operator PodMonitor) and relabels series with
`namespace` and `pod`. Debian's build leaves Kubernetes discovery out, so here a thread
reads the same pods from the API server every half second and hands them to Prometheus
through file discovery, with the same labels. Scraping, storage and PromQL are
Prometheus' own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from kubernetes import client

from support.operator import free_port
from support.processes import stop
from support.wait import wait_for


class PodTargets:
    """Writes the namespace's inference pods as file-discovery targets until closed."""

    def __init__(self, core: client.CoreV1Api, namespace: str, path: Path, port: int = 8080):
        self.core, self.namespace, self.path, self.port = core, namespace, path, port
        self.stop = threading.Event()
        self.write()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def write(self) -> None:
        """One discovery pass: every pod of an EdgeDeployment that has an IP."""
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector="edgeml.io/deployment"
        ).items
        groups = [
            {
                "targets": [f"{p.status.pod_ip}:{self.port}"],
                "labels": {"namespace": self.namespace, "pod": p.metadata.name},
            }
            for p in pods
            if p.status.pod_ip and not p.metadata.deletion_timestamp
        ]
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(groups))
        os.replace(scratch, self.path)  # Prometheus never reads half a file

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                self.write()
            except Exception:  # an API blink; the next pass writes again
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@contextmanager
def pod_targets(core: client.CoreV1Api, namespace: str, path: Path) -> Iterator[PodTargets]:
    """PodTargets for the duration of the block."""
    targets = PodTargets(core, namespace, path)
    try:
        yield targets
    finally:
        targets.close()


def scrape_config(targets: Path) -> dict[str, object]:
    """The scrape job: every second, the targets in `targets` (see PodTargets)."""
    return {
        "job_name": "edgeml-serve",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}],
    }


@contextmanager
def prometheus(workdir: Path, scrape: dict[str, object]) -> Iterator[str]:
    """Run Prometheus on a free loopback port with one scrape job; yield its address."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed (hack/lib/bootstrap.sh installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]})
    )
    address = f"127.0.0.1:{free_port()}"
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                text = (workdir / "prometheus.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"prometheus exited with {proc.returncode}:\n{text}")
            with urllib.request.urlopen(f"http://{address}/-/ready", timeout=2) as response:
                return bool(response.status == 200)

        wait_for(ready, bool, timeout=60, what="Prometheus ready")
        yield f"http://{address}"
    finally:
        stop(proc)
        log.close()
