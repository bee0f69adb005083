"""The oracle's own HTTP/1.1 server: ``POST /v1/query`` answered straight from the parser, every
other route handed to the FastAPI app over ASGI.

Why not uvicorn for the query path: per request, uvicorn builds an ASGI scope, a request-response
cycle object and message dicts, validates the headers the app sends and writes the head and the
body of the answer in two system calls. For a trivial app that is ~40 us of CPU per request on the
benchmark machine, against ~15 us for an ``httptools`` protocol that answers from a task in one
write; on the oracle's hot path it was about a sixth of the answering thread's samples
(``bench/README.md``, sixth round). The query path here costs one parse (llhttp through
``httptools``, the parser uvicorn uses), one task and one ``write``.

What the server does, per connection:

* HTTP/1.1 keep-alive (``Connection: close`` and HTTP/1.0 honoured), requests pipelined on one
  connection answered in order, one at a time; a connection with more than
  :data:`MAX_PIPELINED` requests waiting stops being read until they are answered, and one whose
  peer does not read its answers (the transport's write buffer is full) likewise;
* limits, each answered with an RFC 9457 problem and the connection closed: a request head
  (line and headers) over ``max_head_bytes`` -> 431, a body over ``max_request_bytes`` (announced by
  ``Content-Length`` or counted as it arrives, chunked or not) -> 413, bytes that are not HTTP ->
  400; an ``Upgrade`` (websocket, h2c) is ignored: the request is answered, then the connection closed;
* ``Expect: 100-continue`` answered ``100 Continue`` (or 413 at once if the announced body is over
  the limit);
* a connection idle for ``keep_alive_seconds`` is closed, and so is one that has not delivered a
  whole request ``request_seconds`` after it began (one sweep a second for all connections, not
  a timer per request);
* on shutdown (SIGINT or SIGTERM in :func:`run_oracle_server`): stop accepting, close idle
  connections, let answers in progress finish (at most ``shutdown_seconds``), then return.

The other routes (``/v1/health``, ``/v1/identity``, ``/v1/results/{id}``, FastAPI's 404s and 405s)
go through :meth:`OracleHttpServer._asgi`: a minimal ASGI 3 bridge (HTTP only, no lifespan, no
streaming: the app's answer is collected and written whole with its length). ``HEAD`` answers carry
no body.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

from oracle.app import OracleHttpApp
from oracle.app import problem_body as problem_parts  # one problem body for the app and the server

log = logging.getLogger("govshare.oracle.http")

#: Requests waiting on one connection (pipelined) before the server stops reading from it.
MAX_PIPELINED = 16

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


class _Request:
    """One parsed request: what the handlers need of it."""

    __slots__ = ("method", "target", "headers", "body", "keep_alive", "http_version", "client")

    def __init__(self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes,
                 keep_alive: bool, http_version: str, client: tuple[str, int] | None = None) -> None:
        self.client = client
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.http_version = http_version


class _Refusal(Exception):
    """A request the server answers itself and then closes the connection (413, 431, 400)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class _Connection(asyncio.Protocol):
    """One client connection: parses requests as bytes arrive, answers them in order."""

    def __init__(self, server: OracleHttpServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.waiting: deque[_Request] = deque()
        self.busy = False  # a request of this connection is being answered
        self.closing = False
        self.paused_reading = False
        self.paused_writing = False
        self.last_active = self.loop.time()
        self.started: float | None = None  # when the request being received began
        self._target = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._body = bytearray()
        self._expect_continue = False

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        self.waiting.clear()

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # the request is answered, the upgrade ignored (RFC 9110 7.8); what follows is not HTTP/1.1
            self._stop_reading()
        except httptools.HttpParserCallbackError as exc:  # what a callback raised is its context
            cause = exc.__context__
            if isinstance(cause, _Refusal):
                self._refuse(cause)
            else:  # a bug of ours: answer 500 rather than leave the client hanging
                log.error("HTTP parser callback failed", exc_info=cause or exc)
                self._refuse(_Refusal(500, "internal error", "the server could not read this request"))
        except httptools.HttpParserError as exc:
            self._refuse(_Refusal(400, "malformed request", f"not an HTTP/1.1 request ({type(exc).__name__})"))

    def eof_received(self) -> bool:
        # the client will send nothing more: answer what it already sent (half-close), then close
        if not self.busy and not self.waiting:
            return False
        self.closing = True
        return True

    def pause_writing(self) -> None:
        self.paused_writing = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.paused_writing = False
        if len(self.waiting) < MAX_PIPELINED:
            self._resume_reading()

    # ------------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        self.started = self.loop.time()
        self._target = bytearray()
        self._headers = []
        self._head_bytes = 0
        self._body = bytearray()
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._target += url
        self._grow_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow_head(len(name) + len(value) + 4)
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        limit = self.server.max_request_bytes
        for name, value in self._headers:
            if name == b"content-length":
                if not value.strip().isdigit():
                    raise _Refusal(400, "malformed request", "Content-Length is not a number")
                if int(value) > limit:
                    raise _Refusal(413, "request too large", f"a request body is at most {limit} bytes")
            elif name == b"expect" and value.lower() == b"100-continue":
                self._expect_continue = True
        if self._expect_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self.server.max_request_bytes:
            raise _Refusal(413, "request too large", f"a request body is at most {self.server.max_request_bytes} bytes")

    def on_message_complete(self) -> None:
        self.started = None
        parser = self.parser
        request = _Request(parser.get_method(), bytes(self._target), self._headers, bytes(self._body),
                           parser.should_keep_alive(), parser.get_http_version(), self.peer)
        self._body = bytearray()
        if self.busy:
            self.waiting.append(request)
            if len(self.waiting) >= MAX_PIPELINED:
                self._pause_reading()
        else:
            self._start(request)

    # ------------------------------------------------------------------ answering

    def _grow_head(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.server.max_head_bytes:
            raise _Refusal(431, "request head too large", f"the request line and headers are at most {self.server.max_head_bytes} bytes")

    def _start(self, request: _Request) -> None:
        self.busy = True
        self.server.in_flight += 1
        self.loop.create_task(self._answer(request))

    async def _answer(self, request: _Request) -> None:
        try:
            try:
                status, headers, body = await self.server.handle(request)
            except Exception:  # a route failed: the client gets a problem, the log the traceback
                log.exception("answering %s %s failed", request.method.decode(), request.target.split(b"?")[0].decode("latin-1"))
                status, headers, body = _problem(500, "internal error", "the oracle could not answer this request")
            # a closing connection (the client half-closed, or sent something refused after this)
            # still gets the answers to what it sent before; the last one closes it
            keep_alive = request.keep_alive and not self.server.stopping and (not self.closing or bool(self.waiting))
            self._write(status, headers, body, keep_alive, head_only=request.method == b"HEAD")
        finally:
            self.server.in_flight -= 1
            self.busy = False
        self.last_active = self.loop.time()
        if self.transport is None or self.transport.is_closing():
            return
        if not keep_alive:
            self.transport.close()
        elif self.waiting:
            self._start(self.waiting.popleft())
            if len(self.waiting) < MAX_PIPELINED and not self.paused_writing:
                self._resume_reading()
        elif self.closing:  # nothing more will come: every request received has had its answer
            self.transport.close()

    def _write(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool, *,
               head_only: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"")), self.server.date_header()]
        for name, value in headers:
            if name != b"content-length" and name != b"connection":
                head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        if not head_only:
            head.append(body)
        self.transport.write(b"".join(head))

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer a request the server will not pass on, then close (the rest of the stream cannot
        be trusted). Requests received before it are answered first; then the connection closes
        without the refusal (it cannot follow them in order without holding the stream open)."""
        if self.busy:  # earlier requests are being answered: they go first, then the connection closes
            self._stop_reading()
            return
        self.parser = httptools.HttpRequestParser(self)  # nothing more is parsed from this connection
        self.closing = True
        if self.transport is None or self.transport.is_closing():
            return
        self._write(*_problem(refusal.status, refusal.title, refusal.detail), False)
        self.transport.close()

    def _stop_reading(self) -> None:
        """Read nothing more: answer what was received, then close."""
        self.parser = httptools.HttpRequestParser(self)
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
            if not self.busy and not self.waiting:
                self.transport.close()

    def _pause_reading(self) -> None:
        if not self.paused_reading and self.transport is not None and not self.transport.is_closing():
            self.paused_reading = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.paused_reading and self.transport is not None and not self.transport.is_closing():
            self.paused_reading = False
            self.transport.resume_reading()

    def idle(self) -> bool:
        return not self.busy and not self.waiting and self.started is None


def _problem(status: int, title: str, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The oracle's RFC 9457 problem (``oracle.app``'s), as (status, headers, body)."""
    status, body, content_type = problem_parts(status, title, detail)
    return status, [(b"content-type", content_type)], body


class OracleHttpServer:
    """Serves one :class:`~oracle.app.OracleHttpApp` on ``host:port``: :meth:`serve` on a running
    event loop (until :meth:`shutdown`), or :class:`OracleServerThread` in a background thread."""

    def __init__(self, app: OracleHttpApp, host: str, port: int, *, max_head_bytes: int = 16384,
                 keep_alive_seconds: float = 5.0, request_seconds: float = 30.0, shutdown_seconds: float = 30.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.max_request_bytes = app.max_request_bytes
        self.max_head_bytes = max_head_bytes
        self.keep_alive_seconds = keep_alive_seconds
        self.request_seconds = request_seconds
        self.shutdown_seconds = shutdown_seconds
        self.connections: set[_Connection] = set()
        self.in_flight = 0
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by serve()
        self._stop: asyncio.Event | None = None
        self._date_second = -1
        self._date = b""

    def date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, b"date: %s\r\n" % formatdate(now, usegmt=True).encode("ascii")
        return self._date

    async def handle(self, request: _Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The answer to one request: (status, headers, body)."""
        target = request.target
        if target.partition(b"?")[0] == b"/v1/query":
            if request.method != b"POST":
                status, headers, body = _problem(405, "method not allowed", "POST a signed query here")
                return status, headers + [(b"allow", b"POST")], body
            status, body, content_type = await self.app.answer_query(request.body)
            return status, [(b"content-type", content_type)], body
        return await self._asgi(request)

    async def _asgi(self, request: _Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``request`` through the FastAPI app (ASGI 3, HTTP scope), its answer collected whole."""
        url = httptools.parse_url(request.target)
        raw_path = url.path or b"/"
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": request.http_version,
            "method": request.method.decode("ascii"), "scheme": "http", "root_path": "",
            "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path, "query_string": url.query or b"",
            "headers": request.headers, "server": (self.host, self.port), "client": request.client,
        }
        sent_body = False
        done = asyncio.Event()
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app.api(scope, receive, send)
        finally:
            done.set()
        if not start:
            return _problem(500, "internal error", "the oracle could not answer this request")
        headers = [(bytes(name).lower(), bytes(value)) for name, value in start.get("headers", [])]
        return int(start["status"]), headers, b"".join(chunks)

    async def serve(self, ready: threading.Event | None = None) -> None:
        """Accept connections until :meth:`shutdown`; then finish the answers in progress."""
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await self.loop.create_server(lambda: _Connection(self), self.host, self.port, backlog=2048)
        if self.port == 0:
            self.port = server.sockets[0].getsockname()[1]
        sweeper = self.loop.create_task(self._sweep())
        if ready is not None:
            ready.set()
        try:
            await self._stop.wait()
        finally:
            self.stopping = True
            server.close()
            sweeper.cancel()
            for connection in list(self.connections):
                if connection.idle() and connection.transport is not None:
                    connection.transport.close()
            deadline = self.loop.time() + self.shutdown_seconds
            while self.in_flight and self.loop.time() < deadline:
                await asyncio.sleep(0.05)
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.close()
            await server.wait_closed()

    def shutdown(self) -> None:
        """Stop (from the loop's thread; :meth:`shutdown_threadsafe` from another)."""
        if self._stop is not None:
            self._stop.set()

    def shutdown_threadsafe(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.shutdown)

    async def _sweep(self) -> None:
        """Once a second: close connections idle past ``keep_alive_seconds``, and those whose request
        has been arriving for longer than ``request_seconds``."""
        while True:
            await asyncio.sleep(1.0)
            now = self.loop.time()
            for connection in list(self.connections):
                stale = (connection.idle() and now - connection.last_active > self.keep_alive_seconds) or (
                    connection.started is not None and now - connection.started > self.request_seconds)
                if stale and connection.transport is not None:
                    connection.transport.close()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed (as uvicorn picks it), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_oracle_server(server: OracleHttpServer) -> None:
    """Serve until SIGINT or SIGTERM, on a new event loop in this (the main) thread."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        loop = runner.get_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.shutdown)
        runner.run(server.serve())


class OracleServerThread:
    """An :class:`OracleHttpServer` on 127.0.0.1 in a background thread (tests, the demo)."""

    def __init__(self, app: OracleHttpApp, port: int = 0, **settings: Any) -> None:
        self.server = OracleHttpServer(app, "127.0.0.1", port, **settings)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def start(self, timeout: float = 20.0) -> OracleServerThread:
        ready = threading.Event()

        def run() -> None:
            try:
                with asyncio.Runner(loop_factory=new_event_loop) as runner:
                    runner.run(self.server.serve(ready))
            except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
                self._error = exc
                ready.set()

        self._thread = threading.Thread(target=run, name="govshare-oracle-http", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the oracle's HTTP server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        self.server.shutdown_threadsafe()
        if self._thread is not None:
            self._thread.join(timeout=self.server.shutdown_seconds + 5)
