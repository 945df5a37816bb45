"""The cluster a test run uses, and the `hack/cluster` command against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localcluster.settings import HACK_DIR, Settings

LOG_TAIL_LINES = 40


def cluster_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `hack/cluster ARGS` (without the venv bootstrap: tests already run in it)."""
    return subprocess.run(
        [sys.executable, "-m", "localcluster", *args],
        env={**os.environ, "PYTHONPATH": str(HACK_DIR), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def spare_env(home: Path, port_offset: int, **fleet: int) -> dict[str, str]:
    """The environment of a second, throwaway cluster: its own state directory and
    ports (the build cache shared), KWOK nodes only unless `fleet` says otherwise
    (e.g. REAL_EDGE_NODES=1, REAL_NODE_INDEX=190)."""
    base = Settings()
    p = base.ports
    env = {
        "EDGEML_HOME": str(home),
        "EDGEML_BIN_DIR": str(base.bin_dir),
        "EDGEML_KWOK_EDGE_NODES": "2",
        "EDGEML_KWOK_TRAINING_NODES": "0",
        "EDGEML_PROCESS_EDGE_NODES": "0",
        "EDGEML_PROCESS_TRAINING_NODES": "0",
    }
    env.update({f"EDGEML_{key}": str(value) for key, value in fleet.items()})
    for name, port in (
        ("ETCD", p.etcd),
        ("ETCD_PEER", p.etcd_peer),
        ("APISERVER", p.apiserver),
        ("CONTROLLER_MANAGER", p.controller_manager),
        ("SCHEDULER", p.scheduler),
        ("KWOK", p.kwok),
        ("MLFLOW", p.mlflow),
        ("S3", p.s3),
        ("WEBHOOK", p.webhook),
    ):
        env[f"EDGEML_{name}_PORT"] = str(port + port_offset)
    return env


@contextmanager
def spare_cluster(env: dict[str, str]) -> Iterator[Settings]:
    """The settings of the cluster `env` describes; it is taken down at the end."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = Settings()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield settings
    finally:
        cluster_cli("down", env=env)


class ClusterHandle:
    """What tests know about the cluster they run on."""

    def __init__(self, kubeconfig: str, settings: Settings | None) -> None:
        self.kubeconfig = kubeconfig
        self.settings = settings  # None when running against a foreign cluster (KUBECONFIG)

    @property
    def local(self) -> bool:
        return self.settings is not None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `hack/cluster ARGS` against this cluster."""
        return cluster_cli(*args)

    def edgeml(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the `edgeml` command as a person would, with this cluster's admin kubeconfig."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "edgeml"), *args],
            env={"KUBECONFIG": self.kubeconfig, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )

    def component_logs(self) -> str:
        """The tail of every component's log, for failure reports."""
        if self.settings is None:
            return ""
        chunks = []
        for log in sorted(self.settings.log_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            chunks.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(chunks)
