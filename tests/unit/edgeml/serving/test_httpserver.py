"""The HTTP/1.1 framing of `edgeml serve` (llhttp under our limits): strict where
smuggling lives, timeouts, the connection limit, pipelining, and fuzzes of malformed bytes
(the server answers or closes, and stays up; the reader frames the same requests however
the bytes are split). A real server on a loopback port, raw sockets as the client."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.serving.httpserver import (
    HttpServer,
    Request,
    RequestReader,
    Response,
    _Connection,
)
from support.wait import wait_for


def _echo(request: Request) -> Response | Awaitable[Response]:
    body = {"method": request.method, "path": request.path, "body": len(request.body)}
    response = Response(200, json.dumps(body).encode())
    if request.path.startswith("/later"):  # answered from a task, as a batch inference is

        async def later() -> Response:
            await asyncio.sleep(0.01)
            return response

        return later()
    return response


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,  # what `edgeml serve` runs on
}


class Running:
    """An HttpServer on its own event loop thread."""

    def __init__(self, loop: str = "asyncio", **options: Any) -> None:
        self.loop = LOOPS[loop]()
        self.server = HttpServer(_echo, max_body_bytes=1024, **options)
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(self.server.start("127.0.0.1", 0))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(1), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return sock


@pytest.fixture(params=sorted(LOOPS))
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., Running]]:
    """Start servers on asyncio's loop, then again on uvloop's (the transports differ)."""
    started: list[Running] = []

    def start(**options: Any) -> Running:
        running = Running(request.param, **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _read_all(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data + b"<still open>"
        except ConnectionResetError:
            return data  # closed with bytes of ours unread: a close all the same
        if not chunk:
            return data
        data += chunk


def _exchange(running: Running, request: bytes) -> bytes:
    """Send `request` on a new connection; everything the server sends until it closes."""
    with running.connect() as sock:
        sock.sendall(request)
        return _read_all(sock)


def _statuses(data: bytes) -> list[int]:
    """The status of each response in a stream of them (bodies are JSON, never a status
    line)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


GET = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSE = b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_content_length_with_transfer_encoding_is_refused_and_nothing_after_it_is_read(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    data = _exchange(
        running,
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + GET + CLOSE,
    )
    assert _statuses(data) == [400]
    assert b"connection: close" in data
    assert b"/ok" not in data


@pytest.mark.parametrize(
    ("head", "status", "why"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400, b"Unexpected whitespace"),
        (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400, b"Unexpected space after start line"),
        (b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n", 400, b"Invalid header token"),
        (b"GET / HTTP/1.1\r\nHost\x00: x\r\n\r\n", 400, b"Invalid header token"),
        (b"GET / HTTP/1.1\r\nHost: x\ny: z\r\n\r\n", 400, b"Missing expected CR"),
        (b"GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n", 400, b"Invalid header value char"),
        (b"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", 400, b"Invalid header value char"),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
         b"Duplicate Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400,
         b"Duplicate Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd", 400, b"Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", 400, b"Content-Length"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
         b"Transfer-Encoding"),
        (b"G(T / HTTP/1.1\r\n\r\n", 400, b"Invalid method"),
        (b"GET / HTTP/1.9\r\n\r\n", 400, b"Invalid HTTP version"),
        (b"GET /a\tb HTTP/1.1\r\n\r\n", 400, b"url"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, b"unsupported protocol HTTP/2.0"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, b"HTTP/2 is not served here"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
         b"unsupported transfer-encoding gzip, chunked"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", 501, b"unsupported transfer-encoding gzip, chunked"),
        (b"POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 413, b"2000 bytes, over the limit"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431, b"over 65536 bytes"),
        (b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\n"
         b"GET", 400, b"upgrade the protocol may not carry a body"),
    ],
)  # fmt: skip
def test_heads_a_lenient_parser_would_take_are_refused(
    serve: Callable[..., Running], head: bytes, status: int, why: bytes
) -> None:
    running = serve()
    data = _exchange(running, head + GET)
    assert _statuses(data) == [status], data
    assert why in data
    assert b"connection: close" in data


@pytest.mark.parametrize("size", [b"0x5", b"+5", b"1_0", b"-1", b"", b"5 5", b"5 ;x",
                                  b"fffffffffffffffffff"])  # fmt: skip
def test_chunk_sizes_that_are_not_plain_hex_are_refused(
    serve: Callable[..., Running], size: bytes
) -> None:
    running = serve()
    with running.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + size + b"\r\nhello\r\n0\r\n\r\n" + GET
        )  # fmt: skip
        data = _read_all(sock)
    assert _statuses(data) == [400], data


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    with running.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n123456789\r\n")
        sock.sendall(b"a" * 1500)
        data = _read_all(sock)
    assert _statuses(data) == [413], data
    assert b"over the limit of 1024 bytes" in data


def test_chunk_extensions_are_fine_and_pipelining_answers_in_order(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    data = _exchange(
        running,
        b"POST /one HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=value\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
        b"POST /later/two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /three HTTP/1.1\r\n\r\n" + CLOSE,
    )
    assert _statuses(data) == [200, 200, 200, 200]
    assert data.index(b"/one") < data.index(b"/later/two") < data.index(b"/three")
    assert data.index(b"/three") < data.index(b"/last")
    assert b'"body": 5' in data


def test_requests_before_a_framing_error_are_answered_first(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    data = _exchange(
        running,
        GET + b"GET /later HTTP/1.1\r\n\r\n" + b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n" + GET,
    )
    assert _statuses(data) == [200, 200, 400], data
    assert data.index(b"/later") < data.index(b"Invalid header token")


def test_a_closing_request_or_an_upgrade_is_answered_and_nothing_after_it_is_read(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    for first in (
        b"GET /http10 HTTP/1.0\r\n\r\n",
        CLOSE,
        b"GET /h2c HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    ):
        with running.connect() as sock:
            sock.sendall(first + GET + b"garbage\r\n\r\n")
            data = _read_all(sock)
        assert _statuses(data) == [200], data
        assert b"connection: close" in data
        assert b"/ok" not in data


def test_expect_100_continue_gets_100_before_the_body_is_sent(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    with running.connect() as sock:
        sock.sendall(b"POST /e HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abc" + CLOSE)
        data = _read_all(sock)
    assert _statuses(data) == [200, 200]
    assert b'"body": 3' in data


def test_a_head_trickled_in_pieces_or_one_endless_line_gets_431(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    for start in (b"GET / HTTP/1.1\r\nX: ", b"GET / HTTP/1.1\r\nX-"):
        with running.connect() as sock:
            sock.sendall(start)
            try:
                for _ in range(80):  # 80 KiB of one header line that never ends
                    sock.sendall(b"a" * 1024)
            except OSError:
                pass  # refused and closed before the end: the point
            data = _read_all(sock)
        assert _statuses(data) == [431], data


def test_http10_with_transfer_encoding_is_refused(serve: Callable[..., Running]) -> None:
    running = serve()
    data = _exchange(
        running,
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    )
    assert _statuses(data) == [400], data
    assert b"HTTP/1.0" in data


def test_an_answer_to_head_has_no_body_and_the_next_answer_follows_it(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    data = _exchange(running, b"HEAD /h HTTP/1.1\r\n\r\n" + CLOSE)
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200")
    assert b"content-length: " in first
    assert rest.startswith(b"HTTP/1.1 200"), data  # no body between the two
    assert _statuses(data) == [200, 200]


def test_many_pipelined_slow_requests_are_answered_in_order(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    with running.connect() as sock:
        sock.sendall(b"".join(b"GET /later/%d HTTP/1.1\r\n\r\n" % i for i in range(40)) + CLOSE)
        data = _read_all(sock, timeout=10)
    assert _statuses(data) == [200] * 41
    assert re.findall(rb"/later/(\d+)", data) == [b"%d" % i for i in range(40)]


def test_100_continue_waits_for_the_answer_of_a_request_before_it(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    with running.connect() as sock:
        sock.sendall(
            b"GET /later/first HTTP/1.1\r\n\r\n"
            b"POST /e HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        sock.settimeout(5)
        data = b""
        while b"100 Continue" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        assert data.index(b"/later/first") < data.index(b"100 Continue")
        sock.sendall(b"abc" + CLOSE)
        data += _read_all(sock)
    assert _statuses(data) == [200, 100, 200, 200]


def test_a_request_sent_one_byte_at_a_time_is_answered(serve: Callable[..., Running]) -> None:
    running = serve()
    request = b"POST /slow HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    with running.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            sock.sendall(request[i : i + 1])
        sock.sendall(CLOSE)
        data = _read_all(sock)
    assert _statuses(data) == [200, 200]


def test_a_slow_head_and_a_slow_body_get_408_and_an_idle_connection_is_closed(
    serve: Callable[..., Running],
) -> None:
    # The idle timeout is the longest: it also runs from the connect to the first byte,
    # and a pause of this process there must not turn a 408 case into a silent close.
    running = serve(header_timeout=0.3, body_timeout=0.3, idle_timeout=1.0)
    with running.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        started = time.monotonic()
        data = _read_all(sock)
        assert time.monotonic() - started < 3
    assert _statuses(data) == [408]
    assert b"the request head was not received in time" in data
    data = _exchange(running, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert _statuses(data) == [408]
    assert b"the request body" in data
    with running.connect() as sock:
        sock.sendall(GET)
        data = _read_all(sock)  # answered, then closed once idle
    assert _statuses(data) == [200]
    assert not data.endswith(b"<still open>")


def test_a_trickling_head_is_not_kept_alive_by_each_byte(serve: Callable[..., Running]) -> None:
    running = serve(header_timeout=0.5)
    with running.connect() as sock:
        started = time.monotonic()
        try:
            for byte in b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass  # closed by the server: the point
        data = _read_all(sock)
    assert _statuses(data) == [408]
    assert time.monotonic() - started < 2.5


def test_past_the_connection_limit_a_client_gets_503_and_a_freed_slot_serves(
    serve: Callable[..., Running],
) -> None:
    running = serve(max_connections=2)
    first, second = running.connect(), running.connect()
    for sock in (first, second):
        sock.sendall(GET)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    with running.connect() as third:
        data = _read_all(third)
    assert _statuses(data) == [503]
    assert b"limit of 2 connections" in data
    first.close()
    deadline = time.monotonic() + 5
    while len(running.server.connections) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with running.connect() as fourth:
        fourth.sendall(CLOSE)
        assert _statuses(_read_all(fourth)) == [200]
    second.close()
    assert running.server.refused == 1


# --- fuzz ---------------------------------------------------------------------------------

PIECES = [
    b"GET / HTTP/1.1\r\n", b"POST /v2/models/m/infer HTTP/1.1\r\n", b"Host: x\r\n",
    b"Content-Length: 5\r\n", b"Content-Length: 99999999999\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n", b"Expect: 100-continue\r\n", b" folded\r\n",
    b"\r\n", b"5\r\nhello\r\n", b"0\r\n\r\n", b"ffffffff\r\n", b"5;ext=1\r\nab", b"\x00",
    b"\xff\xfe", b"GET", b" ", b"HTTP/2.0\r\n", b"Connection: close\r\n", b"X: \x7f\r\n",
]  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Running]:
    """One server for every example: it must survive all of them."""
    running = Running("uvloop", header_timeout=0.3, body_timeout=0.3, idle_timeout=0.3)
    yield running
    running.stop()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=12)), max_size=14),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=6),
)
def test_malformed_bytes_are_answered_or_closed_and_the_server_stays_up(
    fuzz_server: Running, pieces: list[bytes], splits: list[int]
) -> None:
    running = fuzz_server
    payload = b"".join(pieces)
    with running.connect() as sock:
        position, index = 0, 0
        try:
            while position < len(payload):
                step = splits[index % len(splits)]
                sock.sendall(payload[position : position + step])
                position, index = position + step, index + 1
        except OSError:
            pass  # the server closed on a framing error: allowed
        data = _read_all(sock, timeout=3)
    assert not data.endswith(b"<still open>"), "neither answered in full nor closed"
    for status in _statuses(data):
        assert status in (100, 200, 400, 408, 411, 413, 431, 501, 505)
    # Still up: a good request on a new connection is answered. Not one attempt: a pause
    # of this process (a GC pass) longer than the 0.3 s idle timeout between the connect
    # and the send meets the silent close any idle connection gets.
    wait_for(
        lambda: _statuses(_exchange(running, CLOSE)),
        lambda statuses: statuses == [200],
        timeout=10,
        what="a good request answered after the malformed ones",
    )


def _framed(reader: RequestReader, pieces: list[bytes]) -> tuple[list[tuple[object, ...]], int]:
    requests: list[tuple[object, ...]] = []
    status = 0
    for piece in pieces:
        complete, error = reader.feed(piece)
        requests += [(r.method, r.path, r.query, r.body, r.keep_alive, r.headers) for r in complete]
        if error is not None:
            assert 400 <= error.status < 600
            assert not status, "two errors from one stream"
            status = error.status
    return requests, status


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=12)), max_size=14),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_the_reader_frames_the_same_requests_however_the_bytes_are_split(
    pieces: list[bytes], cuts: list[int]
) -> None:
    payload = b"".join(pieces)
    whole = _framed(RequestReader(64), [payload])
    points = sorted({0, len(payload), *(c % (len(payload) + 1) for c in cuts)})
    split = [payload[a:b] for a, b in itertools.pairwise(points)]
    assert _framed(RequestReader(64), split) == whole


def test_the_reader_frames_a_request_fed_one_byte_at_a_time() -> None:
    payload = (
        b"POST /v2/models/m/infer?x=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;e=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" + GET
    )
    reader = RequestReader(64)
    framed = _framed(reader, [payload[i : i + 1] for i in range(len(payload))])
    assert framed == _framed(RequestReader(64), [payload])
    requests, status = framed
    assert status == 0
    assert [(r[0], r[1], r[2], r[3]) for r in requests] == [
        ("POST", "/v2/models/m/infer", "x=1", b"abcde"),
        ("GET", "/ok", "", b""),
    ]
    assert reader.phase == "idle"
    assert reader.started == 2


def test_the_reader_keeps_trailers_out_of_the_head_and_trims_header_values() -> None:
    reader = RequestReader(1024)
    requests, error = reader.feed(
        b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked \r\nX-Id: 7 \t\r\n\r\n"
        b"5\r\nhello\r\n0\r\nInference-Header-Content-Length: 3\r\nX-Id: 8\r\n\r\n"
    )
    assert error is None
    (request,) = requests
    assert request.body == b"hello"
    assert request.headers == {"transfer-encoding": "chunked", "x-id": "7"}
    reader = RequestReader(1024)
    requests, error = reader.feed(
        b"POST /e HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue  \r\n\r\n"
    )
    assert (requests, error) == ([], None)
    assert reader.expects_continue


@pytest.mark.parametrize("piece", [1, 1000, 5000, 70000])
def test_the_reader_refuses_a_head_over_the_limit_however_it_arrives(piece: int) -> None:
    reader = RequestReader(1024, max_head_bytes=16384)
    stream = b"GET / HTTP/1.1\r\nX: " + b"a" * 40000
    errors = [reader.feed(stream[i : i + piece])[1] for i in range(0, len(stream), piece)]
    statuses = {error.status for error in errors if error is not None}
    assert statuses == {431}
    assert reader.done


def test_the_reader_bounds_the_framing_of_a_chunked_body() -> None:
    reader = RequestReader(1024, max_head_bytes=1024)
    requests, error = reader.feed(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * 5000
    )
    assert requests == []
    assert error is not None
    assert error.status == 413


class RecordingTransport(asyncio.Transport):
    """What a connection writes and when it closes, in order (no socket: the test below
    is about when writes happen, which a real socket does not show)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[bytes | str] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(bytes(data))

    def close(self) -> None:
        self.events.append("close")

    def is_closing(self) -> bool:
        return "close" in self.events

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_the_answers_of_one_loop_pass_are_written_together_once_it_ends() -> None:
    asyncio.run(_answers_of_one_pass())


async def _answers_of_one_pass() -> None:
    server = HttpServer(_echo, max_body_bytes=1024)
    server.loop = asyncio.get_running_loop()
    first, second = _Connection(server), _Connection(server)
    one, two = RecordingTransport(), RecordingTransport()
    first.connection_made(one)
    second.connection_made(two)

    first.data_received(GET + b"GET /two HTTP/1.1\r\n\r\n")
    second.data_received(GET)
    assert one.events == two.events == []  # made, not written: the pass goes on
    await asyncio.sleep(0)  # the pass ends
    (written,) = one.events  # both answers, in order, in one write
    assert isinstance(written, bytes)
    assert _statuses(written) == [200, 200]
    assert written.index(b"/ok") < written.index(b"/two")
    assert len(two.events) == 1

    # Anything else written, or a close, goes after the answers made before it.
    first.data_received(GET + CLOSE)
    written, closed = one.events[1:]
    assert isinstance(written, bytes)
    assert _statuses(written) == [200, 200]
    assert b"connection: close" in written
    assert closed == "close"
    second.data_received(GET + b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n")
    answer, error, closed = two.events[1:]
    assert isinstance(answer, bytes)
    assert isinstance(error, bytes)
    assert (_statuses(answer), _statuses(error), closed) == ([200], [400], "close")
    await asyncio.sleep(0)
    assert len(two.events) == 4  # nothing was left corked behind the error
