"""The `edgeml serve` process: arguments, and a graceful exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgeml.serving.program import build_parser, config_from_args, main
from edgeml.serving.window import StateLocation
from support.wait import wait_for

OPERATOR = Path(__file__).resolve().parents[4] / "operator"


def test_a_bad_expected_sha256_is_an_argument_error(tmp_path: Path) -> None:
    code = main(["--model-name", "m", "--model-path", str(tmp_path / "m.onnx"),
                 "--expected-sha256", "xyz"])  # fmt: skip
    assert code == 2


def test_sigterm_finishes_and_exits_zero(models: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    code = (
        "from edgeml.serving.program import main; raise SystemExit(main(["
        f"'--model-name', 'm', '--model-path', {str(models['lr'].path)!r}, "
        "'--host', '127.0.0.1', '--port', '0', '--cache-dir', "
        f"{str(tmp_path / 'cache')!r}]))"
    )
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=stderr)
    try:
        line = wait_for(
            log.read_text,
            lambda text: "serving m version 1" in text,
            timeout=30,
            what="the server to load the model",
        )
        port = int(line.split("listening on 127.0.0.1:")[1].split()[0])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/v2/health/ready").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopped" in log.read_text()
    finally:
        process.kill()


def _window_state(*extra: str) -> StateLocation | None:
    args = build_parser().parse_args(
        ["--model-name", "m", "--model-path", "m.onnx", "--cache-dir", "/c", *extra]
    )
    return config_from_args(args).settings.window_state


def test_the_window_is_saved_under_the_cache_by_default() -> None:
    location = _window_state()
    assert location == StateLocation(directory=Path("/c/windows"), hostname=socket.gethostname())
    assert location.file_for("m", "1") == Path(f"/c/windows/m-1-{socket.gethostname()}.json")


def test_window_state_flags() -> None:
    assert _window_state("--window-state", "/w.json") == StateLocation(path=Path("/w.json"))
    assert _window_state("--no-window-state") is None
    with pytest.raises(SystemExit):
        _window_state("--window-state", "/w.json", "--no-window-state")
