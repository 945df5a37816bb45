"""`edgeml serve`: serve one verified ONNX model over the Open Inference Protocol v2.

    edgeml serve --model-name NAME (--model-uri models:/NAME/VERSION | --model-path PATH)
        [--model-version V] [--expected-sha256 HEX] [--cache-dir DIR] [--host H]
        [--port P] [--threads N] [--max-body-bytes N] [--log-format json|text]
        [--window-state PATH | --no-window-state]

The server listens at once (liveness, /metrics) and becomes ready when a model whose
sha256 is the expected one is loaded: from the node cache if it is there (no MLflow
needed), else from MLflow (MLFLOW_TRACKING_URI), retried with backoff while MLflow is
unreachable. A sha256 mismatch keeps it unready for good. SIGTERM drains: no new
connections, requests in flight finish (bounded by --shutdown-grace), the recent
window is saved with its partial slot, exit 0.

The event loop is uvloop's (libuv): the same server answered 6% more single-row requests
on it than on asyncio's own loop, in one run alternating the two (docs/benchmarks.md).

The recent window (GET /drift/window) is saved at each minute boundary to
`<cache-dir>/windows/<model>-<version>-<hostname>.json` (or --window-state PATH), so a
restarted container keeps it; --no-window-state keeps it in memory only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import uvloop

from edgeml.serving.app import AppSettings, ServingApp
from edgeml.serving.cache import ModelCache, is_sha256
from edgeml.serving.httpserver import HttpServer
from edgeml.serving.loader import Mismatch, ModelSource, Unavailable, Verified, obtain
from edgeml.serving.model import LoadedModel
from edgeml.serving.window import StateLocation

log = logging.getLogger("edgeml.serve")

DEFAULT_CACHE_DIR = Path("/var/cache/edgeml")
DEFAULT_MAX_BODY = 16 * 1024 * 1024
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


def build_parser() -> argparse.ArgumentParser:
    """The arguments of `edgeml serve`."""
    parser = argparse.ArgumentParser(
        prog="edgeml serve", description="Serve one ONNX model (Open Inference Protocol v2)."
    )
    parser.add_argument("--model-name", required=True, help="the model's name in the protocol")
    parser.add_argument("--model-version", help="its version (default: from the URI, else 1)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-uri", help="models:/<name>/<version> in MLflow")
    source.add_argument("--model-path", type=Path, help="a local model.onnx")
    parser.add_argument("--baseline-path", type=Path,
                        help="the drift baseline for --model-path (default: baseline.json "
                        "beside it)")  # fmt: skip
    parser.add_argument("--expected-sha256", type=str.lower,
                        help="the sha256 the model must have (default with --model-uri: the "
                        "version's edgeml.io/sha256 tag)")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY)
    parser.add_argument("--inline-max-rows", type=int, default=128,
                        help="larger batches run in a worker thread")  # fmt: skip
    parser.add_argument("--feedback-capacity", type=int, default=10000,
                        help="recent predictions kept for feedback")  # fmt: skip
    parser.add_argument("--shutdown-grace", type=float, default=20.0,
                        help="seconds in-flight requests get after SIGTERM")  # fmt: skip
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--window-state", type=Path, metavar="PATH",
                        help="where the recent window is saved (default: <cache-dir>/windows/"
                        "<model>-<version>-<hostname>.json)")  # fmt: skip
    window.add_argument("--no-window-state", action="store_true",
                        help="keep the recent window in memory only")  # fmt: skip
    parser.add_argument("--log-format", choices=("json", "text"), default="text")
    parser.add_argument("--log-level", default="INFO")
    return parser


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str, level: str) -> None:
    """Log to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@dataclass(frozen=True)
class ServeConfig:
    """The parsed command line."""

    settings: AppSettings
    source: ModelSource
    cache_dir: Path
    host: str
    port: int
    threads: int
    max_body_bytes: int
    shutdown_grace: float


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """Check the arguments against each other; ValueError with a sentence if they clash."""
    expected = args.expected_sha256
    if expected is not None and not is_sha256(expected):
        raise ValueError("--expected-sha256 must be 64 hex digits")
    version = args.model_version
    if version is None and args.model_uri:
        tail = args.model_uri.rstrip("/").rsplit("/", 1)[-1]
        version = tail if tail.isdigit() else None
    if args.model_uri and not args.model_uri.startswith("models:/"):
        raise ValueError("--model-uri must be models:/<name>/<version>")
    for flag in ("threads", "max_body_bytes", "inline_max_rows", "feedback_capacity"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1")
    return ServeConfig(
        settings=AppSettings(
            model_name=args.model_name,
            model_version=version or "1",
            feedback_capacity=args.feedback_capacity,
            inline_max_rows=args.inline_max_rows,
            window_state=window_state_location(args),
        ),
        source=ModelSource(
            uri=args.model_uri,
            path=args.model_path,
            baseline_path=args.baseline_path,
            expected_sha256=expected,
        ),
        cache_dir=args.cache_dir,
        host=args.host,
        port=args.port,
        threads=args.threads,
        max_body_bytes=args.max_body_bytes,
        shutdown_grace=args.shutdown_grace,
    )


def window_state_location(args: argparse.Namespace) -> StateLocation | None:
    """Where the recent window is saved, from --window-state / --no-window-state."""
    if args.no_window_state:
        return None
    if args.window_state is not None:
        return StateLocation(path=args.window_state)
    # In a pod the hostname is the pod's name: stable across container restarts.
    return StateLocation(directory=args.cache_dir / "windows", hostname=socket.gethostname())


async def keep_loading(app: ServingApp, config: ServeConfig) -> None:
    """Obtain, verify and load the model; retry outages with backoff; stop on a mismatch."""
    cache = ModelCache(config.cache_dir)
    delay = RETRY_FIRST_SECONDS
    while True:
        outcome = await obtain(config.source, cache)
        if isinstance(outcome, Verified):
            try:
                model = await asyncio.to_thread(LoadedModel, outcome.model_bytes, config.threads)
            except Exception as exc:
                reason = f"onnxruntime cannot load the model (sha256 {outcome.sha256}): {exc}"
                log.error("%s", reason)
                app.set_unready(reason)
                return
            app.install(model, outcome.sha256, outcome.baseline, outcome.version)
            where = ", from the node cache" if outcome.from_cache else ""
            log.info("serving %s version %s (sha256 %s%s)", app.name, app.version,
                     outcome.sha256, where)  # fmt: skip
            return
        if isinstance(outcome, Mismatch):
            app.metrics.mismatch_child.inc()
            app.metrics.ready.set(0)
            app.set_unready(outcome.reason)
            log.error("%s", outcome.reason)
            return
        assert isinstance(outcome, Unavailable)
        app.set_unready(f"{outcome.reason} (retrying in {delay:.0f} s)")
        log.warning("model not available: %s; retrying in %.0f s", outcome.reason, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_SECONDS)


class Serving:
    """A running server: the app, its HTTP listener and the loader (for tests, in-process)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.app = ServingApp(config.settings)
        self.http = HttpServer(self.app.handle, max_body_bytes=config.max_body_bytes)
        self.port = 0
        self._loader: asyncio.Task[None] | None = None
        self._window: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen and start loading the model; the bound port."""
        self.port = await self.http.start(self.config.host, self.config.port)
        self._loader = asyncio.create_task(keep_loading(self.app, self.config))
        self._window = asyncio.create_task(self.app.keep_window())
        log.info("listening on %s:%d", self.config.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Drain, save the window, and stop."""
        self.app.draining = True
        if self._loader is not None:
            self._loader.cancel()
        await self.http.stop(self.config.shutdown_grace)
        if self._window is not None:
            self._window.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._window
        await self.app.save_window()  # after the last request, so it is counted
        self.app.close()


async def serve(config: ServeConfig) -> int:
    """Run until SIGTERM or SIGINT, then drain; the exit code."""
    serving = Serving(config)
    try:
        await serving.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down: finishing requests in flight (at most %.0f s)",
             config.shutdown_grace)  # fmt: skip
    await serving.stop()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `edgeml serve`; 0 after a graceful shutdown, 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"edgeml serve: error: {exc}", file=sys.stderr)
        return 2
    return uvloop.run(serve(config))
