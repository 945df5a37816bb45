"""The routes of `edgeml serve`: Open Inference Protocol v2, /metrics, feedback.

`ServingApp.handle` turns a framed HTTP request into a response. Small inference
requests run inline on the event loop: a single-row run takes about 10 µs, less than a
hop to a worker thread costs; batches over `inline_max_rows` go to one worker thread
so the loop keeps answering probes and small requests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edgeml.serving.feedback import PredictionMemory
from edgeml.serving.httpserver import Request, Response
from edgeml.serving.metrics import ServingMetrics
from edgeml.serving.model import LoadedModel
from edgeml.serving.protocol import (
    InferRequest,
    RequestError,
    encode_error,
    encode_infer_response,
    parse_infer_request,
    parse_json_body,
)

log = logging.getLogger("edgeml.serve")

PLATFORM = "onnxruntime_onnx"
_OK_EMPTY = b""
_JSON = b"application/json"


@dataclass(frozen=True)
class AppSettings:
    """What the routes need to know about this server."""

    model_name: str
    model_version: str
    feedback_capacity: int = 10000
    inline_max_rows: int = 128


def _error(status: int, message: str) -> Response:
    return Response(status, encode_error(message))


class ServingApp:
    """The server's state (model, readiness, metrics, feedback memory) and its routes."""

    def __init__(self, settings: AppSettings, metrics: ServingMetrics | None = None) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.version = settings.model_version
        self.metrics = metrics or ServingMetrics(self.name, self.version)
        self.model: LoadedModel | None = None
        self.sha256: str | None = None
        self.unready_reason = "the model is not loaded yet"
        self.draining = False
        self.memory = PredictionMemory(settings.feedback_capacity, classification=True)
        self._ids = itertools.count(1)
        self._id_prefix = f"{os.getpid():x}-{int(time.time()):x}-"
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="edgeml-infer")
        self._prediction_index = 0
        self._model_prefix = f"/v2/models/{self.name}"

    # --- state ---------------------------------------------------------------------------

    def install(
        self,
        model: LoadedModel,
        sha256: str,
        baseline: dict[str, Any] | None,
        version: str | None = None,
    ) -> None:
        """Start serving a verified, loaded model."""
        if version and version != self.version:
            self.version = version
            self.metrics.bind(version)
        self.memory = PredictionMemory(
            self.settings.feedback_capacity, classification=model.task.classification
        )
        self._prediction_index = model.output_names.index(model.task.prediction_output)
        self.metrics.distributions.configure(
            *_distribution_bins(model, baseline), version=self.version
        )
        self.metrics.info.labels(self.name, self.version, sha256).set(1)
        self.metrics.ready.set(1)
        self.sha256 = sha256
        self.model = model

    def set_unready(self, reason: str) -> None:
        """Say why the server is not ready (it serves nothing until `install`)."""
        self.unready_reason = reason

    def close(self) -> None:
        """Stop the worker thread."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    @property
    def ready(self) -> bool:
        """Whether inference requests can be answered."""
        return self.model is not None and not self.draining

    def _not_ready(self) -> Response:
        reason = "the server is shutting down" if self.draining else self.unready_reason
        return _error(503, f"model '{self.name}' is not ready: {reason}")

    # --- routes ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        """Route one request."""
        path = request.path
        method = request.method
        if path.startswith(self._model_prefix):
            rest = path[len(self._model_prefix) :]
            if rest.startswith("/versions/"):
                version, _, rest = rest[len("/versions/") :].partition("/")
                rest = "/" + rest if rest else ""
                if version != self.version:
                    return _error(
                        404,
                        f"model '{self.name}' has no version '{version}' here; it serves "
                        f"version '{self.version}'",
                    )
            if rest == "/infer":
                return self._infer(request) if method == "POST" else self._method(method)
            if rest in ("", "/"):
                return self._metadata() if method == "GET" else self._method(method)
            if rest == "/ready":
                return self._model_ready() if method == "GET" else self._method(method)
            if rest == "/feedback":
                return self._feedback(request) if method == "POST" else self._method(method)
            return _error(404, f"no route {path}")
        if path.startswith("/v2/models/"):
            name = path[len("/v2/models/") :].split("/", 1)[0]
            return _error(404, f"unknown model '{name}'; this server serves '{self.name}'")
        if method not in ("GET", "HEAD"):
            return self._method(method)
        if path == "/v2/health/live":
            return Response(200, _OK_EMPTY)
        if path == "/v2/health/ready":
            return Response(200, _OK_EMPTY) if self.ready else self._not_ready()
        if path == "/metrics":
            return Response(200, generate_latest(self.metrics.registry),
                            CONTENT_TYPE_LATEST.encode())  # fmt: skip
        if path in ("/v2", "/v2/"):
            return Response(200, orjson.dumps({"name": "edgeml", "version": _version(),
                                               "extensions": ["binary_tensor_data"]}))  # fmt: skip
        return _error(404, f"no route {path}")

    def _method(self, method: str) -> Response:
        return _error(405, f"method {method} is not allowed here")

    def _model_ready(self) -> Response:
        return Response(200, _OK_EMPTY) if self.ready else self._not_ready()

    def _metadata(self) -> Response:
        model = self.model
        if model is None:
            return self._not_ready()
        body: dict[str, Any] = {
            "name": self.name,
            "versions": [self.version],
            "platform": PLATFORM,
            "inputs": [spec.metadata() for spec in model.inputs.values()],
            "outputs": [spec.metadata() for spec in model.outputs],
        }
        if self.sha256:
            body["parameters"] = {"sha256": self.sha256}
        return Response(200, orjson.dumps(body))

    # --- inference ------------------------------------------------------------------------

    def _infer(self, request: Request) -> Response | Awaitable[Response]:
        started = time.perf_counter()
        model = self.model
        metrics = self.metrics
        if model is None or self.draining:
            metrics.server_error.inc()
            return self._not_ready()
        try:
            header = request.headers.get("inference-header-content-length")
            parsed = parse_infer_request(
                request.body,
                model.inputs,
                model.output_names,
                model.dtypes,
                int(header) if header is not None and header.isdigit() else None,
            )
        except RequestError as exc:
            metrics.client_error.inc()
            metrics.latency_child.observe(time.perf_counter() - started)
            return _error(exc.status, exc.message)
        if parsed.rows > self.settings.inline_max_rows:
            return self._infer_in_worker(model, parsed, started)
        try:
            outputs = model.run(parsed.inputs)
        except Exception as exc:
            return self._run_failed(exc, started)
        return self._respond(model, parsed, outputs, started)

    async def _infer_in_worker(
        self, model: LoadedModel, parsed: InferRequest, started: float
    ) -> Response:
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._worker, model.run, parsed.inputs)
        except Exception as exc:
            return self._run_failed(exc, started)
        return self._respond(model, parsed, outputs, started)

    def _run_failed(self, exc: Exception, started: float) -> Response:
        # The request matched the model's declared inputs, so a failure inside the graph
        # is the model's: a server error, which canary analysis counts against the
        # version. Only onnxruntime's InvalidArgument (say, two inputs whose shared
        # dynamic dimension disagrees) is the input's fault.
        if type(exc).__name__ == "InvalidArgument":
            self.metrics.client_error.inc()
            self.metrics.latency_child.observe(time.perf_counter() - started)
            return _error(400, f"the model refused the input: {exc}")
        log.error("inference failed: %s", " ".join(str(exc).split())[:500])
        self.metrics.server_error.inc()
        self.metrics.latency_child.observe(time.perf_counter() - started)
        # The graph's own words (node names, paths) stay in the log, not with the client.
        return _error(500, f"inference failed inside the model ({type(exc).__name__})")

    def _respond(
        self,
        model: LoadedModel,
        parsed: InferRequest,
        outputs: list[npt.NDArray[Any]],
        started: float,
    ) -> Response:
        metrics = self.metrics
        request_id = parsed.id or f"{self._id_prefix}{next(self._ids)}"
        prediction = outputs[self._prediction_index]
        features = next(iter(parsed.inputs.values()))
        distributions = metrics.distributions
        distributions.observe_features(features)
        distributions.observe_predictions(prediction)
        self.memory.remember(request_id, _remembered(prediction, model.task.classification))

        names = parsed.outputs or model.output_names
        datatypes = model.output_datatypes
        if parsed.outputs is None:
            selected = [(n, datatypes[n], a) for n, a in zip(names, outputs, strict=True)]
        else:
            by_name = dict(zip(model.output_names, outputs, strict=True))
            selected = [(n, datatypes[n], by_name[n]) for n in names]
        body, header_length = encode_infer_response(
            self.name, self.version, request_id, selected, parsed.binary_outputs
        )
        metrics.batch_child.observe(parsed.rows)
        metrics.ok.inc()
        metrics.latency_child.observe(time.perf_counter() - started)
        if header_length is None:
            return Response(200, body)
        return Response(200, body, b"application/octet-stream",
                        [("inference-header-content-length", str(header_length))])  # fmt: skip

    # --- feedback -------------------------------------------------------------------------

    def _feedback(self, request: Request) -> Response:
        if self.model is None:
            return self._not_ready()
        try:
            document = parse_json_body(request.body)
            items = document if isinstance(document, list) else [document]
            if not items or not all(isinstance(i, dict) and "label" in i for i in items):
                raise RequestError(
                    400, "feedback is {'id': ..., 'label': ...} or a non-empty list of them"
                )
            judgements = [self.memory.judge(item.get("id"), item["label"]) for item in items]
        except RequestError as exc:
            return _error(exc.status, exc.message)
        metrics = self.metrics
        rows = correct = 0
        for judgement in judgements:
            rows += judgement.rows
            correct += judgement.correct
            for error in judgement.absolute_errors:
                metrics.feedback_error_child.observe(error)
        metrics.feedback_child.inc(rows)
        if correct:
            metrics.feedback_correct_child.inc(correct)
        return Response(200, orjson.dumps({"accepted": rows, "correct": correct}))


def _remembered(prediction: npt.NDArray[Any], classification: bool) -> list[Any]:
    values = prediction.reshape(-1).tolist()
    if classification:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return values


def _distribution_bins(
    model: LoadedModel, baseline: dict[str, Any] | None
) -> tuple[list[tuple[str, list[float]]], list[str] | None, list[float] | None]:
    """(feature bins, class labels or None, regression prediction edges) from a baseline."""
    width = next(iter(model.inputs.values())).shape[-1] if model.inputs else -1
    features: list[tuple[str, list[float]]] = []
    classes: list[str] | None = [] if model.task.classification else None
    edges: list[float] | None = None
    if baseline is None:
        return features, classes, edges
    raw_features = baseline.get("features")
    if isinstance(raw_features, list) and len(raw_features) == width:
        features = [
            (str(f.get("name", i)), [float(e) for e in f.get("edges", [])])
            for i, f in enumerate(raw_features)
            if isinstance(f, dict)
        ]
    else:
        log.warning("the baseline's features do not match the model's %d inputs; "
                    "no feature histograms", width)  # fmt: skip
    prediction = baseline.get("prediction")
    if isinstance(prediction, dict):
        if classes is not None and isinstance(prediction.get("classes"), list):
            classes = [str(c) for c in prediction["classes"]]
        elif classes is None and isinstance(prediction.get("edges"), list):
            edges = [float(e) for e in prediction["edges"]]
    return features, classes, edges


def _version() -> str:
    from edgeml import __version__

    return __version__
