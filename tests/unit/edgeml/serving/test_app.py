"""A real server on loopback: the OIP routes, errors as 4xx JSON, metrics, feedback, framing."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeml.serving.loader import ModelSource
from support.models import fails_on_single_rows


def body(rows: list[list[float]], **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}],
        **extra,
    }


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric line starting {line_start!r} in:\n{text}")


def raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def test_health_metadata_and_readiness(lr_server: Any) -> None:
    client = lr_server.client
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/m/ready").status_code == 200
    metadata = client.get("/v2/models/m").json()
    assert metadata["name"] == "m"
    assert metadata["versions"] == ["1"]
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]


@pytest.mark.parametrize("name", ["lr", "rf", "reg"])
def test_predictions_equal_onnxruntime(
    name: str, models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    files = models[name]
    server = start_server(source=ModelSource(path=files.path))
    server.wait_ready()
    rows = files.x[:5]
    response = server.client.post("/v2/models/m/infer", json=body(rows.tolist()))
    assert response.status_code == 200, response.text
    expected = ort.InferenceSession(files.path).run(None, {"input": rows})
    outputs = response.json()["outputs"]
    for output, want in zip(outputs, expected, strict=True):
        assert output["shape"] == list(want.shape)
        np.testing.assert_allclose(np.asarray(output["data"]).reshape(want.shape), want, rtol=1e-6)


def test_requested_outputs_only_and_the_client_id_echoed(lr_server: Any) -> None:
    response = lr_server.client.post(
        "/v2/models/m/versions/1/infer",
        json=body([[0, 0, 0, 1]], id="req-1", outputs=[{"name": "probabilities"}]),
    )
    document = response.json()
    assert document["id"] == "req-1"
    assert document["model_version"] == "1"
    assert [o["name"] for o in document["outputs"]] == ["probabilities"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "message"),
    [
        ("POST", "/v2/models/other/infer", body([[0, 0, 0, 0]]), 404, "unknown model 'other'"),
        ("GET", "/v2/models/other", None, 404, "unknown model 'other'"),
        ("POST", "/v2/models/m/versions/9/infer", body([[0, 0, 0, 0]]), 404, "no version '9'"),
        ("GET", "/v2/models/m/infer", None, 405, "not allowed"),
        ("GET", "/nowhere", None, 404, "no route"),
        ("POST", "/v2/models/m/infer", {"inputs": [{"name": "input"}]}, 400, "shape"),
        ("POST", "/v2/models/m/infer", body([[0, 0, 0]]), 400, "has 3 values; shape [1, 4]"),
    ],
)
def test_bad_requests_get_4xx_json_errors(
    lr_server: Any, method: str, path: str, payload: Any, status: int, message: str
) -> None:
    response = lr_server.client.request(method, path, json=payload)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_bad_json_is_400_and_counted_as_a_client_error(lr_server: Any) -> None:
    response = lr_server.client.post("/v2/models/m/infer", content=b"{oops")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    metrics = lr_server.client.get("/metrics").text
    assert metric(metrics, 'edgeml_serve_requests_total{model="m",outcome="client_error"') == 1


def test_an_oversized_body_is_413_before_it_is_read(lr_server: Any) -> None:
    head = b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n"
    reply = raw_exchange(lr_server.port, head)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"over the limit of 65536" in reply


def test_malformed_http_is_400_and_the_server_carries_on(lr_server: Any) -> None:
    assert raw_exchange(lr_server.port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert lr_server.client.get("/v2/health/live").status_code == 200


def test_pipelined_and_chunked_requests_are_answered_in_order(lr_server: Any) -> None:
    payload = b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[0,0,0,0]}]}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    requests = (
        b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n"
        + b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        + chunked
        + b"GET /v2/models/m/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    reply = raw_exchange(lr_server.port, requests)
    assert reply.count(b"HTTP/1.1 200 OK") == 3
    assert b'"model_name":"m"' in reply


def test_large_batches_run_off_the_loop_and_still_answer(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    from dataclasses import replace

    from edgeml.serving.app import AppSettings

    server = start_server(
        source=ModelSource(path=models["lr"].path),
        settings=replace(AppSettings("m", "1"), inline_max_rows=2),
    )
    server.wait_ready()
    response = server.client.post("/v2/models/m/infer", json=body(models["lr"].x[:50].tolist()))
    assert response.status_code == 200
    assert response.json()["outputs"][0]["shape"] == [50]


def test_feature_histograms_use_the_baseline_edges_closed_below(
    lr_server: Any, models: dict[str, Any]
) -> None:
    baseline = models["lr"].baseline
    # f3 is 0/1: its edges are [0.0, 1.0]; a 0 belongs to the bin [0, 1), below le="1.0".
    assert baseline["features"][3]["edges"] == [0.0, 1.0]
    lr_server.client.post("/v2/models/m/infer", json=body([[0, 0, 0, 0], [0, 0, 0, 1]]))
    lr_server.client.post("/v2/models/m/infer", json=body([[0, 0, 0, 1]]))
    text = lr_server.client.get("/metrics").text
    f3 = 'edgeml_serve_feature_value_bucket{feature="f3"'
    assert metric(text, f3 + ',le="0.0"') == 0
    assert metric(text, f3 + ',le="1.0"') == 1
    assert metric(text, f3 + ',le="+Inf"') == 3
    for feature in baseline["features"]:
        les = [
            line.split('le="')[1].split('"')[0]
            for line in text.splitlines()
            if line.startswith(f'edgeml_serve_feature_value_bucket{{feature="{feature["name"]}"')
        ]
        assert [float(le) for le in les[:-1]] == feature["edges"]
    assert metric(text, 'edgeml_serve_batch_rows_count{model="m"') == 2
    assert metric(text, 'edgeml_serve_requests_total{model="m",outcome="ok"') == 2
    classes = sum(
        metric(text, f'edgeml_serve_predictions_total{{class="{c}"')
        for c in baseline["prediction"]["classes"]
    )
    assert classes == 3
    assert f'sha256="{models["lr"].sha256}"' in text


def test_regression_predictions_are_binned_by_the_baseline(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    server = start_server(source=ModelSource(path=models["reg"].path))
    server.wait_ready()
    server.client.post("/v2/models/m/infer", json=body([[0, 0, 0, 0]]))
    text = server.client.get("/metrics").text
    edges = models["reg"].baseline["prediction"]["edges"]
    les = [
        float(line.split('le="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("edgeml_serve_prediction_value_bucket") and "+Inf" not in line
    ]
    assert les == edges
    assert metric(text, "edgeml_serve_prediction_value_count") == 1


def test_feedback_counts_correct_predictions_and_refuses_unknown_ids(lr_server: Any) -> None:
    client = lr_server.client
    first = client.post("/v2/models/m/infer", json=body([[3, 3, 0, 0]], id="a")).json()
    label = first["outputs"][0]["data"][0]
    client.post("/v2/models/m/infer", json=body([[3, 3, 0, 0], [-3, -3, 0, 0]], id="b"))
    assert client.post("/v2/models/m/feedback", json={"id": "a", "label": label}).json() == {
        "accepted": 1,
        "correct": 1,
    }
    reply = client.post("/v2/models/m/feedback", json=[{"id": "b", "label": [label, label]}])
    assert reply.json() == {"accepted": 2, "correct": 1}
    again = client.post("/v2/models/m/feedback", json={"id": "a", "label": label})
    assert again.status_code == 404
    assert "no recent prediction has id 'a'" in again.json()["error"]
    wrong_count = client.post("/v2/models/m/feedback", json={"id": "c", "label": 1})
    assert wrong_count.status_code == 404
    assert client.post("/v2/models/m/feedback", json={"label": 1}).status_code == 400
    text = client.get("/metrics").text
    assert metric(text, 'edgeml_serve_feedback_total{model="m"') == 3
    assert metric(text, 'edgeml_serve_feedback_correct_total{model="m"') == 2


def test_the_feedback_memory_is_bounded(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    server = start_server(source=ModelSource(path=models["reg"].path))
    server.wait_ready()
    for i in range(150):  # capacity is 100 in these tests
        server.client.post("/v2/models/m/infer", json=body([[0, 0, 0, 0]], id=f"r{i}"))
    assert len(server.serving.app.memory) == 100
    old = server.client.post("/v2/models/m/feedback", json={"id": "r0", "label": 1.0})
    assert old.status_code == 404
    recent = server.client.post("/v2/models/m/feedback", json={"id": "r149", "label": 1.0})
    assert recent.status_code == 200
    text = server.client.get("/metrics").text
    assert metric(text, "edgeml_serve_feedback_absolute_error_count") == 1


def test_a_model_that_fails_at_run_time_is_a_server_error(
    models: dict[str, Any], start_server: Any, tmp_path: Path
) -> None:
    """A request that matches the declared inputs but fails inside the graph is the
    model's fault: 500, counted as server_error, so canary analysis rejects the version."""
    broken = fails_on_single_rows(onnx.load(str(models["lr"].path)), features=4)
    path = tmp_path / "broken.onnx"
    path.write_bytes(broken.SerializeToString())
    server = start_server(source=ModelSource(path=path))
    server.wait_ready()
    response = server.client.post("/v2/models/m/infer", json=body([[0.1, 0.2, 0.3, 1.0]]))
    assert response.status_code == 500
    assert response.json()["error"] == "inference failed inside the model (Fail)"
    seven = server.client.post("/v2/models/m/infer", json=body([[0.1, 0.2, 0.3, 1.0]] * 7))
    assert seven.status_code == 200  # the same graph answers what it can take
    metrics = server.client.get("/metrics").text
    assert metric(metrics, 'edgeml_serve_requests_total{model="m",outcome="server_error"') == 1
    assert metric(metrics, 'edgeml_serve_requests_total{model="m",outcome="client_error"') == 0
