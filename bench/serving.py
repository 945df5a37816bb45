"""Serving latency, throughput and memory: `edgeml serve` against its peers, in one run.

Same machine, same client, same model, one run. Trains LogisticRegression and
RandomForest(100 trees) on make_classification (10 features), exports them to ONNX
(edgeml, onnxruntime) and logs the scikit-learn models with MLflow to a temporary
`file:` store (for the peers), then measures, per model, single-row requests on
keep-alive against:

1. onnxruntime `InferenceSession.run` in-process (1 intra-op thread, no spinning),
2. a do-nothing asyncio HTTP server answering a fixed small JSON (the client's floor),
3. `edgeml serve` (OIP v2 JSON, `/v2/models/<name>/infer`),
4. `mlflow models serve --env-manager local` with its defaults (`/invocations`,
   `dataframe_split`),
5. MLServer 1.7.1 + mlserver-mlflow (OIP v2 JSON, one input per column, `pd` content
   type), default settings and tuned (`parallel_workers: 0`), from its own venv;
6. MLServer on its fastest path: `parallel_workers: 0` and a custom runtime over the
   same ONNX export with a 1-thread session (bench/mlserver_onnx.py), fed the one FP32
   tensor edgeml gets.

For each server: p50/p99 over `--requests` sequential requests on one keep-alive
connection with a raw-socket client (hand-written HTTP/1.1, prebuilt request bytes,
Content-Length framing) and with httpx; requests per second for `--seconds` with
`--connections` concurrent keep-alive connections (raw-socket asyncio client, then
httpx.AsyncClient); and the VmRSS of the server's process tree (children included)
with the model loaded, read after the sequential runs. Every answer is checked once
against scikit-learn's prediction before timing; each response's status is checked
while timing. A server that cannot be installed or started is recorded with its error.

Targets (issue 5), raw-socket client: edgeml's own cost per request (its p50 minus the
do-nothing server's p50) under 150 µs; edgeml's throughput at least twice the fastest
peer's; edgeml's RSS under every peer's. Printed, and written with all numbers into
the `bench:serving` section of docs/benchmarks.md (`--no-write` only prints).

Run from the repository root (about 8-10 minutes; the first run also builds the
MLServer venv under ~/.cache/edgeml/bench-venvs with bench/serving_peers.sh):

    .venv/bin/python bench/serving.py
    .venv/bin/python bench/serving.py --requests 2000 --seconds 10 --connections 8
    .venv/bin/python bench/serving.py --only lr --skip mlserver --no-write   # quicker

The peers serve the scikit-learn model (what `mlflow.sklearn.log_model` gives them);
edgeml and the in-process row serve the ONNX export of the same fitted estimator.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
VENV_BIN = REPO / ".venv" / "bin"
BEGIN, END = "<!-- bench:serving begin -->", "<!-- bench:serving end -->"
FEATURES = 10
COLUMNS = [f"f{i}" for i in range(FEATURES)]
MODEL_NAME = "m"
FLOOR_BODY = b'{"ok":true}'
WARMUP = 200
READY_TIMEOUT = 180.0
OWN_COST_TARGET_US = 150.0
THROUGHPUT_FACTOR = 2.0
HTTP_OWN_COST_US = 100.0
"""Issue 12's bar for the HTTP layer: own cost per single-row request."""
FASTEST_FACTOR = 10.0
"""Issue 12's bar: throughput against MLServer on its fastest path."""

# --------------------------------------------------------------------------------------
# Helper processes: the do-nothing server and the in-process measurement.
# --------------------------------------------------------------------------------------


class _FloorProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: every complete request gets the same small JSON."""

    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(FLOOR_BODY)).encode()
        + b"\r\n\r\n"
        + FLOOR_BODY
    )

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = _content_length(bytes(self.buffer[:end]))
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            assert self.transport is not None
            self.transport.write(self.RESPONSE)


def run_floor_server(port: int) -> int:
    """The do-nothing server (a child process of the benchmark)."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FloorProtocol, "127.0.0.1", port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(serve())
    return 0


def run_in_process(model_path: str, requests: int) -> int:
    """Time `InferenceSession.run` on one row; print p50/p99 µs and VmRSS as JSON."""
    import numpy as np

    # Imports only onnxruntime: the raw baseline carries nothing of edgeml serve.
    from edgeml.training.session import onnx_session

    session = onnx_session(model_path)
    row = np.asarray([json.loads(os.environ["BENCH_ROW"])], dtype=np.float32)
    feeds = {session.get_inputs()[0].name: row}
    names = [o.name for o in session.get_outputs()]
    for _ in range(1000):
        session.run(names, feeds)
    times: list[int] = []
    gc.disable()
    for _ in range(requests):
        t0 = time.perf_counter_ns()
        session.run(names, feeds)
        times.append(time.perf_counter_ns() - t0)
    gc.enable()
    label = int(session.run(names, feeds)[0][0])
    p50, p99 = _percentiles(times)
    print(json.dumps({"p50": p50, "p99": p99, "rss": tree_rss(os.getpid()), "label": label}))
    return 0


# --------------------------------------------------------------------------------------
# Measuring.
# --------------------------------------------------------------------------------------


def _content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    start = at + len(b"\r\ncontent-length:")
    stop = lower.find(b"\r\n", start)
    return int(lower[start : stop if stop >= 0 else len(lower)].strip())


def _percentiles(times_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(times_ns)
    p50 = ordered[len(ordered) // 2] / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss(pid: int) -> float:
    """VmRSS in MB of `pid` and all its descendants."""
    tree = _children()
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


@dataclass(frozen=True)
class Request:
    """One prebuilt HTTP request and how to read the prediction from its answer."""

    path: str
    body: bytes
    label_of: Callable[[Any], int] | None  # None: compare the body to FLOOR_BODY

    def raw(self, port: int) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body


class RawConnection:
    """A blocking keep-alive socket speaking just enough HTTP/1.1."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buffer += chunk
        head = bytes(buffer[:end])
        total = end + 4 + _content_length(head)
        while len(buffer) < total:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buffer += chunk
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        return int(head[9:12]), body

    def close(self) -> None:
        self.sock.close()


def sequential_raw(port: int, request: Request, count: int) -> tuple[float, float]:
    """p50/p99 µs of `count` requests, one at a time, on one raw keep-alive socket."""
    return _percentiles(sequential_raw_times(port, request, count))


def sequential_raw_times(port: int, request: Request, count: int) -> list[int]:
    """Nanoseconds of each of `count` requests, one at a time, on one raw socket."""
    conn = RawConnection(port)
    data = request.raw(port)
    try:
        for _ in range(WARMUP):
            conn.exchange(data)
        times: list[int] = []
        gc.disable()
        for _ in range(count):
            t0 = time.perf_counter_ns()
            status, _ = conn.exchange(data)
            times.append(time.perf_counter_ns() - t0)
            if status != 200:
                raise RuntimeError(f"HTTP {status} while timing")
    finally:
        gc.enable()
        conn.close()
    return times


def sequential_httpx(port: int, request: Request, count: int) -> tuple[float, float]:
    """p50/p99 µs of `count` requests, one at a time, with one httpx.Client connection."""
    import httpx

    url = f"http://127.0.0.1:{port}{request.path}"
    headers = {"content-type": "application/json"}
    with httpx.Client(limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(WARMUP):
            client.post(url, content=request.body, headers=headers)
        times: list[int] = []
        gc.disable()
        try:
            for _ in range(count):
                t0 = time.perf_counter_ns()
                response = client.post(url, content=request.body, headers=headers)
                times.append(time.perf_counter_ns() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code} while timing")
        finally:
            gc.enable()
    return _percentiles(times)


class _LoadProtocol(asyncio.Protocol):
    """A client connection that sends the next request as soon as an answer is complete."""

    def __init__(self, data: bytes, deadline: float, done: asyncio.Future[None]) -> None:
        self.data, self.deadline, self.done = data, deadline, done
        self.buffer = bytearray()
        self.count = self.errors = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.data)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end])
        total = end + 4 + _content_length(head)
        if len(buffer) < total:
            return
        del buffer[:total]
        if head[9:12] == b"200":
            self.count += 1
        else:
            self.errors += 1
        assert self.transport is not None
        if time.perf_counter() < self.deadline:
            self.transport.write(self.data)
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("the server closed the connection"))


async def _throughput_raw(port: int, data: bytes, seconds: float, connections: int) -> float:
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + seconds
    made: list[tuple[_LoadProtocol, asyncio.Future[None]]] = []
    started = time.perf_counter()
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        _, proto = await loop.create_connection(
            lambda d=done: _LoadProtocol(data, deadline, d),  # type: ignore[misc]
            "127.0.0.1",
            port,
        )
        made.append((proto, done))
    await asyncio.gather(*(d for _, d in made))
    elapsed = time.perf_counter() - started
    for proto, _ in made:
        assert proto.transport is not None
        proto.transport.close()
    errors = sum(p.errors for p, _ in made)
    if errors:
        raise RuntimeError(f"{errors} non-200 answers under load")
    return sum(p.count for p, _ in made) / elapsed


def throughput_raw(port: int, request: Request, seconds: float, connections: int) -> float:
    """Requests per second with `connections` raw keep-alive connections for `seconds`."""
    return asyncio.run(_throughput_raw(port, request.raw(port), seconds, connections))


async def _throughput_httpx(port: int, request: Request, seconds: float, conns: int) -> float:
    import httpx

    url = f"http://127.0.0.1:{port}{request.path}"
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    counts = [0] * conns
    errors = [0]
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(i: int) -> None:
            while time.perf_counter() < deadline:
                response = await client.post(url, content=request.body, headers=headers)
                if response.status_code == 200:
                    counts[i] += 1
                else:
                    errors[0] += 1

        await asyncio.gather(*(worker(i) for i in range(conns)))
        elapsed = time.perf_counter() - started
    if errors[0]:
        raise RuntimeError(f"{errors[0]} non-200 answers under load")
    return sum(counts) / elapsed


def throughput_httpx(port: int, request: Request, seconds: float, connections: int) -> float:
    """Requests per second with an httpx.AsyncClient of `connections` connections."""
    return asyncio.run(_throughput_httpx(port, request, seconds, connections))


# --------------------------------------------------------------------------------------
# Models and servers.
# --------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """One trained model in both forms, with the benchmark's row and its label."""

    key: str
    title: str
    onnx_path: Path
    mlflow_path: Path
    row: list[float]
    label: int


def prepare_models(workdir: Path, only: list[str]) -> list[Prepared]:
    """Train, export to ONNX, log to MLflow; pick a row every form labels the same."""
    import mlflow
    import numpy as np
    import onnxruntime as ort
    import pandas as pd
    from mlflow.models import infer_signature
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=5000, n_features=FEATURES, n_informative=6, random_state=3)
    x = x.astype(np.float32).astype(np.float64)  # exactly representable in every form
    frame = pd.DataFrame(x, columns=COLUMNS)
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    mlflow.set_tracking_uri(f"file://{workdir / 'mlruns'}")
    mlflow.set_experiment("bench-serving")
    candidates: dict[str, tuple[str, Any]] = {
        "lr": ("LogisticRegression", LogisticRegression(max_iter=1000)),
        "rf": ("RandomForest(100)", RandomForestClassifier(n_estimators=100, random_state=0)),
    }
    prepared: list[Prepared] = []
    for key, (title, estimator) in candidates.items():
        if key not in only:
            continue
        estimator.fit(frame, y)
        onnx_model = convert_sklearn(
            estimator,
            initial_types=[("input", FloatTensorType([None, FEATURES]))],
            options={id(estimator): {"zipmap": False}},
        )
        onnx_path = workdir / f"{key}" / "model.onnx"
        onnx_path.parent.mkdir(parents=True)
        onnx_path.write_bytes(onnx_model.SerializeToString())
        with mlflow.start_run(run_name=key):
            info = mlflow.sklearn.log_model(
                estimator,
                name=key,
                signature=infer_signature(frame.head(5), estimator.predict(frame.head(5))),
                # MLflow 3.17 saves with skops and refuses tree nodes unless trusted; we
                # made this forest ourselves.
                skops_trusted_types=["sklearn.tree._tree.Tree"],
            )
        mlflow_path = Path(mlflow.artifacts.download_artifacts(info.model_uri))
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        proba = estimator.predict_proba(frame)[:, 1]
        onnx_labels = session.run(["label"], {"input": x.astype(np.float32)})[0]
        confident = np.flatnonzero(
            (np.abs(proba - 0.5) > 0.3) & (onnx_labels == estimator.predict(frame))
        )
        # a row labelled 1 (so a wrong "0 by default" answer cannot pass the check)
        index = int(next(i for i in confident if y[i] == 1 and proba[i] > 0.5))
        prepared.append(
            Prepared(key, title, onnx_path, mlflow_path, [float(v) for v in x[index]], 1)
        )
    return prepared


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _label_oip(answer: Any) -> int:
    outputs = answer["outputs"]
    by_name = {o["name"]: o for o in outputs}
    chosen = by_name.get("label", outputs[0])
    return int(chosen["data"][0])


def _label_mlflow(answer: Any) -> int:
    return int(answer["predictions"][0])


def edgeml_request(model: Prepared) -> Request:
    body = {
        "inputs": [{"name": "input", "shape": [1, FEATURES], "datatype": "FP32", "data": model.row}]
    }
    return Request(f"/v2/models/{MODEL_NAME}/infer", json.dumps(body).encode(), _label_oip)


def mlserver_request(model: Prepared) -> Request:
    inputs = [
        {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
        for c, v in zip(COLUMNS, model.row, strict=True)
    ]
    body = {"parameters": {"content_type": "pd"}, "inputs": inputs}
    return Request(f"/v2/models/{MODEL_NAME}/infer", json.dumps(body).encode(), _label_oip)


def mlflow_request(model: Prepared) -> Request:
    body = {"dataframe_split": {"columns": COLUMNS, "data": [model.row]}}
    return Request("/invocations", json.dumps(body).encode(), _label_mlflow)


@dataclass
class Launch:
    """How to start one server for one model."""

    argv: list[str]
    ready_path: str
    request: Request
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True)
class Server:
    """A server under test: its row title and how to launch it for a model."""

    key: str
    title: str
    launch: Callable[[Prepared, int, Path], Launch]
    peer: bool


def _floor_launch(model: Prepared, port: int, workdir: Path) -> Launch:
    request = Request("/", b"{}", None)
    argv = [sys.executable, str(Path(__file__).resolve()), "--floor-server", str(port)]
    return Launch(argv, "/", request)


def _edgeml_launch(model: Prepared, port: int, workdir: Path) -> Launch:
    argv = [
        str(VENV_BIN / "edgeml"), "serve", "--model-path", str(model.onnx_path),
        "--model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
        "--cache-dir", str(workdir / "edgeml-cache"), "--log-level", "WARNING",
    ]  # fmt: skip
    return Launch(argv, f"/v2/models/{MODEL_NAME}/ready", edgeml_request(model))


def _mlflow_launch(model: Prepared, port: int, workdir: Path) -> Launch:
    argv = [
        str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(model.mlflow_path),
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    env = {"PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    return Launch(argv, "/ping", mlflow_request(model), env)


def _mlserver_launch(tuned: bool, fastest: bool = False) -> Callable[[Prepared, int, Path], Launch]:
    """MLServer with mlserver-mlflow (default or `parallel_workers: 0`), or on its fastest
    path: `parallel_workers: 0` and the ONNX runtime of bench/mlserver_onnx.py, fed one
    FP32 tensor as edgeml is."""

    def launch(model: Prepared, port: int, workdir: Path) -> Launch:
        venv = peer_venv()
        flavour = "fastest" if fastest else ("tuned" if tuned else "default")
        directory = workdir / f"mlserver-{model.key}-{flavour}"
        shutil.rmtree(directory, ignore_errors=True)
        (directory / "model").mkdir(parents=True)
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": _free_port(),
            "metrics_port": _free_port(),
        }
        if tuned or fastest:
            settings["parallel_workers"] = 0
        (directory / "settings.json").write_text(json.dumps(settings))
        runtime = {
            "name": MODEL_NAME,
            "implementation": "mlserver_mlflow.MLflowRuntime",
            "parameters": {"uri": str(model.mlflow_path)},
        }
        request = mlserver_request(model)
        env = {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
        if fastest:
            shutil.copy(Path(__file__).resolve().parent / "mlserver_onnx.py", directory)
            runtime = {
                "name": MODEL_NAME,
                "implementation": "mlserver_onnx.OnnxRuntime",
                "parameters": {"uri": str(model.onnx_path)},
            }
            request = edgeml_request(model)
            env["PYTHONPATH"] = str(directory)
        (directory / "model" / "model-settings.json").write_text(json.dumps(runtime))
        argv = [str(venv / "bin" / "mlserver"), "start", str(directory)]
        return Launch(argv, f"/v2/models/{MODEL_NAME}/ready", request, env, directory)

    return launch


_PEER_VENV: list[Path] = []


def peer_venv() -> Path:
    """The MLServer venv, made by bench/serving_peers.sh on first use."""
    if not _PEER_VENV:
        done = subprocess.run(
            ["bash", str(REPO / "bench" / "serving_peers.sh")],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"bench/serving_peers.sh failed: {tail}")
        _PEER_VENV.append(Path(done.stdout.strip().splitlines()[-1]))
    return _PEER_VENV[0]


SERVERS = [
    Server("floor", "do-nothing asyncio server (client floor)", _floor_launch, peer=False),
    Server("edgeml", "`edgeml serve`", _edgeml_launch, peer=False),
    Server("mlflow", "`mlflow models serve` (default)", _mlflow_launch, peer=True),
    Server("mlserver", "MLServer + mlserver-mlflow, default", _mlserver_launch(False), True),
    Server(
        "mlserver-tuned", "MLServer tuned (`parallel_workers: 0`)", _mlserver_launch(True), True
    ),
    Server(
        "mlserver-fastest",
        "MLServer fastest path (`parallel_workers: 0`, ONNX runtime, one FP32 tensor)",
        _mlserver_launch(True, fastest=True),
        True,
    ),
]


@dataclass
class Result:
    """One server's figures for one model, or why there are none."""

    raw: tuple[float, float] | None = None
    httpx: tuple[float, float] | None = None
    rps_raw: float | None = None
    rps_httpx: float | None = None
    rss: float | None = None
    start_s: float | None = None
    error: str | None = None


def _http_get(port: int, path: str) -> int:
    conn = RawConnection(port)
    try:
        data = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        return conn.exchange(data)[0]
    finally:
        conn.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Running:
    """A started server process."""

    process: subprocess.Popen[bytes]
    port: int
    launch: Launch
    log_path: Path

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " / ".join(line.strip() for line in lines[-2:])


CLIENT_CPUS: set[int] = set()
SERVER_CPUS: set[int] = set()
"""Where the client and the servers run (both empty: placement left to the scheduler)."""


def _pin_server() -> None:
    """preexec_fn of every server and of the in-process row: the CPUs the client is not on."""
    if SERVER_CPUS:
        os.sched_setaffinity(0, SERVER_CPUS)


def start(server: Server, model: Prepared, workdir: Path, tag: str = "") -> Running:
    """Launch `server` for `model` (the caller waits for it and stops it)."""
    port = _free_port()
    launch = server.launch(model, port, workdir)
    log_path = workdir / f"{server.key}-{model.key}{tag}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            launch.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **launch.env},
            cwd=launch.cwd,
            start_new_session=True,
            preexec_fn=_pin_server,
        )
    return Running(process, port, launch, log_path)


def wait_and_check(running: Running, model: Prepared) -> float:
    """Seconds until ready; then one answer checked against the expected label."""
    process, port, launch = running.process, running.port, running.launch
    started = time.perf_counter()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        if time.perf_counter() - started > READY_TIMEOUT:
            raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s")
        try:
            if _http_get(port, launch.ready_path) == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    ready = time.perf_counter() - started
    conn = RawConnection(port)
    status, body = conn.exchange(launch.request.raw(port))
    conn.close()
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    if launch.request.label_of is None:
        if body != FLOOR_BODY:
            raise RuntimeError(f"unexpected answer {body[:100]!r}")
    else:
        label = launch.request.label_of(json.loads(body))
        if label != model.label:
            raise RuntimeError(f"predicted {label}, expected {model.label}")
    return ready


def measure(server: Server, model: Prepared, workdir: Path, args: argparse.Namespace) -> Result:
    """Start `server` for `model`, check one answer, time it, read its RSS, stop it."""
    try:
        running = start(server, model, workdir)
    except Exception as exc:
        return Result(error=f"{type(exc).__name__}: {exc}")
    process, port, launch = running.process, running.port, running.launch
    result = Result()
    try:
        result.start_s = wait_and_check(running, model)
        result.raw = sequential_raw(port, launch.request, args.requests)
        result.httpx = sequential_httpx(port, launch.request, args.requests)
        result.rss = tree_rss(process.pid)
        result.rps_raw = throughput_raw(port, launch.request, args.seconds, args.connections)
        result.rps_httpx = throughput_httpx(port, launch.request, args.seconds, args.connections)
    except Exception as exc:
        tail = running.log_tail()
        result.error = f"{type(exc).__name__}: {exc}" + (f" (log: {tail})" if tail else "")
    finally:
        _stop(process)
    return result


PAIRED_BLOCKS = 10


def paired_cost(model: Prepared, workdir: Path, requests: int) -> tuple[float, float] | str:
    """(floor p50, edgeml p50) µs, raw client, both servers up and alternated in blocks.

    The floor's p50 moves between runs on this VM by tens of µs (wake-up latency), so
    the own-cost target also gets a measurement where the floor and edgeml are timed
    interleaved, `requests` each in PAIRED_BLOCKS blocks, under the same conditions.
    """
    servers = [s for s in SERVERS if s.key in ("floor", "edgeml")]
    running: list[Running] = []
    try:
        for server in servers:
            running.append(start(server, model, workdir, "-paired"))
            wait_and_check(running[-1], model)
        times: list[list[int]] = [[], []]
        for _ in range(PAIRED_BLOCKS):
            for i, r in enumerate(running):
                block = sequential_raw_times(r.port, r.launch.request, requests // PAIRED_BLOCKS)
                times[i] += block
        return _percentiles(times[0])[0], _percentiles(times[1])[0]
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for r in running:
            _stop(r.process)


def in_process(model: Prepared, requests: int) -> Result:
    """The onnxruntime row, measured in a child process (so its RSS is its own)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--in-process", str(model.onnx_path),
         str(requests * 10)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "BENCH_ROW": json.dumps(model.row)}, preexec_fn=_pin_server,
    )  # fmt: skip
    if done.returncode != 0:
        return Result(error=done.stderr.strip().splitlines()[-1])
    figures = json.loads(done.stdout)
    if figures["label"] != model.label:
        return Result(error=f"predicted {figures['label']}, expected {model.label}")
    return Result(raw=(figures["p50"], figures["p99"]), rss=figures["rss"])


# --------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _pair(value: tuple[float, float] | None) -> str:
    return "—" if value is None else f"{value[0]:,.0f} / {value[1]:,.0f}"


def evaluate(
    results: dict[str, dict[str, Result]],
    models: list[Prepared],
    paired: dict[str, tuple[float, float] | str],
) -> list[tuple[str, str, bool | None]]:
    """(target, figures, pass) per model; pass is None when a figure is missing."""
    rows: list[tuple[str, str, bool | None]] = []
    for model in models:
        edge, floor = results["edgeml"][model.key], results["floor"][model.key]
        pair = paired.get(model.key, "not measured")
        if isinstance(pair, tuple):
            cost = pair[1] - pair[0]
            rows.append((f"{model.key}: own cost per request < {OWN_COST_TARGET_US:.0f} µs "
                         "(interleaved with the floor)",
                         f"{pair[1]:,.0f} - {pair[0]:,.0f} = {cost:,.0f} µs",
                         cost < OWN_COST_TARGET_US))  # fmt: skip
        else:
            rows.append((f"{model.key}: own cost (interleaved)", f"failed: {pair}", None))
        if edge.raw and floor.raw:
            cost = edge.raw[0] - floor.raw[0]
            rows.append((f"{model.key}: own cost per request < {OWN_COST_TARGET_US:.0f} µs "
                         "(separate runs, table above)",
                         f"{edge.raw[0]:,.0f} - {floor.raw[0]:,.0f} = {cost:,.0f} µs",
                         cost < OWN_COST_TARGET_US))  # fmt: skip
        else:
            rows.append((f"{model.key}: own cost per request", "missing figures", None))
        peers = [(s.title, results[s.key][model.key]) for s in SERVERS if s.peer]
        rps = [(t, r.rps_raw) for t, r in peers if r.rps_raw is not None]
        if edge.rps_raw is not None and rps:
            best_title, best = max(rps, key=lambda item: item[1])
            ratio = edge.rps_raw / best
            rows.append((f"{model.key}: throughput ≥ {THROUGHPUT_FACTOR:.0f}x the fastest peer",
                         f"{edge.rps_raw:,.0f} / {best:,.0f} rps ({best_title}) = {ratio:.1f}x",
                         ratio >= THROUGHPUT_FACTOR))  # fmt: skip
        else:
            rows.append((f"{model.key}: throughput vs peers", "missing figures", None))
        fastest = results.get("mlserver-fastest", {}).get(model.key)
        if isinstance(pair, tuple):
            cost = pair[1] - pair[0]
            rows.append((f"{model.key}: own cost < {HTTP_OWN_COST_US:.0f} µs (issue 12, "
                         "interleaved)", f"{cost:,.0f} µs", cost < HTTP_OWN_COST_US))  # fmt: skip
        if edge.rps_raw is not None and fastest is not None and fastest.rps_raw:
            ratio = edge.rps_raw / fastest.rps_raw
            rows.append((f"{model.key}: throughput ≥ {FASTEST_FACTOR:.0f}x MLServer's fastest "
                         "path (issue 12)",
                         f"{edge.rps_raw:,.0f} / {fastest.rps_raw:,.0f} rps = {ratio:.1f}x",
                         ratio >= FASTEST_FACTOR))  # fmt: skip
        else:
            rows.append((f"{model.key}: throughput vs MLServer's fastest path",
                         "missing figures", None))  # fmt: skip
        rss = [(t, r.rss) for t, r in peers if r.rss is not None]
        if edge.rss is not None and rss:
            low_title, low = min(rss, key=lambda item: item[1])
            rows.append((f"{model.key}: RSS < every peer's",
                         f"{edge.rss:,.0f} MB vs {low:,.0f} MB ({low_title})",
                         edge.rss < low))  # fmt: skip
        else:
            rows.append((f"{model.key}: RSS vs peers", "missing figures", None))
    return rows


def render(
    results: dict[str, dict[str, Result]],
    inproc: dict[str, Result],
    paired: dict[str, tuple[float, float] | str],
    models: list[Prepared],
    args: argparse.Namespace,
    command: str,
    loads: tuple[float, float],
    when: datetime,
) -> str:
    """The docs section."""
    lines = [
        BEGIN,
        "## Serving: `edgeml serve` against in-process onnxruntime, a do-nothing server, "
        "`mlflow models serve` and MLServer",
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs (loopback, one "
        f"client process), load average {loads[0]:.2f} before and {loads[1]:.2f} after; "
        f"command: `{command}`. {_placement()}",
        "",
        f"Single-row requests, 10 float features. Latency: {args.requests:,} sequential "
        f"requests on one keep-alive connection after {WARMUP} warm-up ones (p50 / p99 µs). "
        f"Throughput: {args.connections} keep-alive connections for {args.seconds:g} s "
        "(requests per second). *raw* is a hand-written HTTP/1.1 socket client with "
        "prebuilt request bytes; *httpx* is httpx 0.28 (`Client`, then `AsyncClient`). "
        "RSS: VmRSS of the server's process tree (children included) with the model "
        "loaded, after the sequential runs. The in-process row is `InferenceSession.run` "
        f"({args.requests * 10:,} runs, 1 intra-op thread, no spinning) and its "
        "process's RSS. edgeml serves the ONNX export; the peers serve the scikit-learn "
        "model logged with `mlflow.sklearn.log_model` (their native path), each in its "
        "own request format: OIP v2 JSON for edgeml (one [1,10] FP32 tensor) and MLServer "
        "(one input per column, `pd` content type), `dataframe_split` for mlflow; "
        "MLServer's fastest path serves the ONNX export with a 1-thread session in a "
        "custom runtime (bench/mlserver_onnx.py), fed the same FP32 tensor as edgeml. Every "
        "server's answer was checked against scikit-learn's label before timing. For the "
        "own-cost target the floor and edgeml are also timed with both running, "
        f"alternating in {PAIRED_BLOCKS} blocks of {args.requests // PAIRED_BLOCKS} requests "
        "each (the floor's p50 alone moves by tens of µs between runs on this VM).",
        "",
    ]
    for model in models:
        lines += [
            f"### {model.title}",
            "",
            "| server | p50 / p99 µs, raw | p50 / p99 µs, httpx | rps raw | rps httpx "
            "| RSS MB | ready in s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        own = inproc[model.key]
        lines.append(
            f"| onnxruntime in-process | {_pair(own.raw)} | — | — | — | {_num(own.rss)} | — |"
            if own.error is None
            else f"| onnxruntime in-process | failed: {own.error} | | | | | |"
        )
        for server in SERVERS:
            r = results[server.key][model.key]
            if r.error is not None:
                cells = [_pair(r.raw), _pair(r.httpx), _num(r.rps_raw), _num(r.rps_httpx)]
                lines.append(f"| {server.title} | **failed**: {r.error.replace('|', '/')} "
                             f"| {' | '.join(cells[1:])} | {_num(r.rss)} | "
                             f"{_num(r.start_s, 1)} |")  # fmt: skip
                continue
            lines.append(
                f"| {server.title} | {_pair(r.raw)} | {_pair(r.httpx)} | {_num(r.rps_raw)} "
                f"| {_num(r.rps_httpx)} | {_num(r.rss)} | {_num(r.start_s, 1)} |"
            )
        lines.append("")
    lines += [
        "### Targets (issues 5 and 12, raw-socket client)",
        "",
        "| target | figures | result |",
        "| --- | --- | --- |",
    ]
    for target, figures, passed in evaluate(results, models, paired):
        verdict = "n/a" if passed is None else ("**pass**" if passed else "**fail**")
        lines.append(f"| {target} | {figures} | {verdict} |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def _placement() -> str:
    if not CLIENT_CPUS:
        return "CPU placement left to the scheduler (`--no-pin`)."
    client = ", ".join(map(str, sorted(CLIENT_CPUS)))
    servers = ", ".join(map(str, sorted(SERVER_CPUS)))
    return (
        f"The client runs on CPU {client} and every server on CPU {servers}, as a client on "
        "its own machine would: left to itself this VM's scheduler put the light do-nothing "
        "server on the client's CPU (p50 14 µs, no wake-up across CPUs) and a busier server "
        "on the other one (a wake-up across vCPUs costs tens of µs here), so floor and "
        "server were measured under unlike conditions."
    )


def write_section(section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace (or append) a section of docs/benchmarks.md, bench:serving by default."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section.strip() + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential, per client")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", nargs="+", choices=("lr", "rf"), default=["lr", "rf"])
    parser.add_argument("--skip", nargs="+", default=[], choices=[s.key for s in SERVERS[2:]],
                        help="peers to leave out (recorded as skipped)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave CPU placement to the scheduler (default: the client on "
                        "the first CPU, the servers on the others)")  # fmt: skip
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--in-process", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_server is not None:
        return run_floor_server(args.floor_server)
    if args.in_process is not None:
        return run_in_process(args.in_process[0], int(args.in_process[1]))

    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) > 1:
        CLIENT_CPUS.add(cpus[0])
        SERVER_CPUS.update(cpus[1:])
        os.sched_setaffinity(0, CLIENT_CPUS)
    command = " ".join([".venv/bin/python", "bench/serving.py", *sys.argv[1:]])
    when = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="edgeml-bench-serving-") as tmp:
        workdir = Path(tmp)
        print("training and exporting the models ...", flush=True)
        models = prepare_models(workdir, args.only)
        inproc: dict[str, Result] = {}
        paired: dict[str, tuple[float, float] | str] = {}
        results: dict[str, dict[str, Result]] = {s.key: {} for s in SERVERS}
        for model in models:
            inproc[model.key] = in_process(model, args.requests)
            print(f"{model.key} in-process: {_pair(inproc[model.key].raw)} µs", flush=True)
            for server in SERVERS:
                if server.key in args.skip:
                    results[server.key][model.key] = Result(error="skipped (--skip)")
                    continue
                print(f"{model.key} {server.key} ...", end=" ", flush=True)
                r = measure(server, model, workdir, args)
                results[server.key][model.key] = r
                print(
                    r.error
                    or f"raw {_pair(r.raw)} µs, httpx {_pair(r.httpx)} µs, "
                    f"{_num(r.rps_raw)} / {_num(r.rps_httpx)} rps, {_num(r.rss)} MB",
                    flush=True,
                )
            if "edgeml" not in args.skip:
                paired[model.key] = paired_cost(model, workdir, args.requests)
                print(f"{model.key} floor/edgeml interleaved p50: {paired[model.key]}", flush=True)
    loads = (load_before, os.getloadavg()[0])
    section = render(results, inproc, paired, models, args, command, loads, when)
    print()
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
