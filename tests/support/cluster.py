"""The cluster a test run uses, and the `hack/cluster` command against it."""

from __future__ import annotations

import os
import subprocess
import sys
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
