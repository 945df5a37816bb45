"""A real Prometheus server (Debian's package) that discovers inference pods in the API.

It is configured the way a user would point one at an edge fleet: Kubernetes service
discovery of pods in one namespace, keeping the pods of EdgeDeployments, scraping their
/metrics by pod IP, and labelling series with `namespace` and `pod`.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from support.operator import free_port
from support.wait import wait_for


def scrape_config(kubeconfig: str, namespace: str, port: int = 8080) -> dict[str, object]:
    """The scrape job: pods with an `edgeml.io/deployment` label, by pod IP."""
    return {
        "job_name": "edgeml-serve",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "kubernetes_sd_configs": [
            {"role": "pod", "kubeconfig_file": kubeconfig, "namespaces": {"names": [namespace]}}
        ],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_edgeml_io_deployment"],
                "regex": ".+",
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_ip"],
                "target_label": "__address__",
                "replacement": f"$1:{port}",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
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
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
