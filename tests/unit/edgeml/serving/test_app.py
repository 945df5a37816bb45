"""A real server on loopback: the OIP routes, errors as 4xx JSON, metrics, feedback, framing."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeml.serving.app import AppSettings, ServingApp
from edgeml.serving.httpserver import Request
from edgeml.serving.loader import ModelSource
from edgeml.serving.model import LoadedModel
from edgeml.serving.window import StateLocation, Tier
from edgeml.training.baseline import bin_counts
from support.models import fails_on_single_rows
from support.wait import wait_for


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
    true, other = str(label), "0" if str(label) == "1" else "1"
    confusion = 'edgeml_serve_feedback_confusion_total{label="%s",model="m",predicted="%s"'
    assert metric(text, confusion % (true, true)) == 2
    assert metric(text, confusion % (true, other)) == 1  # b's second row: predicted other


def test_the_feedback_memory_is_bounded(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    server = start_server(source=ModelSource(path=models["reg"].path))
    server.wait_ready()
    for i in range(150):  # capacity is 100 in these tests
        reply = server.client.post("/v2/models/m/infer", json=body([[0, 0, 0, 0]], id=f"r{i}"))
    predicted = reply.json()["outputs"][0]["data"][0]
    assert len(server.serving.app.memory) == 100
    old = server.client.post("/v2/models/m/feedback", json={"id": "r0", "label": 1.0})
    assert old.status_code == 404
    recent = server.client.post("/v2/models/m/feedback", json={"id": "r149", "label": 1.0})
    assert recent.status_code == 200
    text = server.client.get("/metrics").text
    assert metric(text, "edgeml_serve_feedback_total") == 1
    error = predicted - 1.0
    assert metric(text, "edgeml_serve_feedback_absolute_error_total") == pytest.approx(abs(error))
    assert metric(text, "edgeml_serve_feedback_squared_error_total") == pytest.approx(error**2)


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


# --- /drift/window ------------------------------------------------------------------------------

WINDOW_KEYS = {"model", "version", "ready", "seconds", "covered", "rows", "features",
               "predictions", "feedback"}  # fmt: skip


def test_the_window_counts_features_predictions_and_feedback(
    lr_server: Any, models: dict[str, Any]
) -> None:
    client = lr_server.client
    files = models["lr"]
    rows = files.x[:5]
    first = client.post("/v2/models/m/infer", json=body(rows.tolist(), id="a")).json()
    client.post("/v2/models/m/infer", json=body([[0, 0, 0, 1]], id="b"))
    predicted = [str(v) for v in first["outputs"][0]["data"]]
    truth = ["1" if predicted[0] == "0" else "0", *predicted[1:]]  # the first one wrong
    client.post("/v2/models/m/feedback", json={"id": "a", "label": truth})

    reply = client.get("/drift/window")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    window = reply.json()
    assert set(window) == WINDOW_KEYS
    assert (window["model"], window["version"], window["ready"]) == ("m", "1", True)
    assert window["seconds"] == 900
    assert 0 < window["covered"] < 120
    assert window["rows"] == 6
    everything = np.vstack([rows, [[0, 0, 0, 1]]]).astype(np.float64)
    assert list(window["features"]) == ["f0", "f1", "f2", "f3"]
    for i, feature in enumerate(files.baseline["features"]):
        assert window["features"][feature["name"]] == bin_counts(everything[:, i], feature["edges"])
    predictions = window["predictions"]
    assert predictions["kind"] == "classification"
    assert list(predictions["counts"]) == files.baseline["prediction"]["classes"]
    assert sum(predictions["counts"].values()) == 6
    expected: dict[str, dict[str, int]] = {}
    for true, guess in zip(truth, predicted, strict=True):
        expected.setdefault(true, {})[guess] = expected.get(true, {}).get(guess, 0) + 1
    assert window["feedback"] == {"labelled": 5, "confusion": expected}


def test_the_window_of_a_regression_bins_predictions_and_sums_errors(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    server = start_server(source=ModelSource(path=models["reg"].path))
    server.wait_ready()
    reply = server.client.post(
        "/v2/models/m/infer", json=body([[0, 0, 0, 0], [1, 1, 1, 1]], id="a")
    )
    values = reply.json()["outputs"][0]["data"]
    server.client.post("/v2/models/m/feedback", json={"id": "a", "label": [1.0, 2.0]})
    window = server.client.get("/drift/window", params={"seconds": 60}).json()
    assert window["seconds"] == 60
    edges = models["reg"].baseline["prediction"]["edges"]
    assert window["predictions"] == {
        "kind": "regression",
        "counts": bin_counts(np.asarray(values, dtype=np.float64), edges),
    }
    errors = [values[0] - 1.0, values[1] - 2.0]
    feedback = window["feedback"]
    assert feedback["labelled"] == 2
    assert feedback["absoluteErrorSum"] == pytest.approx(sum(abs(e) for e in errors))
    assert feedback["squaredErrorSum"] == pytest.approx(sum(e * e for e in errors))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("seconds=0", "from 1 to 86400, not '0'"),
        ("seconds=86401", "from 1 to 86400, not '86401'"),
        ("seconds=-5", "not '-5'"),
        ("seconds=1.5", "not '1.5'"),
        ("seconds=abc", "not 'abc'"),
        ("seconds=", "not ''"),
        ("seconds=%C2%B2", "not"),  # a superscript two is a digit to str.isdigit
        ("seconds=60&seconds=120", "given 2 times"),
        ("second=60", "unknown query parameter 'second'"),
    ],
)
def test_a_bad_window_length_is_a_400(lr_server: Any, query: str, message: str) -> None:
    reply = lr_server.client.get(f"/drift/window?{query}")
    assert reply.status_code == 400
    assert message in reply.json()["error"]


def test_the_window_answers_while_no_model_is_loaded(
    models: dict[str, Any], start_server: Callable[..., Any]
) -> None:
    server = start_server(source=ModelSource(path=models["lr"].path, expected_sha256="0" * 64))
    window = server.client.get("/drift/window?seconds=86400").json()
    assert window == {
        "model": "m",
        "version": "1",
        "ready": False,
        "seconds": 86400,
        "covered": 0.0,
        "rows": 0,
        "features": {},
        "predictions": {"kind": None, "counts": {}},
        "feedback": {"labelled": 0},
    }


def test_the_window_of_a_model_without_a_baseline_has_no_features(
    models: dict[str, Any], start_server: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "alone" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(models["lr"].model_bytes)
    server = start_server(source=ModelSource(path=path))
    server.wait_ready()
    server.client.post("/v2/models/m/infer", json=body([[3, 3, 0, 0], [3, 3, 0, 1]]))
    window = server.client.get("/drift/window").json()
    assert window["features"] == {}
    assert window["rows"] == 2
    assert sum(window["predictions"]["counts"].values()) == 2


def test_a_stopped_server_saves_its_window_and_the_next_one_restores_it(
    models: dict[str, Any], start_server: Callable[..., Any], tmp_path: Path
) -> None:
    state = tmp_path / "state" / "window.json"
    settings = AppSettings("m", "1", window_state=StateLocation(path=state))
    source = ModelSource(path=models["lr"].path)
    first = start_server(source=source, settings=settings)
    first.wait_ready()
    first.client.post("/v2/models/m/infer", json=body(models["lr"].x[:7].tolist()))
    before = first.client.get("/drift/window").json()
    first.close()
    assert state.is_file()
    second = start_server(source=source, settings=settings)
    second.wait_ready()
    after = second.client.get("/drift/window").json()
    assert after["rows"] == 7
    assert after["features"] == before["features"]
    assert after["predictions"] == before["predictions"]
    assert after["covered"] >= before["covered"]


def test_the_window_is_saved_at_each_slot_boundary(
    models: dict[str, Any], start_server: Callable[..., Any], tmp_path: Path
) -> None:
    state = tmp_path / "window.json"
    settings = AppSettings(
        "m", "1", window_state=StateLocation(path=state), window_fine=Tier(1, 60),
        window_coarse=Tier(60, 24),
    )  # fmt: skip
    server = start_server(source=ModelSource(path=models["lr"].path), settings=settings)
    server.wait_ready()
    server.client.post("/v2/models/m/infer", json=body(models["lr"].x[:3].tolist()))

    def saved_rows() -> int:
        document = json.loads(state.read_text())
        assert document["partial"] is None  # a boundary save, not the shutdown one
        rows = document["keys"].index(["rows"]) if ["rows"] in document["keys"] else -1
        return sum(v for s in document["fine"] for k, v in s["counts"] if k == rows)

    wait_for(saved_rows, lambda n: n == 3, timeout=10, what="3 rows in a saved slot")


def test_an_unwritable_window_state_does_not_stop_the_server(
    models: dict[str, Any],
    start_server: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "file").write_text("not a directory")
    settings = AppSettings(
        "m", "1", window_state=StateLocation(path=tmp_path / "file" / "w.json"),
        window_fine=Tier(1, 60), window_coarse=Tier(60, 24),
    )  # fmt: skip
    caplog.set_level(logging.WARNING, logger="edgeml.serve.window")
    server = start_server(source=ModelSource(path=models["lr"].path), settings=settings)
    server.wait_ready()
    server.client.post("/v2/models/m/infer", json=body([[0, 0, 0, 0]]))
    wait_for(
        lambda: [r.getMessage() for r in caplog.records],
        lambda messages: any("cannot save the window" in m for m in messages),
        timeout=10,
        what="a boundary save to fail and be logged",
    )
    assert server.client.get("/v2/health/ready").status_code == 200
    assert server.client.get("/drift/window").json()["rows"] == 1
    assert server.serving.app.window.rolls >= 1  # it counts on past the failed save


def test_installing_another_version_starts_an_empty_window(models: dict[str, Any]) -> None:
    files = models["lr"]
    app = ServingApp(AppSettings("m", "1"))
    try:
        model = LoadedModel(files.model_bytes)
        app.install(model, files.sha256, files.baseline, "1")
        infer = json.dumps(body([[0, 0, 0, 0]])).encode()
        assert app.handle(Request("POST", "/v2/models/m/infer", {}, infer)).status == 200
        read = Request("GET", "/drift/window", {}, b"", "seconds=60")
        assert json.loads(app.handle(read).body)["rows"] == 1
        app.install(model, files.sha256, files.baseline, "2")
        window = json.loads(app.handle(read).body)
        assert (window["version"], window["rows"]) == ("2", 0)
        assert window["features"]["f0"] == [0] * (len(files.baseline["features"][0]["edges"]) + 1)
        assert window["feedback"] == {"labelled": 0, "confusion": {}}
    finally:
        app.close()
