"""The HTTP layer alone: edgeml's own server against well-kept ones, in one run.

Issue 12 asks whether `edgeml serve` should keep its hand-written HTTP/1.1 framing
(`edgeml/serving/httpserver.py`). This measures the layer by itself. Every server runs
the same handler: read the body, `json.loads` it, answer a fixed small Open Inference
Protocol JSON with `json.dumps`. What differs is the parsing and framing. The servers:

1. `floor`: bench/serving.py's do-nothing asyncio protocol (no parsing at all);
2. `edgeml`: `edgeml.serving.httpserver.HttpServer` on the default asyncio loop;
3. `edgeml+uvloop`: the same server on uvloop;
4. `httptools`: an asyncio Protocol of ours on httptools' parser (llhttp, Node.js's);
5. `uvicorn`: uvicorn with httptools and uvloop over a minimal ASGI app;
6. `aiohttp`: aiohttp.web (already a dependency of kopf).

The client is bench/serving.py's raw-socket client: p50/p99 of `--requests`
sequential requests on one keep-alive connection, then requests per second with
`--connections` keep-alive connections for `--seconds`. Each server is a child process
running from its own venv (uvicorn, httptools, uvloop and aiohttp, built by this
script under ~/.cache/edgeml/bench-venvs/http-layers). Its VmRSS is read after the
runs. The "own cost" column is a server's p50 minus the floor's.

    .venv/bin/python bench/http_layers.py                  # writes docs/benchmarks.md
    .venv/bin/python bench/http_layers.py --no-write --requests 2000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving  # bench/serving.py: the client and the floor server

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench:http-layers begin -->", "<!-- bench:http-layers end -->"
PATH = "/v2/models/m/infer"
REQUEST_BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP32", "data": [0.5] * 10}]}
).encode()
ANSWER = {
    "model_name": "m",
    "outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [1]}],
}
SERVERS = ("floor", "edgeml", "edgeml+uvloop", "httptools", "uvicorn", "aiohttp")
VENV_PACKAGES = ("uvicorn==0.55.0", "httptools==0.9.0", "uvloop==0.23.0", "aiohttp==3.14.5")


def handle(body: bytes) -> bytes:
    """The one handler every server runs."""
    json.loads(body)
    return json.dumps(ANSWER).encode()


# --- the servers (each runs in a child process: `--serve NAME --port P`) ---------------


def _serve_edgeml(port: int, use_uvloop: bool) -> None:
    from edgeml.serving.httpserver import HttpServer, Request, Response

    def handler(request: Request) -> Response:
        return Response(200, handle(request.body))

    async def main() -> None:
        server = HttpServer(handler, max_body_bytes=1 << 20)
        await server.start("127.0.0.1", port)
        await _until_sigterm()
        await server.stop(1.0)

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


class _HttptoolsProtocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 on llhttp: the parser frames, we only answer."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        import httptools

        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = handle(b"".join(self.body))
        self.body.clear()
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(answer)).encode()
            + b"\r\n\r\n"
            + answer
        )


def _serve_httptools(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_HttptoolsProtocol, "127.0.0.1", port)
        async with server:
            await _until_sigterm()

    asyncio.run(main())


def _serve_uvicorn(port: int) -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        answer = handle(b"".join(chunks))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                # Content-Length, or uvicorn frames the body chunked.
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, http="httptools", loop="uvloop",
                log_level="warning", access_log=False, lifespan="off")  # fmt: skip


def _serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def infer(request: web.Request) -> web.Response:
        return web.Response(body=handle(await request.read()), content_type="application/json")

    app = web.Application()
    app.router.add_post(PATH, infer)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _until_sigterm() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


SERVE: dict[str, Callable[[int], None]] = {
    "floor": serving.run_floor_server,  # type: ignore[dict-item]
    "edgeml": lambda port: _serve_edgeml(port, use_uvloop=False),
    "edgeml+uvloop": lambda port: _serve_edgeml(port, use_uvloop=True),
    "httptools": _serve_httptools,
    "uvicorn": _serve_uvicorn,
    "aiohttp": _serve_aiohttp,
}


# --- the run ---------------------------------------------------------------------------


def peer_venv() -> Path:
    """The servers' venv (built once, outside the repository)."""
    root = Path(os.environ.get("EDGEML_BENCH_VENVS", Path.home() / ".cache/edgeml/bench-venvs"))
    venv = root / "http-layers"
    stamp = venv / (".complete-" + "-".join(VENV_PACKAGES))
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                        *VENV_PACKAGES], check=True)  # fmt: skip
        stamp.touch()
    return venv


def measure(name: str, venv: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start one server, check its answer, time it, read its RSS, stop it."""
    port = serving._free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
    process = subprocess.Popen(
        [str(venv / "bin/python"), __file__, "--serve", name, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        request = serving.Request(PATH, REQUEST_BODY, lambda answer: 1)
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = serving.RawConnection(port).exchange(request.raw(port))
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.1)
        if status != 200 or (name != "floor" and json.loads(body) != ANSWER):
            raise RuntimeError(f"{name} answered {status} {body[:200]!r}")
        serving.sequential_raw(port, request, serving.WARMUP)
        p50, p99 = serving.sequential_raw(port, request, args.requests)
        rps = serving.throughput_raw(port, request, args.seconds, args.connections)
        rss = serving.tree_rss(process.pid)
        return {"server": name, "p50": p50, "p99": p99, "rps": rps, "rss": rss}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def render(rows: list[dict[str, Any]], args: argparse.Namespace, versions: str) -> str:
    floor = next(r["p50"] for r in rows if r["server"] == "floor")
    lines = [
        BEGIN,
        "## The HTTP layer alone (bench/http_layers.py)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on this machine ({os.cpu_count()} CPUs), "
        f"one run: `.venv/bin/python bench/http_layers.py --requests {args.requests} "
        f"--seconds {args.seconds:g} --connections {args.connections}`. Every server runs the "
        "same handler (json.loads of a one-row FP32 OIP request, json.dumps of a fixed "
        f"answer); the client is bench/serving.py's raw-socket client. {versions}.",
        "",
        "| server | p50 µs | p99 µs | own cost µs (p50 - floor) | rps, "
        f"{args.connections} connections | RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        own = "" if r["server"] == "floor" else f"{r['p50'] - floor:.0f}"
        lines.append(
            f"| {r['server']} | {r['p50']:.0f} | {r['p99']:.0f} | {own} | {r['rps']:,.0f} | "
            f"{r['rss']:.1f} |"
        )
    lines += ["", END, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=5000, help="sequential requests")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", nargs="*", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.serve:
        SERVE[args.serve](args.port)
        return 0
    venv = peer_venv()
    versions = subprocess.run(
        [str(venv / "bin/python"), "-c", "import sys, uvicorn, httptools, uvloop, aiohttp; "
         "print(f'Python {sys.version.split()[0]}, uvicorn {uvicorn.__version__}, httptools "
         "{httptools.__version__}, uvloop {uvloop.__version__}, aiohttp {aiohttp.__version__}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    names = ["floor", *[n for n in args.only if n != "floor"]]
    rows = []
    for name in names:
        row = measure(name, venv, args)
        print(f"{name:14} p50 {row['p50']:6.0f} µs  p99 {row['p99']:6.0f} µs  "
              f"{row['rps']:9,.0f} rps  {row['rss']:6.1f} MB", flush=True)  # fmt: skip
        rows.append(row)
    section = render(rows, args, versions)
    print(section)
    if not args.no_write:
        serving.write_section(section, BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
