"""A minimal HTTP/1.1 server on asyncio's Protocol API, made for small JSON requests.

Why not a framework: the server's own cost per request is a benchmark target (under
150 µs above a do-nothing server), and a request here is a few hundred bytes of JSON
answered in tens of microseconds, so parsing, routing and framing are most of the cost.
This keeps one buffer per connection, parses headers once per request, writes each
response with one `transport.write`, and supports what clients send: keep-alive
(HTTP/1.1 default), pipelining (answered in order), Content-Length and chunked bodies,
`Expect: 100-continue`, TCP_NODELAY. Bodies over the limit get 413 before they are read.

Framing is strict, because a lenient parser in front of or behind another is how
requests are smuggled (RFC 9112 §6.3, §5.2): a request with both Content-Length and
Transfer-Encoding, conflicting Content-Lengths, an obsolete folded header line, a
header name that is not a token, a control byte in a header value or a chunk size that
is not plain hex is refused with 400 and the connection is closed, so no byte after it
is read as another request. A client gets `header_timeout` to send a request head once
it started one, and `body_timeout` for the body (else 408 and close); a keep-alive
connection idle for `idle_timeout` is closed; past `max_connections` a new connection
gets 503 and is closed.

A handler returns a `Response`, or an awaitable of one for work that must not run on
the event loop; the connection reads no further request until it is answered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

log = logging.getLogger("edgeml.serve.http")

MAX_HEADER_BYTES = 64 * 1024
HEAD, BODY, IDLE, BUSY = "the request head", "the request body", "idle", "busy"
"""What a connection waits for; the first two name a request's parts in a 408."""
LINGER_SECONDS = 1.0
"""How long a connection that failed framing is drained before it is closed."""
MAX_CHUNK_SIZE_DIGITS = 8
"""A chunk size in at most 8 hex digits (4 GiB): anything longer is refused, not parsed."""
# Regular expressions run in C: the checks cost about a microsecond a request.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control bytes no request head may hold (tab, CR and LF are checked apart)."""
_HEX = re.compile(rb"[0-9A-Fa-f]{1,%d}" % MAX_CHUNK_SIZE_DIGITS)
REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


@dataclass(slots=True)
class Request:
    """One parsed request; header names are lower case, `query` is what follows `?`."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: str = ""


@dataclass(slots=True)
class Response:
    """What a handler answers."""

    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], "Response | Awaitable[Response]"]


class HttpError(Exception):
    """The request cannot be framed; answer `status` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response_bytes(status: int, message: str) -> bytes:
    """A complete error response that closes the connection (used for framing errors)."""
    from edgeml.serving.protocol import encode_error

    body = encode_error(message)
    return _frame(Response(status, body), keep_alive=False)


def _frame(response: Response, keep_alive: bool) -> bytes:
    status = response.status
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (
        status,
        REASONS.get(status, "Unknown").encode(),
        response.content_type,
        len(response.body),
    )
    for name, value in response.headers:
        head += f"{name}: {value}\r\n".encode("latin-1")
    if not keep_alive:
        head += b"connection: close\r\n"
    return head + b"\r\n" + response.body


@dataclass(slots=True)
class _Head:
    method: str
    path: str
    headers: dict[str, str]
    keep_alive: bool
    length: int  # -1: chunked
    query: str = ""
    continue_sent: bool = False


def _is_token(text: str) -> bool:
    # Most names are letters, digits and hyphens: a C-speed check first, the regex after.
    if text.isascii() and text.replace("-", "").isalnum():
        return True
    return _TOKEN.fullmatch(text) is not None


def parse_head(raw: bytes) -> _Head:
    """The request line and headers (without the blank line); HttpError if malformed."""
    text = raw.decode("latin-1")  # every byte decodes: the checks below decide
    flat = text.replace("\r\n", "")
    if not flat.isprintable():  # the common head is all printable: one C pass
        if "\r" in flat or "\n" in flat:
            raise HttpError(400, "a bare CR or LF in the request head")
        if _CONTROL.search(flat) is not None:
            raise HttpError(400, "the request head holds a control byte")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        if len(parts) == 3 and parts[2].startswith("HTTP/"):
            raise HttpError(505, f"unsupported protocol {parts[2]}")
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1") or not _is_token(method):
        raise HttpError(400, "malformed request line")
    if not target or "\t" in target:
        raise HttpError(400, "malformed request target")
    headers: dict[str, str] = {}
    lengths: set[str] = set()
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            raise HttpError(400, "obsolete line folding is not accepted")
        name, sep, value = line.partition(":")
        if not sep or not _is_token(name):
            raise HttpError(400, f"malformed header line {line[:60]!r}")
        key = name.lower()
        value = value.strip(" \t")
        if key == "content-length":
            lengths.update(v.strip(" \t") for v in value.split(","))
        elif key in headers and key == "transfer-encoding":
            value = f"{headers[key]}, {value}"
        headers[key] = value
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    path, _, query = target.partition("?")
    if "transfer-encoding" in headers:
        if lengths:
            raise HttpError(400, "both Content-Length and Transfer-Encoding: refused")
        if headers["transfer-encoding"].lower() != "chunked":
            raise HttpError(501, f"unsupported transfer-encoding {headers['transfer-encoding']}")
        length = -1
    else:
        if len(lengths) > 1:
            raise HttpError(400, "conflicting content-length values")
        raw_length = next(iter(lengths), "0")
        if not raw_length.isdigit() or not raw_length.isascii() or len(raw_length) > 18:
            raise HttpError(400, f"bad content-length {raw_length[:30]!r}")
        length = int(raw_length)
    return _Head(method, path, headers, keep_alive, length, query)


def parse_chunked(buffer: bytearray, start: int, limit: int) -> tuple[bytes, int] | None:
    """A chunked body starting at `start`: (body, end offset), or None if incomplete."""
    body = bytearray()
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            if len(buffer) - position > 1024:
                raise HttpError(400, "malformed chunk size line")
            return None
        size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].rstrip(b" \t")
        if _HEX.fullmatch(size_text) is None:
            raise HttpError(400, "malformed chunk size")
        size = int(size_text, 16)
        if len(body) + size > limit:
            raise HttpError(413, f"the request body is over the limit of {limit} bytes")
        data_start = line_end + 2
        if size == 0:
            # Trailers are not used; skip them up to the blank line.
            end = buffer.find(b"\r\n\r\n", line_end)
            if end < 0:
                return None
            return bytes(body), end + 4
        if len(buffer) < data_start + size + 2:
            return None
        if buffer[data_start + size : data_start + size + 2] != b"\r\n":
            raise HttpError(400, "a chunk is not followed by CRLF")
        body += buffer[data_start : data_start + size]
        position = data_start + size + 2


class HttpServer:
    """Listens, frames requests, calls the handler, writes responses; drains on stop."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int,
        max_connections: int = 1024,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        idle_timeout: float = 75.0,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        self.refused = 0
        """Connections refused at the limit (for metrics and tests)."""
        self.connections: set[_Connection] = set()
        self.in_flight = 0
        self.closing = False
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; the bound port (useful with port 0)."""
        loop = self.loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, backlog=1024
        )
        self._sweeper = asyncio.ensure_future(self._sweep())
        sockets = self._server.sockets
        bound: int = sockets[0].getsockname()[1] if sockets else port
        return bound

    async def _sweep(self) -> None:
        """Enforce the read and idle deadlines of every connection, a few times a second.

        One sweep for the server instead of a timer per request: a request only notes
        when its phase began (an attribute write), which keeps the hot path as it was.
        """
        timeouts = (self.header_timeout, self.body_timeout, self.idle_timeout)
        tick = min(1.0, max(0.05, min(timeouts) / 4))
        limits = {HEAD: self.header_timeout, BODY: self.body_timeout, IDLE: self.idle_timeout}
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for connection in list(self.connections):
                what = connection.phase[0]
                if what in limits and now - connection.phase_since >= limits[what]:
                    connection.expired(what)

    async def stop(self, grace_seconds: float) -> None:
        """Stop accepting; let requests in flight finish (bounded); close every connection."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self.in_flight:
            log.warning("closing with %d request(s) still in flight", self.in_flight)
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()


class _Connection(asyncio.Protocol):
    """One client connection: a buffer, the head of the request being read, its state."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: _Head | None = None
        self.body_start = 0
        self.busy = False
        self._pending: asyncio.Future[None] | None = None
        self.phase: tuple[str, int] = (IDLE, 0)
        """What the connection waits for (HEAD, BODY, IDLE; BUSY while answering), and
        for which request; `phase_since` is when that began (the sweep's deadlines)."""
        self.phase_since = 0.0
        self.requests = 0
        """Requests framed on this connection so far."""
        self.failed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not always an asyncio.Transport subclass (uvloop's is not).
        self.transport = transport = cast(asyncio.Transport, transport)
        if len(self.server.connections) >= self.server.max_connections:
            self.server.refused += 1
            transport.write(
                error_response_bytes(
                    503, f"the server holds its limit of {self.server.max_connections} connections"
                )
            )
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small responses must not wait for Nagle's timer (up to 40 ms with delayed ACK).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)
        self._mark()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def _mark(self) -> None:
        """Note what the connection now waits for; a deadline runs from the start of its
        head, body or idle spell, so more bytes of the same head do not extend it."""
        if self.busy or self.failed:
            phase = (BUSY, self.requests)
        elif self.head is not None:
            phase = (BODY, self.requests)
        elif self.buffer:
            phase = (HEAD, self.requests)
        else:
            phase = (IDLE, self.requests)
        if phase != self.phase:
            self.phase = phase
            loop = self.server.loop
            self.phase_since = loop.time() if loop is not None else 0.0

    def expired(self, what: str) -> None:
        """The sweep found a deadline passed: 408 for a head or body, close when idle."""
        if self.transport is None or self.busy or self.failed:
            return
        if what == IDLE:
            self.transport.close()  # idle keep-alive: nothing to answer
        else:
            self._fail(HttpError(408, f"{what} was not received in time"))

    def pause_writing(self) -> None:
        # The client is not reading its responses: stop reading its requests.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def close_if_idle(self) -> None:
        """Close now unless a request is being read or answered."""
        if self.transport is not None and not self.busy and not self.buffer:
            self.transport.close()

    def abort(self) -> None:
        """Close at once."""
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return  # after a framing error nothing more is read as a request
        self.buffer += data
        if not self.busy:
            self._serve_buffered()
            self._mark()

    def _fail(self, error: HttpError) -> None:
        """Answer a framing error and close. The rest of the client's bytes are read and
        dropped for a moment first (a lingering close): closing with them unread would
        reset the connection and could destroy the answer before the client reads it."""
        self.failed = True
        self.buffer.clear()
        self.head = None
        self._mark()
        transport = self.transport
        if transport is None:
            return
        transport.write(error_response_bytes(error.status, error.message))
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def eof_received(self) -> bool | None:
        return None  # the client is done: close (after what is still being written)

    def _next_request(self) -> tuple[Request, bool] | None:
        """The next complete request in the buffer (and keep-alive), or None for now."""
        buffer = self.buffer
        if self.head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise HttpError(431, f"the request head is over {MAX_HEADER_BYTES} bytes")
                return None
            self.head = parse_head(bytes(buffer[:end]))
            self.body_start = end + 4
            if self.head.length > self.server.max_body_bytes:
                raise HttpError(
                    413,
                    f"the request body is {self.head.length} bytes, over the limit of "
                    f"{self.server.max_body_bytes}",
                )
        head = self.head
        if head.length >= 0:
            end = self.body_start + head.length
            if len(buffer) < end:
                self._maybe_continue(head)
                return None
            body = bytes(buffer[self.body_start : end])
        else:
            parsed = parse_chunked(buffer, self.body_start, self.server.max_body_bytes)
            if parsed is None:
                self._maybe_continue(head)
                return None
            body, end = parsed
        del buffer[:end]
        self.head = None
        self.requests += 1
        return Request(head.method, head.path, head.headers, body, head.query), head.keep_alive

    def _maybe_continue(self, head: _Head) -> None:
        if (
            not head.continue_sent
            and self.transport is not None
            and head.headers.get("expect", "").lower() == "100-continue"
        ):
            head.continue_sent = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _serve_buffered(self) -> None:
        server = self.server
        while self.transport is not None and not self.busy and self.buffer and not self.failed:
            try:
                parsed = self._next_request()
            except HttpError as error:
                self._fail(error)
                return
            if parsed is None:
                return
            request, keep_alive = parsed
            server.in_flight += 1
            try:
                result = server.handler(request)
            except Exception:
                log.exception("handler failed on %s %s", request.method, request.path)
                result = Response(500, b'{"error":"internal server error"}')
            if isinstance(result, Response):
                server.in_flight -= 1
                self._write(result, keep_alive)
            else:
                self.busy = True
                self._mark()
                self._pending = asyncio.ensure_future(self._finish(result, keep_alive))
                return

    async def _finish(self, pending: Awaitable[Response], keep_alive: bool) -> None:
        try:
            response = await pending
        except Exception:
            log.exception("handler failed")
            response = Response(500, b'{"error":"internal server error"}')
        finally:
            self.server.in_flight -= 1
        self.busy = False
        self._write(response, keep_alive)
        self._serve_buffered()
        self._mark()

    def _write(self, response: Response, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        keep_alive = keep_alive and not self.server.closing
        transport.write(_frame(response, keep_alive))
        if not keep_alive:
            transport.close()
