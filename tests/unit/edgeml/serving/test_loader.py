"""sha256 verification and the node cache: what is served, and when the server stays unready."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgeml.serving.cache import ModelCache
from edgeml.serving.loader import ModelSource
from support.wait import wait_for

DEAD_MLFLOW = "http://127.0.0.1:9"  # discard port: connection refused at once


def test_a_sha256_mismatch_keeps_the_server_unready_and_is_counted(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    server = start_server(source=ModelSource(path=models["lr"].path, expected_sha256="0" * 64))
    text = wait_for(
        lambda: server.client.get("/metrics").text,
        lambda t: 'edgeml_serve_sha256_mismatch_total{model="m",version="1"} 1.0' in t,
        timeout=10,
        what="the mismatch to be counted",
    )
    assert "edgeml_serve_ready 0.0" in text
    assert "edgeml_serve_model_info{" not in text
    ready = server.client.get("/v2/health/ready")
    assert ready.status_code == 503
    assert f"sha256 is {models['lr'].sha256}, not the expected {'0' * 64}" in ready.json()["error"]
    assert server.client.get("/v2/models/m/ready").status_code == 503
    infer = server.client.post("/v2/models/m/infer", json={"inputs": []})
    assert infer.status_code == 503
    assert server.serving.app.model is None


def test_the_right_sha256_is_served(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    files = models["rf"]
    server = start_server(source=ModelSource(path=files.path, expected_sha256=files.sha256))
    server.wait_ready()
    assert server.serving.app.sha256 == files.sha256


def test_a_cached_model_is_served_with_mlflow_unreachable(
    models: dict[str, Any],
    start_server: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DEAD_MLFLOW)
    files = models["lr"]
    ModelCache(tmp_path / "cache").store(
        files.model_bytes, files.sha256, files.baseline, {"uri": "models:/lr/3", "version": "3"}
    )
    server = start_server(
        source=ModelSource(uri="models:/lr/3", expected_sha256=files.sha256),
    )
    server.wait_ready(timeout=10)
    text = server.client.get("/metrics").text
    assert f'edgeml_serve_model_info{{model="m",sha256="{files.sha256}",version="3"}} 1.0' in text
    assert 'edgeml_serve_feature_value_bucket{feature="f0"' in text  # the cached baseline


def test_mlflow_unreachable_and_nothing_cached_stays_unready_and_retries(
    start_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DEAD_MLFLOW)
    server = start_server(source=ModelSource(uri="models:/lr/3", expected_sha256="a" * 64))
    reply = wait_for(
        lambda: server.client.get("/v2/health/ready"),
        lambda r: "retrying" in r.text,
        timeout=60,
        what="the ready endpoint to say the fetch is retried",
    )
    assert reply.status_code == 503
    assert "fetching models:/lr/3" in reply.json()["error"]


def test_a_corrupt_cache_entry_is_not_served_and_is_removed(
    models: dict[str, Any],
    start_server: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DEAD_MLFLOW)
    files = models["lr"]
    cache = ModelCache(tmp_path / "cache")
    entry = cache.store(files.model_bytes, files.sha256, None, {"uri": "models:/lr/3"})
    (entry / "model.onnx").write_bytes(files.model_bytes[:-1] + b"X")
    server = start_server(source=ModelSource(uri="models:/lr/3", expected_sha256=files.sha256))
    wait_for(
        lambda: server.client.get("/v2/health/ready"),
        lambda r: "retrying" in r.text,
        timeout=60,
        what="the server to give up the corrupt entry and try MLflow",
    )
    assert not cache.has(files.sha256)


def test_cache_entries_are_keyed_by_sha256_and_written_once(
    models: dict[str, Any], tmp_path: Path
) -> None:
    files = models["reg"]
    cache = ModelCache(tmp_path / "c")
    first = cache.store(files.model_bytes, files.sha256, files.baseline, {"uri": "models:/r/1"})
    second = cache.store(files.model_bytes, files.sha256, None, {"uri": "models:/r/1"})
    assert first == second == tmp_path / "c" / files.sha256
    assert sorted(p.name for p in first.iterdir()) == ["baseline.json", "model.onnx", "source.json"]
    assert [p.name for p in (tmp_path / "c").iterdir()] == [files.sha256]  # no leftovers
    assert cache.find_by_uri("models:/r/1") == files.sha256
    assert cache.find_by_uri("models:/r/2") is None
