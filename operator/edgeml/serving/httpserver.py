"""The HTTP/1.1 server of `edgeml serve`: asyncio's Protocol API over llhttp's parser.

Framing is llhttp's (Node.js's HTTP parser, through httptools): a well-kept parser, strict
by default where requests are smuggled (RFC 9112 §6.3, §5.2). It refuses a request with
both Content-Length and Transfer-Encoding, duplicate or malformed Content-Lengths,
obsolete folded header lines, header names that are not tokens, control bytes in header
values, bare LF line ends and chunk sizes that are not plain hex; each gets 400 and the
connection is closed, so no byte after it is read as another request. On top of it this
module adds what a parser leaves to its server: transfer codings other than `chunked`
(501), Transfer-Encoding in an HTTP/1.0 request (400), HTTP versions other than 1.0 and
1.1 (505), trailer fields (dropped, never merged into the head), a head over
`MAX_HEADER_BYTES` (431, counted per `HEAD_SLICE` since llhttp buffers a line),
a body over the limit (413, before it is read when it declares its length), protocol
upgrades (answered as plain HTTP/1.1, then the connection is closed), `Expect:
100-continue`, and the deadlines: a client gets `header_timeout` to send a request head
once it started one and `body_timeout` for the body (else 408 and close); a keep-alive
connection idle for `idle_timeout` is closed, and so is one whose client reads none of
its answers (aborted if the close cannot drain); past `max_connections` a new connection
gets 503 and is closed. HEAD is answered without a body.

Why llhttp and not a framework: the server's own cost per request is a benchmark target
(docs/benchmarks.md), and a request here is a few hundred bytes of JSON answered in tens
of microseconds. Measured in one run (bench/http_layers.py), our protocol on httptools
served 1.7-1.8x the requests per second of the hand-written parser it replaced, which
served 1.3x uvicorn's and 2.2x aiohttp.web's. End to end the parser is a small share:
under load the whole server spent 60 µs of CPU per single-row request, of which llhttp
and this module about 5 (py-spy; the rest is the inference path in app.py and the
socket calls), so the swap bought safety (a parser fuzzed by Node.js's users) more than speed.
A connection keeps one parser, keep-alive is the HTTP/1.1 default, pipelined requests
are answered in order, TCP_NODELAY is set.

Responses are corked for the rest of the event loop's pass: what the requests read in
one pass answer is written when that pass is done, one `transport.write` per connection,
instead of one write per response as it is made. On this 2-CPU VM, with the client on the
other CPU, a write that wakes a sleeping client costs the server an inter-processor
interrupt through the hypervisor: measured with `perf`, 17% of the server's CPU under
8-connection load went to `sock_def_readable` waking the client. Written back to back,
only the first answer of a pass wakes it; with uvloop beside it, the server spent 10 µs
of system CPU per request instead of 20 and answered 40% more requests
(bench/serving_ab.py; docs/benchmarks.md). A lone request waits for nothing (its pass
has only it: sequential p50 was unchanged); under load an answer waits for
at most the other requests of its pass, which closed-loop clients were queued behind
anyway (their mean latency is connections / throughput, so it fell).

A handler returns a `Response`, or an awaitable of one for work that must not run on the
event loop; the connection answers no further request until it is answered.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

log = logging.getLogger("edgeml.serve.http")

MAX_HEADER_BYTES = 64 * 1024
HEAD, BODY, IDLE, BUSY = "the request head", "the request body", "idle", "busy"
"""What a connection waits for; the first two name a request's parts in a 408."""
LINGER_SECONDS = 1.0
"""How long a connection that failed framing is drained before it is closed."""
MAX_PIPELINED = 32
"""Complete requests queued behind the one being answered before reading pauses."""
HEAD_SLICE = 4096
"""Bytes fed to the parser at a time while a head is read: the head limit is counted per
slice (llhttp hands a header to us only once its line is complete), so it holds to
within a slice however the head is trickled or however long one line is."""
ABORT_AFTER_CLOSE_SECONDS = 10.0
"""A connection closed with answers its client never reads is aborted after this long."""
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
    """One framed request; header names are lower case, `query` is what follows `?`,
    `keep_alive` whether the connection stays open after its answer."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: str = ""
    keep_alive: bool = True


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


def _frame(response: Response, keep_alive: bool, body: bool = True) -> bytes:
    """The response's bytes; without its body (its length still said) to a HEAD request."""
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
    return head + b"\r\n" + response.body if body else head + b"\r\n"


class RequestReader:
    """Frames requests out of one connection's bytes (llhttp), with this server's limits.

    Pure framing, no I/O: `feed` takes the bytes as they arrive, split anywhere, and gives
    the requests they complete, in order, plus the error that ends the stream if there is
    one (the requests before it are still answered). After a request that does not keep
    the connection alive, or after an error, nothing more is read.
    """

    def __init__(self, max_body_bytes: int, max_head_bytes: int = MAX_HEADER_BYTES) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_head_bytes = max_head_bytes
        self._parser = httptools.HttpRequestParser(self)
        self.phase = IDLE
        """IDLE between requests, HEAD while a head is read, BODY while its body is."""
        self.started = 0
        """Requests begun on this connection so far (their heads' first bytes seen)."""
        self.done = False
        """Nothing more is read: the last request closes the connection, or framing failed."""
        self.expects_continue = False
        """The request being read asked for `100 Continue` and has not had it yet."""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._wire_bytes = 0
        self._chunked = False
        self._upgrade = False
        self._complete: list[Request] = []

    def feed(self, data: bytes) -> tuple[list[Request], HttpError | None]:
        """The requests `data` completes and, if framing failed, why (then `done`)."""
        if self.done:
            return [], None
        error: HttpError | None = None
        try:
            if len(data) <= HEAD_SLICE:
                self._feed(data)
            else:
                view, offset = memoryview(data), 0
                while offset < len(view):
                    # A body is fed whole; a head (or what may start one) a slice at a time.
                    end = len(view) if self.phase == BODY else offset + HEAD_SLICE
                    self._feed(view[offset:end])
                    offset = end
        except httptools.HttpParserUpgrade:
            pass  # the upgrading request is complete and closes the connection (below)
        except httptools.HttpParserCallbackError as exc:
            context = exc.__context__
            error = context if isinstance(context, HttpError) else HttpError(400, str(exc))
        except httptools.HttpParserError as exc:
            error = self._parser_error(exc)
        except HttpError as exc:  # a limit counted between the parser's calls
            error = exc
        complete, self._complete = self._complete, []
        if complete and not complete[-1].keep_alive:
            # What follows a closing request is never read as a request, error or not
            # (llhttp refuses it: "Data after `Connection: close`").
            self.done, error = True, None
        elif error is not None:
            self.done = True
        return complete, error

    def _feed(self, piece: bytes | memoryview) -> None:
        self._parser.feed_data(piece)
        # What a head or a chunked body's framing (chunk lines, trailers) cost on the wire,
        # counted here because llhttp buffers a header line until it is complete.
        if self.phase == HEAD:
            self._head_bytes += len(piece)  # since on_message_begin, or all of this piece
            if self._head_bytes > self.max_head_bytes:
                raise HttpError(431, f"the request head is over {self.max_head_bytes} bytes")
        elif self.phase == BODY and self._chunked:
            self._wire_bytes += len(piece)
            if self._wire_bytes > self.max_body_bytes + self.max_head_bytes:
                raise HttpError(
                    413, f"the request body is over the limit of {self.max_body_bytes} bytes"
                )

    def continue_sent(self) -> None:
        """The server answered `100 Continue` for the request being read."""
        self.expects_continue = False

    @staticmethod
    def _parser_error(exc: httptools.HttpParserError) -> HttpError:
        reason = str(exc) or type(exc).__name__
        if "PRI" in reason:
            return HttpError(505, "HTTP/2 is not served here; send HTTP/1.1")
        return HttpError(400, f"malformed request: {reason}")

    # --- llhttp's callbacks (called from feed_data) -----------------------------------------

    def on_message_begin(self) -> None:
        self.phase = HEAD
        self.started += 1
        self._url = b""
        self._headers = {}
        self._head_bytes = 0
        self._body = []
        self._body_bytes = 0
        self._wire_bytes = 0
        self._chunked = False
        self._upgrade = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.phase == BODY:
            return  # a trailer field: never merged into the head that was checked
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").rstrip(" \t")  # llhttp keeps trailing whitespace
        if key == "transfer-encoding" and key in self._headers:
            text = f"{self._headers[key]}, {text}"
        self._headers[key] = text

    def on_headers_complete(self) -> None:
        parser, headers = self._parser, self._headers
        version = parser.get_http_version()
        if version not in ("1.0", "1.1"):
            raise HttpError(505, f"unsupported protocol HTTP/{version}")
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.lower() != "chunked":
            raise HttpError(501, f"unsupported transfer-encoding {coding[:60]}")
        if coding is not None and version == "1.0":
            # RFC 9112 §6.1: an HTTP/1.0 peer may frame it differently; refuse, then close.
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        self._chunked = coding is not None
        length = int(headers.get("content-length", "0"))  # llhttp checked its digits
        if length > self.max_body_bytes:
            raise HttpError(
                413, f"the request body is {length} bytes, over the limit of {self.max_body_bytes}"
            )
        self._upgrade = parser.should_upgrade()
        if self._upgrade and (length or coding is not None):
            # llhttp would skip such a body: refuse rather than answer without it.
            raise HttpError(400, "a request asking to upgrade the protocol may not carry a body")
        self.phase = BODY
        self.expects_continue = (
            (length > 0 or coding is not None)
            and version == "1.1"
            and headers.get("expect", "").lower() == "100-continue"
        )

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_bytes:
            raise HttpError(
                413, f"the request body is over the limit of {self.max_body_bytes} bytes"
            )
        self._body.append(body)

    def on_message_complete(self) -> None:
        target = self._url.decode("latin-1")
        path, _, query = target.partition("?")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        keep_alive = self._parser.should_keep_alive() and not self._upgrade
        method = self._parser.get_method().decode("latin-1")
        self._complete.append(Request(method, path, self._headers, body, query, keep_alive))
        self.phase = IDLE
        self.expects_continue = False


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
        self._corked: list[_Connection] = []
        """Connections with answers not written yet; written when the loop's pass ends."""

    def cork(self, connection: _Connection) -> None:
        """Write `connection`'s answers once the loop has run what is ready now."""
        if not self._corked:
            loop = self.loop or asyncio.get_running_loop()
            loop.call_soon(self._uncork)
        self._corked.append(connection)

    def _uncork(self) -> None:
        corked, self._corked = self._corked, []
        for connection in corked:
            connection.flush()

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
    """One client connection: its reader, the requests waiting for an answer, its state."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.reader = RequestReader(server.max_body_bytes)
        self.queue: deque[Request] = deque()
        """Requests framed and not answered yet (pipelined behind the one being answered)."""
        self.error: HttpError | None = None
        """The framing error to answer once the requests before it are answered."""
        self.busy = False
        self._pending: asyncio.Future[None] | None = None
        self.phase: tuple[str, int] = (IDLE, 0)
        """What the connection waits for (HEAD, BODY, IDLE; BUSY while answering), and
        for which request; `phase_since` is when that began (the sweep's deadlines)."""
        self.phase_since = 0.0
        self.failed = False
        self._write_paused = False
        self._reading_paused = False
        self._out: list[bytes] = []
        """Answers made and not written yet (see the module's docstring on corking)."""

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
        reader = self.reader
        if self.busy or self.failed or (self.queue and not self._write_paused):
            phase = (BUSY, reader.started)
        elif self._write_paused:
            phase = (IDLE, reader.started)  # its client reads nothing: the idle deadline runs
        else:
            phase = (reader.phase, reader.started)
        if phase != self.phase:
            self.phase = phase
            loop = self.server.loop
            self.phase_since = loop.time() if loop is not None else 0.0

    def expired(self, what: str) -> None:
        """The sweep found a deadline passed: 408 for a head or body, close when idle."""
        if self.transport is None or self.busy or self.failed:
            return
        if what == IDLE:
            self._close()  # idle keep-alive: nothing to answer
        else:
            self._fail(HttpError(408, f"{what} was not received in time"))

    def pause_writing(self) -> None:
        # The client is not reading its responses: stop reading and answering its requests.
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self.busy:
            self._serve_queued()
        self._update_reading()
        self._mark()

    def _update_reading(self) -> None:
        """Read while the client reads its answers and little is queued (in requests and
        in body bytes); after a framing error, keep draining for the lingering close."""
        transport = self.transport
        queue = self.queue
        pause = not self.failed and (
            self._write_paused
            or len(queue) >= MAX_PIPELINED
            or (bool(queue) and sum(len(r.body) for r in queue) > self.server.max_body_bytes)
        )
        if transport is None or pause == self._reading_paused:
            return
        self._reading_paused = pause
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def close_if_idle(self) -> None:
        """Close now unless a request is being read or answered."""
        if (
            self.transport is not None
            and not self.busy
            and not self.queue
            and self.reader.phase == IDLE
        ):
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        """Close at once (after writing the answers made: aborting drops what is queued)."""
        if self.transport is not None:
            self.flush()
            self.transport.abort()

    def _close(self) -> None:
        """Close after what is being written, or abort if the client never reads it."""
        transport = self.transport
        if transport is None:
            return
        self.flush()
        transport.close()
        asyncio.get_running_loop().call_later(ABORT_AFTER_CLOSE_SECONDS, self._abort_if, transport)

    def _abort_if(self, transport: asyncio.Transport) -> None:
        if self.transport is transport:
            transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.failed or self.error is not None:
            return  # after a framing error nothing more is read as a request
        requests, error = self.reader.feed(data)
        if requests:
            self.queue.extend(requests)
        self.error = error
        if not self.busy:
            self._serve_queued()
        self._update_reading()
        self._mark()

    def _fail(self, error: HttpError) -> None:
        """Answer a framing error and close. The rest of the client's bytes are read and
        dropped for a moment first (a lingering close): closing with them unread would
        reset the connection and could destroy the answer before the client reads it."""
        self.failed = True
        self.queue.clear()
        self._mark()
        transport = self.transport
        if transport is None:
            return
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        self.flush()
        transport.write(error_response_bytes(error.status, error.message))
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_SECONDS, self._close)
        else:
            self._close()

    def eof_received(self) -> bool | None:
        return None  # the client is done: close (after what is still being written)

    def _serve_queued(self) -> None:
        """Answer the queued requests in order until one must wait, then the framing
        error if one ended the stream, then `100 Continue` if the next body waits on it."""
        server, queue = self.server, self.queue
        while queue and not self.busy and not self.failed and not self._write_paused:
            if self.transport is None or self.transport.is_closing():
                queue.clear()  # the client went away: nobody will read these answers
                return
            request = queue.popleft()
            server.in_flight += 1
            try:
                result = server.handler(request)
            except Exception:
                log.exception("handler failed on %s %s", request.method, request.path)
                result = Response(500, b'{"error":"internal server error"}')
            if isinstance(result, Response):
                server.in_flight -= 1
                self._write(result, request)
            else:
                self.busy = True
                self._mark()
                self._pending = asyncio.ensure_future(self._finish(result, request))
                return
        if (
            self.busy
            or self.failed
            or self.queue
            or self.transport is None
            or self.transport.is_closing()
        ):
            return
        if self.error is not None:
            self._fail(self.error)
        elif self.reader.expects_continue:
            self.reader.continue_sent()
            self.flush()
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def _finish(self, pending: Awaitable[Response], request: Request) -> None:
        try:
            response = await pending
        except Exception:
            log.exception("handler failed")
            response = Response(500, b'{"error":"internal server error"}')
        finally:
            self.server.in_flight -= 1
        self.busy = False
        self._write(response, request)
        self._serve_queued()
        self._update_reading()
        self._mark()

    def flush(self) -> None:
        """Write the answers made so far, in one write. Called when the loop's pass ends,
        and before anything else is written or the connection is closed."""
        out = self._out
        if out:
            self._out = []
            if self.transport is not None:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _write(self, response: Response, request: Request) -> None:
        if self.transport is None:
            return
        keep_alive = request.keep_alive and not self.server.closing
        if not self._out:
            self.server.cork(self)
        self._out.append(_frame(response, keep_alive, request.method != "HEAD"))
        if not keep_alive:
            self.queue.clear()
            self._close()
