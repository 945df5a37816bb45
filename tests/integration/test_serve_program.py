"""`edgeml serve` against a real MLflow server, spoken to by a client we did not write.

A tiny model is trained and registered with `edgeml train` under a fresh name, then
served from `models:/<name>/1` in a subprocess and queried with `tritonclient.http`
(the Triton/KServe Open Inference Protocol client). MLflow is MLFLOW_TRACKING_URI, else
the local cluster's (http://127.0.0.1:15000 by default); the test skips if none answers.
The recent-window restart test needs no MLflow: it serves a model file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from edgeml.training.baseline import build_baseline
from edgeml.training.program import main as train_main
from support.wait import wait_for

tritonclient_http = pytest.importorskip("tritonclient.http")

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


@pytest.fixture(scope="module")
def mlflow_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        from localcluster.settings import Settings

        uri = Settings().mlflow_uri
    try:
        httpx.get(f"{uri}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"no MLflow at {uri}: {exc}")
    return uri


@dataclass(frozen=True)
class Registered:
    name: str
    uri: str
    sha256: str
    x: np.ndarray


@pytest.fixture(scope="module")
def registered(mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """A RandomForest trained and registered by `edgeml train`, version 1 of a fresh name."""
    tmp = tmp_path_factory.mktemp("train")
    x, y = make_classification(400, 6, n_informative=4, random_state=5)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["label"] = y
    frame.to_csv(tmp / "train.csv", index=False)
    name = f"serve-test-{uuid.uuid4().hex[:10]}"
    config = {
        "registeredModel": name,
        "namespace": "it",
        "trainingRun": "serve-1",
        "trainingRunUid": str(uuid.uuid4()),
        "trigger": "Manual",
        "allowedModules": ["sklearn"],
        "training": {
            "dataset": {"uri": (tmp / "train.csv").as_uri(), "target": "label"},
            "estimator": {
                "class": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 15},
            },
        },
    }
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_uri
    try:
        log = tmp / "termination"
        code = train_main(["--config-json", json.dumps(config), "--termination-log", str(log)])
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    summary = json.loads(log.read_text()) if code == 0 else log.read_text()
    assert code == 0, summary
    return Registered(name, summary["modelUri"], summary["sha256"], x.astype(np.float32))


class ServeProcess:
    """`edgeml serve` as a subprocess on an ephemeral port."""

    def __init__(self, args: list[str], mlflow_uri: str, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(OPERATOR), "MLFLOW_TRACKING_URI": mlflow_uri}
        code = f"from edgeml.serving.program import main; raise SystemExit(main({args!r}))"
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=stderr)
        text = wait_for(
            log.read_text,
            lambda t: "listening on 127.0.0.1:" in t or self.process.poll() is not None,
            timeout=30,
            what="the server to listen",
        )
        assert self.process.poll() is None, text
        self.port = int(text.split("listening on 127.0.0.1:")[1].split()[0])
        self.url = f"127.0.0.1:{self.port}"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.process.kill()


@pytest.fixture
def serve(mlflow_uri: str, tmp_path: Path) -> Iterator[Any]:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        process = ServeProcess(
            [
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--cache-dir",
                str(tmp_path / "cache"),
                *args,
            ],
            mlflow_uri,
            tmp_path / f"serve-{len(started)}.log",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_tritonclient_gets_onnxruntime_predictions_from_a_registered_version(
    registered: Registered, serve: Any
) -> None:
    server = serve("--model-name", "fraud", "--model-uri", registered.uri)
    client = tritonclient_http.InferenceServerClient(url=server.url)
    wait_for(
        lambda: client.is_model_ready("fraud"),
        bool,
        timeout=120,
        what=f"the model to be ready (log: {server.log})",
    )
    metadata = client.get_model_metadata("fraud")
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"][0]["shape"] == [-1, 6]

    rows = registered.x[:8]
    expected_label, expected_proba = ort.InferenceSession(
        _cached_model(server, registered.sha256)
    ).run(["label", "probabilities"], {"input": rows})
    for binary in (False, True):
        infer_input = tritonclient_http.InferInput("input", list(rows.shape), "FP32")
        infer_input.set_data_from_numpy(rows, binary_data=binary)
        outputs = [
            tritonclient_http.InferRequestedOutput("label", binary_data=binary),
            tritonclient_http.InferRequestedOutput("probabilities", binary_data=binary),
        ]
        result = client.infer("fraud", [infer_input], outputs=outputs, request_id="r1")
        np.testing.assert_array_equal(result.as_numpy("label"), expected_label)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected_proba, rtol=1e-6)
    assert server.stop() == 0


def test_a_bad_request_gets_a_4xx_with_a_message(registered: Registered, serve: Any) -> None:
    server = serve("--model-name", "fraud", "--model-uri", registered.uri)
    client = tritonclient_http.InferenceServerClient(url=server.url)
    wait_for(
        lambda: client.is_model_ready("fraud"), bool, timeout=120, what="the model to be ready"
    )
    wrong = np.zeros((1, 3), dtype=np.float32)
    infer_input = tritonclient_http.InferInput("input", [1, 3], "FP32")
    infer_input.set_data_from_numpy(wrong, binary_data=False)
    with pytest.raises(Exception, match=r"has shape \[1, 3\]; the model expects \[-1, 6\]"):
        client.infer("fraud", [infer_input])
    reply = httpx.post(f"http://{server.url}/v2/models/fraud/infer", content=b"{nope")
    assert reply.status_code == 400
    assert "not valid JSON" in reply.json()["error"]


def test_a_wrong_expected_sha256_keeps_the_server_unready(
    registered: Registered, serve: Any
) -> None:
    server = serve(
        "--model-name", "fraud", "--model-uri", registered.uri, "--expected-sha256", "f" * 64
    )
    reply = wait_for(
        lambda: httpx.get(f"http://{server.url}/metrics"),
        lambda r: (
            "edgeml_serve_sha256_mismatch_total" in r.text
            and 'version="1"} 1.0' in r.text.split("edgeml_serve_sha256_mismatch_total{")[-1]
        ),
        timeout=120,
        what="the mismatch to be counted",
    )
    assert reply.status_code == 200
    ready = httpx.get(f"http://{server.url}/v2/health/ready")
    assert ready.status_code == 503
    assert registered.sha256 in ready.json()["error"]
    assert not (Path(server.log).parent / "cache" / ("f" * 64)).exists()


def test_a_restart_with_mlflow_down_serves_from_the_cache(
    registered: Registered, serve: Any, mlflow_uri: str, tmp_path: Path
) -> None:
    first = serve("--model-name", "fraud", "--model-uri", registered.uri)
    wait_for(
        lambda: httpx.get(f"http://{first.url}/v2/health/ready").status_code,
        lambda s: s == 200,
        timeout=120,
        what="the first server to be ready",
    )
    assert first.stop() == 0
    offline = ServeProcess(
        [
            "--model-name",
            "fraud",
            "--model-uri",
            registered.uri,
            "--expected-sha256",
            registered.sha256,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        "http://127.0.0.1:9",
        tmp_path / "offline.log",
    )
    try:
        wait_for(
            lambda: httpx.get(f"http://{offline.url}/v2/health/ready").status_code,
            lambda s: s == 200,
            timeout=20,
            what="the restarted server to be ready from the cache",
        )
        assert "from the node cache" in offline.log.read_text()
    finally:
        assert offline.stop() == 0


def test_a_restarted_server_restores_its_recent_window_from_the_state_file(
    tmp_path: Path,
) -> None:
    model = _model_file(tmp_path / "model")
    rows = model["x"][:20]
    args = [
        "--model-name", "fraud", "--model-path", str(model["path"]), "--host", "127.0.0.1",
        "--port", "0", "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    first = ServeProcess(args, "http://127.0.0.1:9", tmp_path / "first.log")
    try:
        _wait_ready(first)
        reply = httpx.post(f"http://{first.url}/v2/models/fraud/infer", json=_infer(rows, "a"))
        labels = reply.json()["outputs"][0]["data"]
        feedback = {"id": "a", "label": labels}
        httpx.post(f"http://{first.url}/v2/models/fraud/feedback", json=feedback)
        before = httpx.get(f"http://{first.url}/drift/window?seconds=3600").json()
    finally:
        assert first.stop() == 0
    assert before["rows"] == 20
    state = tmp_path / "cache" / "windows" / f"fraud-1-{socket.gethostname()}.json"
    assert state.is_file(), sorted(str(p) for p in tmp_path.rglob("*"))

    second = ServeProcess(args, "http://127.0.0.1:9", tmp_path / "second.log")
    try:
        _wait_ready(second)
        after = httpx.get(f"http://{second.url}/drift/window?seconds=3600").json()
        httpx.post(f"http://{second.url}/v2/models/fraud/infer", json=_infer(rows[:1], "b"))
        more = httpx.get(f"http://{second.url}/drift/window?seconds=3600").json()
    finally:
        assert second.stop() == 0
    assert "window: restored" in second.log.read_text()
    for key in ("rows", "features", "predictions", "feedback"):
        assert after[key] == before[key], key
    assert after["feedback"]["labelled"] == 20
    assert after["covered"] >= before["covered"]
    assert more["rows"] == 21


def _model_file(folder: Path) -> dict[str, Any]:
    """A logistic regression as model.onnx with its baseline.json, 6 float inputs."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(300, 6, n_informative=4, random_state=3)
    x = x.astype(np.float32)
    estimator = LogisticRegression().fit(x, y)
    onx = to_onnx(
        estimator,
        initial_types=[("input", FloatTensorType([None, 6]))],
        options={id(estimator): {"zipmap": False}},
    )
    baseline = build_baseline(
        x, [f"f{i}" for i in range(6)], estimator.predict(x), "classification", {},
        estimator.classes_,
    )  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(onx.SerializeToString())
    (folder / "baseline.json").write_text(json.dumps(baseline))
    return {"path": folder / "model.onnx", "x": x}


def _infer(rows: np.ndarray, request_id: str) -> dict[str, Any]:
    shape = list(rows.shape)
    tensor = {"name": "input", "shape": shape, "datatype": "FP32", "data": rows.tolist()}
    return {"id": request_id, "inputs": [tensor]}


def _wait_ready(server: ServeProcess) -> None:
    wait_for(
        lambda: httpx.get(f"http://{server.url}/v2/health/ready").status_code,
        lambda status: status == 200,
        timeout=30,
        what=f"{server.url} to be ready (log: {server.log})",
    )


def _cached_model(server: ServeProcess, sha256: str) -> str:
    return str(server.log.parent / "cache" / sha256 / "model.onnx")
