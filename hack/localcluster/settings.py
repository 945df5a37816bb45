"""Where the local cluster keeps its files, which ports it uses, which versions it pins."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK_DIR = REPO_ROOT / "hack"
BUILD_DIR = HACK_DIR / "build"

KUBERNETES_VERSION = "v1.35.4"
KWOK_VERSION = "v0.8.0"
ETCD_VERSION = "v3.6.6"
HELM_VERSION = "v3.21.4"
VERSITYGW_VERSION = "v1.8.0"

# Every process the cluster starts carries this variable; `down` finds strays by it.
MARKER_ENV = "EDGEML_LOCAL_CLUSTER"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(f"EDGEML_{name}_PORT", default))


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the cluster's servers; each can be moved with EDGEML_<NAME>_PORT."""

    etcd: int = field(default_factory=lambda: _port("ETCD", 12379))
    etcd_peer: int = field(default_factory=lambda: _port("ETCD_PEER", 12380))
    apiserver: int = field(default_factory=lambda: _port("APISERVER", 16443))
    controller_manager: int = field(default_factory=lambda: _port("CONTROLLER_MANAGER", 16257))
    scheduler: int = field(default_factory=lambda: _port("SCHEDULER", 16259))
    kwok: int = field(default_factory=lambda: _port("KWOK", 16270))
    mlflow: int = field(default_factory=lambda: _port("MLFLOW", 15000))
    s3: int = field(default_factory=lambda: _port("S3", 19000))
    """The S3-compatible object store (versitygw), forwarded into every pod like MLflow."""
    webhook: int = field(default_factory=lambda: _port("WEBHOOK", 19093))
    """Not a server of the cluster: a loopback port forwarded into every pod, like the API
    server's and MLflow's, so a webhook receiver on the host (the demo's) hears the
    operator's alerts."""


@dataclass(frozen=True)
class Fleet:
    """How many simulated nodes of each kind `up` creates."""

    kwok_edge: int = field(default_factory=lambda: int(os.environ.get("EDGEML_KWOK_EDGE_NODES", 6)))
    kwok_training: int = field(
        default_factory=lambda: int(os.environ.get("EDGEML_KWOK_TRAINING_NODES", 2))
    )
    process_edge: int = field(
        default_factory=lambda: int(os.environ.get("EDGEML_PROCESS_EDGE_NODES", 3))
    )
    process_training: int = field(
        default_factory=lambda: int(os.environ.get("EDGEML_PROCESS_TRAINING_NODES", 1))
    )
    real_edge: int = field(default_factory=lambda: int(os.environ.get("EDGEML_REAL_EDGE_NODES", 0)))
    """Edge nodes run by the real kubelet (containers from the project's images)."""
    real_training: int = field(
        default_factory=lambda: int(os.environ.get("EDGEML_REAL_TRAINING_NODES", 0))
    )
    real_index: int = field(
        default_factory=lambda: int(os.environ.get("EDGEML_REAL_NODE_INDEX", 150))
    )
    """The real nodes' first subnet number (edge nodes from it, training nodes from it
    + 20); a second cluster on the machine moves it (process nodes use 1.. and 100..)."""
    zones: tuple[str, ...] = ("site-a", "site-b", "site-c")


@dataclass(frozen=True)
class Settings:
    """All of the local cluster's configuration, read once from the environment."""

    home: Path = field(
        default_factory=lambda: Path(
            os.environ.get("EDGEML_HOME", Path.home() / ".cache" / "edgeml")
        ).expanduser()
    )
    ports: Ports = field(default_factory=Ports)
    fleet: Fleet = field(default_factory=Fleet)
    python: Path = field(default_factory=lambda: REPO_ROOT / ".venv" / "bin" / "python")

    @property
    def bin_dir(self) -> Path:
        """Built binaries, keyed by pinned version; shared by every checkout and cluster."""
        return Path(os.environ.get("EDGEML_BIN_DIR", self.home / "bin")).expanduser()

    @property
    def cluster_dir(self) -> Path:
        """The running cluster's state: certificates, data, logs, PID files."""
        return self.home / "local" / "cluster"

    @property
    def pki_dir(self) -> Path:
        return self.cluster_dir / "pki"

    @property
    def log_dir(self) -> Path:
        return self.cluster_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        return self.cluster_dir / "pids"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig users and tests point KUBECONFIG at."""
        return self.cluster_dir / "kubeconfig"

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports.mlflow}"

    @property
    def s3_endpoint(self) -> str:
        """The object store's endpoint URL, the same on the host and inside every pod."""
        return f"http://127.0.0.1:{self.ports.s3}"


# The object store's root account. A throwaway cluster on loopback: fixed, so tests and
# the demo can write the Secret pods read it with. Never reuse these anywhere else.
S3_ACCESS_KEY = "edgeml-local"
S3_SECRET_KEY = "edgeml-local-secret"  # noqa: S105
S3_BUCKET = "edgeml"
"""A bucket `up` creates, for the demo's data."""
