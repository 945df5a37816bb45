"""Small ONNX models made on the fly, and a real `edgeml serve` on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from edgeml.serving.app import AppSettings
from edgeml.serving.cache import sha256_hex
from edgeml.serving.loader import ModelSource
from edgeml.serving.program import ServeConfig, Serving
from edgeml.training.baseline import build_baseline

FEATURES = 4


@dataclass(frozen=True)
class ModelFiles:
    """A model on disk with its baseline, and what it was trained on."""

    path: Path
    baseline_path: Path
    model_bytes: bytes
    sha256: str
    baseline: dict[str, Any]
    x: np.ndarray


def _make(tmp: Path, name: str, estimator: Any, classification: bool) -> ModelFiles:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, FEATURES)).astype(np.float32)
    # Feature 3 is 0/1, so edges fall on data values (the closed-below bins matter).
    x[:, 3] = (rng.random(300) > 0.5).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) if classification else x @ np.arange(1, 5)
    estimator.fit(x, y)
    options = {id(estimator): {"zipmap": False}} if classification else None
    onx = to_onnx(
        estimator, initial_types=[("input", FloatTensorType([None, FEATURES]))], options=options
    )
    model_bytes = onx.SerializeToString()
    baseline = build_baseline(
        x,
        [f"f{i}" for i in range(FEATURES)],
        np.asarray(estimator.predict(x)),
        "classification" if classification else "regression",
        {},
        np.asarray(estimator.classes_) if classification else None,
    )
    folder = tmp / name
    folder.mkdir()
    (folder / "model.onnx").write_bytes(model_bytes)
    (folder / "baseline.json").write_text(json.dumps(baseline))
    return ModelFiles(
        folder / "model.onnx",
        folder / "baseline.json",
        model_bytes,
        sha256_hex(model_bytes),
        baseline,
        x,
    )


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelFiles]:
    """A logistic regression, a random forest and a linear regression, 4 float inputs."""
    tmp = tmp_path_factory.mktemp("models")
    return {
        "lr": _make(tmp, "lr", LogisticRegression(), True),
        "rf": _make(tmp, "rf", RandomForestClassifier(n_estimators=10, random_state=0), True),
        "reg": _make(tmp, "reg", LinearRegression(), False),
    }


class RunningServer:
    """`Serving` on its own event loop in a thread; `url` is its base address."""

    def __init__(self, config: ServeConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.serving = Serving(config)
        port = self.call(self.serving.start())
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=30)

    def wait_ready(self, timeout: float = 20) -> None:
        from support.wait import wait_for

        wait_for(
            lambda: self.client.get("/v2/health/ready"),
            lambda r: r.status_code == 200,
            timeout=timeout,
            what=f"{self.url} to be ready",
        )

    def close(self) -> None:
        """Stop the server (drain, save, exit); a second call does nothing."""
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        self.client.close()
        self.call(self.serving.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def serve_config(tmp_path: Path, **changes: Any) -> ServeConfig:
    """A config for 127.0.0.1:0 with a cache under tmp_path; fields overridden by `changes`."""
    config = ServeConfig(
        settings=AppSettings(model_name="m", model_version="1", feedback_capacity=100),
        source=ModelSource(),
        cache_dir=tmp_path / "cache",
        host="127.0.0.1",
        port=0,
        threads=1,
        max_body_bytes=64 * 1024,
        shutdown_grace=5.0,
    )
    return replace(config, **changes)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start servers (`start_server(source=..., ...)`); all are stopped after the test."""
    started: list[RunningServer] = []

    def start(**changes: Any) -> RunningServer:
        server = RunningServer(serve_config(tmp_path, **changes))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def lr_server(
    models: dict[str, ModelFiles], start_server: Callable[..., RunningServer]
) -> RunningServer:
    """The logistic regression, served and ready."""
    server = start_server(source=ModelSource(path=models["lr"].path))
    server.wait_ready()
    return server


def infer_body(rows: list[list[float]], **extra: Any) -> dict[str, Any]:
    """An OIP infer request for `rows` of the 4-feature models."""
    return {
        "inputs": [
            {"name": "input", "shape": [len(rows), FEATURES], "datatype": "FP32", "data": rows}
        ],
        **extra,
    }
