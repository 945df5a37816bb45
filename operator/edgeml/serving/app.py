"""The routes of `edgeml serve`: Open Inference Protocol v2, /metrics, feedback, and
/drift/window (this pod's counts over a recent window, see window.py).

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
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edgeml.serving.feedback import PredictionMemory
from edgeml.serving.httpserver import Request, Response
from edgeml.serving.metrics import (
    ABSOLUTE_ERROR,
    CLASS,
    CONFUSION,
    FEATURE,
    LABELLED,
    PREDICTION,
    ROWS,
    SQUARED_ERROR,
    Distributions,
    ServingMetrics,
    class_labels,
)
from edgeml.serving.model import LoadedModel
from edgeml.serving.protocol import (
    InferRequest,
    RequestError,
    encode_error,
    encode_infer_response,
    parse_infer_request,
    parse_json_body,
)
from edgeml.serving.window import (
    COARSE,
    FINE,
    MAX_WINDOW_SECONDS,
    Counts,
    StateFile,
    StateLocation,
    Tier,
    Window,
    WindowIdentity,
    bins_digest,
    remove_stale_states,
)

log = logging.getLogger("edgeml.serve")

PLATFORM = "onnxruntime_onnx"
_OK_EMPTY = b""
_JSON = b"application/json"
DEFAULT_WINDOW_SECONDS = 900
BOUNDARY_LAG_SECONDS = 0.005
"""How long after a slot boundary the window task wakes (wall and monotonic time drift)."""


@dataclass(frozen=True)
class AppSettings:
    """What the routes need to know about this server."""

    model_name: str
    model_version: str
    feedback_capacity: int = 10000
    inline_max_rows: int = 128
    window_state: StateLocation | None = None  # None: the window is kept in memory only
    window_fine: Tier = FINE
    window_coarse: Tier = COARSE


def _error(status: int, message: str) -> Response:
    return Response(status, encode_error(message))


class ServingApp:
    """The server's state (model, readiness, metrics, feedback memory) and its routes."""

    def __init__(
        self,
        settings: AppSettings,
        metrics: ServingMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
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
        self._infer_path = f"{self._model_prefix}/infer"
        self._clock = clock
        self.window: Window | None = None
        self._window_file: StateFile | None = None

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
        bins = _distribution_bins(model, baseline)
        self.metrics.distributions.configure(*bins, version=self.version)
        self.metrics.feedback.reset(self.version)
        self._start_window(bins_digest(*bins))
        self.metrics.info.labels(self.name, self.version, sha256).set(1)
        self.metrics.ready.set(1)
        self.sha256 = sha256
        self.model = model

    def _start_window(self, digest: str) -> None:
        """A new, empty window for the installed version, restored from its saved state
        if there is one for the same model, version and bins."""
        settings = self.settings
        window = Window(
            WindowIdentity(self.name, self.version, digest),
            self.metrics.counts,
            clock=self._clock,
            fine=settings.window_fine,
            coarse=settings.window_coarse,
        )
        location = settings.window_state
        path = location.file_for(self.name, self.version) if location else None
        state_file = None
        if path is None:
            log.info("window: kept in memory only (no state file)")
        else:
            state_file = StateFile(path)
            if location is not None and location.directory is not None:
                retention = settings.window_coarse.span + settings.window_fine.width
                remove_stale_states(location.directory, self._clock() - retention)
            document, missing = state_file.load()
            outcome = window.restore(document) if document is not None else missing
            log.info("window: %s (state file %s)", outcome, path)
        self.window = window
        self._window_file = state_file

    async def keep_window(self) -> None:
        """Roll the window at each fine slot boundary and save it; runs until cancelled."""
        width = self.settings.window_fine.width
        saved: tuple[Window, int] | None = None  # the window and its rolls when last saved
        while True:
            now = self._clock()
            await asyncio.sleep((now // width + 1) * width - now + BOUNDARY_LAG_SECONDS)
            window, state_file = self.window, self._window_file
            if window is None:
                continue
            try:
                window.roll()  # so each slot gets exactly the requests counted in it
                # Not roll()'s answer: a read may have rolled past the boundary first.
                if state_file is not None and window.rolls and saved != (window, window.rolls):
                    saved = (window, window.rolls)
                    await asyncio.to_thread(state_file.save, window.state())
            except Exception:  # a bug here must not stop the rolling, nor the server
                log.exception("window: rolling or saving failed")

    async def save_window(self) -> None:
        """Save the window with its current partial slot (at shutdown: nothing is lost)."""
        if self.window is not None and self._window_file is not None:
            await asyncio.to_thread(self._window_file.save, self.window.state(partial=True))

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
        if path == self._infer_path and method == "POST":  # the hot path, before the rest
            return self._infer(request)
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
        if path == "/drift/window":
            return self._drift_window(request.query)
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
        if model.task.classification:
            labels = class_labels(prediction)
            distributions.observe_predictions(prediction, labels)
            self.memory.remember(request_id, labels)
        else:
            distributions.observe_predictions(prediction)
            self.memory.remember(request_id, prediction.reshape(-1).tolist())

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
        feedback = self.metrics.feedback
        rows = correct = 0
        for judgement in judgements:
            feedback.add(judgement)
            rows += judgement.rows
            correct += judgement.correct
        return Response(200, orjson.dumps({"accepted": rows, "correct": correct}))

    # --- the recent window ----------------------------------------------------------------

    def _drift_window(self, query: str) -> Response:
        """This pod's counts over the last `seconds` (answered when unready, like /metrics:
        the counts are empty only while no model is installed)."""
        try:
            seconds = window_seconds(query)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        body: dict[str, Any] = {
            "model": self.name,
            "version": self.version,
            "ready": self.ready,
            "seconds": seconds,
        }
        if self.window is None:
            empty: dict[str, Any] = {"kind": None, "counts": {}}
            body.update(covered=0.0, rows=0, features={}, predictions=empty,
                        feedback={"labelled": 0})  # fmt: skip
        else:
            read = self.window.read(seconds)
            body["covered"] = round(read.covered, 3)
            body.update(window_body(read.counts, self.metrics.distributions))
        return Response(200, orjson.dumps(body))


def window_seconds(query: str) -> int:
    """The `seconds` of a /drift/window query (default 900); RequestError 400 if bad."""
    fields = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(fields) - {"seconds"})
    if unknown:
        raise RequestError(400, f"unknown query parameter {unknown[0]!r}; the only one is "
                           "'seconds'")  # fmt: skip
    values = fields.get("seconds", [str(DEFAULT_WINDOW_SECONDS)])
    if len(values) != 1:
        raise RequestError(400, f"seconds is given {len(values)} times; give it once")
    text = values[0]
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_WINDOW_SECONDS:
        raise RequestError(
            400, f"seconds must be a whole number from 1 to {MAX_WINDOW_SECONDS}, not {text[:40]!r}"
        )
    return int(text)


def window_body(counts: Counts, distributions: Distributions) -> dict[str, Any]:
    """The counts part of a /drift/window answer, over the bins being counted."""

    def count(key: tuple[str, ...]) -> int:
        return int(counts.get(key, 0))

    features = {
        name: [count((FEATURE, name, str(i))) for i in range(len(bins.counts))]
        for name, bins in distributions.features
    }
    labelled = count(LABELLED)
    predictions: dict[str, Any]
    feedback: dict[str, Any]
    if distributions.regression is not None:
        bins = range(len(distributions.regression.counts))
        predictions = {"kind": "regression", "counts": [count((PREDICTION, str(i))) for i in bins]}
        feedback = {
            "labelled": labelled,
            "absoluteErrorSum": float(counts.get(ABSOLUTE_ERROR, 0.0)),
            "squaredErrorSum": float(counts.get(SQUARED_ERROR, 0.0)),
        }
    else:
        # The baseline's classes (zeros too: they are bins), then any other predicted.
        classes = dict.fromkeys(distributions.classes, 0)
        confusion: dict[str, dict[str, int]] = {}
        for key, value in sorted(counts.items()):
            if key[0] == CLASS:
                classes[key[1]] = int(value)
            elif key[0] == CONFUSION:
                confusion.setdefault(key[1], {})[key[2]] = int(value)
        predictions = {"kind": "classification", "counts": classes}
        feedback = {"labelled": labelled, "confusion": confusion}
    return {"rows": count(ROWS), "features": features, "predictions": predictions,
            "feedback": feedback}  # fmt: skip


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
