"""A real MLflow server with its basic-auth app (`mlflow server --app-name basic-auth`),
on a free loopback port, for tests of what reads MLflow with an EdgeModel's credentials."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.operator import free_port
from support.processes import stop
from support.wait import wait_for


@dataclass(frozen=True)
class AuthenticatedMlflow:
    """Where the server is, and its admin's credentials (the only user it has)."""

    uri: str
    username: str
    password: str


@contextmanager
def authenticated_mlflow(workdir: Path) -> Iterator[AuthenticatedMlflow]:
    """Run MLflow with basic auth until the block ends: every request needs a user."""
    workdir.mkdir(parents=True, exist_ok=True)
    user, password = "admin", "edgeml-test-admin-0123"
    config = workdir / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'auth.db'}\n"
        f"admin_username = {user}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    port = free_port()
    log_path = workdir / "mlflow.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--app-name=basic-auth",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--backend-store-uri=sqlite:///{workdir / 'mlflow.db'}",
            f"--artifacts-destination={workdir / 'artifacts'}",
            "--serve-artifacts",
            "--workers=1",
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            # The auth app's CSRF protection wants a key that outlives a restart.
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "edgeml-tests-not-a-secret",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    try:

        def state() -> str:
            if proc.poll() is not None:
                return "exited"
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                return "up" if response.status == 200 else f"HTTP {response.status}"

        seen = wait_for(state, lambda s: s in ("up", "exited"), timeout=120, what=uri)
        if seen == "exited":
            text = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mlflow with basic auth exited with {proc.returncode}:\n{text}")
        yield AuthenticatedMlflow(uri, user, password)
    finally:
        stop(proc)
        log.close()
