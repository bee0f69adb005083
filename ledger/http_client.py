"""govshare's one HTTP/1.1 client, for every outbound call: the chain's JSON-RPC (``ledger.rpc``,
which web3 uses too), the oracle's relay to department APIs (``oracle.relay``) and a requester's
calls to a provider's oracle (``requester.client``).

* :class:`ResponseReader` parses one response with ``httptools`` (llhttp, the parser uvicorn uses)
  from whatever bytes arrive, counts the body against a limit as it streams, and calls
  :meth:`ResponseReader.check_head` once the status line and headers are in (subclasses refuse
  there, before a large body is read);
* :class:`KeepAlivePool` keeps idle sockets to one origin (TLS for ``https``) and runs one blocking
  exchange: the request written in one piece, the answer read until it is whole;
  :class:`AsyncKeepAlivePool` does the same on an asyncio event loop. A request on a kept-alive
  connection that the server had closed meanwhile (nothing came back) is sent once more on a fresh
  one; nothing else is retried;
* :class:`HttpClient` is the plain face for a caller that is not on a hot path: ``request(method,
  path, body, headers)`` → :class:`HttpAnswer`, transport failures raised as :class:`HttpUnreachable`.

Why a client of our own rather than a maintained one: an exchange here costs one ``send``, usually
one ``recv`` and a little parsing, where httpx cost about 1.5 ms of CPU per call on the oracle's hot
path and urllib3 (through ``http.client`` and ``email.feedparser``) about 0.5 ms, against about
0.4 ms of CPU for a whole audited query (``bench/README.md``, "HTTP clients", measured side by side
by ``scripts/bench/http_clients.py``). Socket errors of the pools are the caller's to map
(``OSError``, ``TimeoutError`` among them, and ``httptools.HttpParserError`` for bytes that are not
HTTP).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from ledger.errors import LedgerError

__all__ = [
    "AnswerTooLarge",
    "AsyncKeepAlivePool",
    "ConnectionCutShort",
    "HttpAnswer",
    "HttpClient",
    "HttpTimeout",
    "HttpUnreachable",
    "KeepAlivePool",
    "Origin",
    "ResponseReader",
]


class AnswerTooLarge(Exception):
    """The body is longer than the reader's limit (``size`` bytes seen so far, or announced)."""

    def __init__(self, size: int, limit: int, announced: bool) -> None:
        super().__init__(f"{size} bytes, more than the limit of {limit}")
        self.size, self.limit, self.announced = size, limit, announced


class ConnectionCutShort(ConnectionError):
    """The server closed the connection before the answer was whole."""


class ResponseReader:
    """One HTTP/1.1 response as it arrives. ``feed`` the bytes received, then ``end_of_stream`` if
    the server closes; ``done`` once the message is whole. Override :meth:`check_head` to judge the
    status and headers (it is called once, as soon as they are complete)."""

    __slots__ = ("checked", "chunks", "done", "encoding", "headers_done", "keep_alive", "length", "limit", "parser",
                 "received", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.length: int | None = None
        self.encoding = b""
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self.keep_alive = self.headers_done = self.checked = self.received = False
        self.parser = httptools.HttpResponseParser(self)

    # httptools callbacks (no raising in them: httptools would wrap the error; ``feed`` checks after)

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()  # reset once the message completes
        self.headers_done = True

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" and value.isdigit():
            self.length = int(value)
        elif name == b"content-encoding":
            self.encoding = value.strip().lower()

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= self.limit:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True

    # what the clients call

    @property
    def status(self) -> int:
        return self.parser.get_status_code()

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the answer; raises as soon as the answer is certain to be refused."""
        self.received = True
        self.parser.feed_data(data)
        if not self.checked and self.headers_done:
            self.checked = True
            self.check_head()
            if self.length is not None and self.length > self.limit:
                raise AnswerTooLarge(self.length, self.limit, announced=True)
        if self.size > self.limit:
            raise AnswerTooLarge(self.size, self.limit, announced=False)

    def end_of_stream(self) -> None:
        """The server closed the connection: that ends a close-delimited body, or cuts an answer short."""
        self.parser.feed_data(b"")  # lets a close-delimited body end; otherwise a protocol error
        if not self.done:
            raise ConnectionCutShort("the connection closed mid-answer")
        if not self.checked:
            self.checked = True
            self.check_head()

    def check_head(self) -> None:
        """Judge the status line and headers (``status``, ``length``, ``encoding``); raise to refuse."""

    def body(self) -> bytes:
        return b"".join(self.chunks)


class _Stale(Exception):
    """A kept-alive socket the server had closed before we wrote: send again on a fresh one."""


class Origin:
    """Where requests go: scheme, host, port, and the ``Host`` header to send."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.path = parts.path or "/"
        self.query = parts.query
        self.username, self.password = parts.username, parts.password


class KeepAlivePool:
    """Blocking exchanges with one origin over kept-alive sockets (at most ``max_idle`` idle ones);
    thread-safe. ``timeout`` bounds the connect and each read; :meth:`exchange`'s ``deadline`` the
    whole exchange. An https origin is reached with ``ssl_context`` (default: the system's trust)."""

    def __init__(self, origin: Origin, *, max_idle: int = 8, ssl_context: ssl.SSLContext | None = None) -> None:
        self.origin = origin
        self.max_idle = max_idle
        self._ssl = (ssl_context or ssl.create_default_context()) if origin.tls else None
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def exchange(self, request: bytes, reader: ResponseReader, *, timeout: float, deadline: float | None = None,
                 on_late: type[Exception] = TimeoutError) -> ResponseReader:
        """Send ``request`` (complete bytes) and feed the answer to ``reader`` until it is whole.
        Past ``deadline`` (``time.monotonic()``) while reading, ``on_late`` is raised."""
        sock, reused = self._connection(timeout)
        try:
            return self._exchange(sock, request, reader, deadline, reused, on_late)
        except _Stale:
            sock, _ = self._connection(timeout, fresh=True)
            return self._exchange(sock, request, reader, deadline, False, on_late)

    def _connection(self, timeout: float, *, fresh: bool = False) -> tuple[socket.socket, bool]:
        with self._lock:
            if self._closed:
                raise ConnectionAbortedError("the connection pool is closed")
            if not fresh and self._idle:
                sock = self._idle.pop()
                sock.settimeout(timeout)
                return sock, True
        sock = socket.create_connection((self.origin.host, self.origin.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is not None:
            sock = self._ssl.wrap_socket(sock, server_hostname=self.origin.host)
        return sock, False

    def _exchange(self, sock: socket.socket, request: bytes, reader: ResponseReader, deadline: float | None,
                  reused: bool, on_late: type[Exception]) -> ResponseReader:
        kept = False
        try:
            try:
                sock.sendall(request)
            except (ConnectionResetError, BrokenPipeError):
                if reused:
                    raise _Stale() from None
                raise
            while not reader.done:
                try:
                    data = sock.recv(65_536)
                except (ConnectionResetError, BrokenPipeError):
                    if reused and not reader.received:
                        raise _Stale() from None
                    raise
                if not data:
                    if reused and not reader.received:
                        raise _Stale()
                    reader.end_of_stream()
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise on_late("the answer did not finish in time")
                reader.feed(data)
            if reader.keep_alive:
                kept = self._release(sock)
            return reader
        finally:
            if not kept:
                sock.close()

    def _release(self, sock: socket.socket) -> bool:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(sock)
                return True
        return False


# ------------------------------------------------------------------------------ the asyncio face


class _AsyncConnection(asyncio.Protocol):
    """One kept-alive connection of :class:`AsyncKeepAlivePool`: an exchange at a time, its bytes
    fed to the :class:`ResponseReader` as they arrive and the waiting request woken when the answer
    is whole (or when the reader refuses it)."""

    transport: asyncio.Transport  # set by the loop (connection_made) before the connection is handed out

    def __init__(self) -> None:
        self.closed = False
        self._reader: ResponseReader | None = None
        self._waiter: asyncio.Future[ResponseReader] | None = None
        self._reused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader, waiter = self._reader, self._waiter
        if reader is None or waiter is None or waiter.done():  # bytes nobody asked for: unusable now
            self.close()
            return
        try:
            reader.feed(data)
        except Exception as exc:  # the reader's refusal, or bytes that are not HTTP: the answer is over
            self._finish(exc)
            self.close()
            return
        if reader.done:
            self._finish(None)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reader, waiter = self._reader, self._waiter
        if reader is None or waiter is None or waiter.done():
            return
        if self._reused and not reader.received:
            self._finish(_Stale())
        elif exc is not None:
            self._finish(exc)
        else:
            try:
                reader.end_of_stream()
            except Exception as error:  # cut short, or refused by the reader
                self._finish(error)
                return
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        reader, waiter = self._reader, self._waiter
        self._reader = self._waiter = None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(reader)  # type: ignore[arg-type]
            else:
                waiter.set_exception(error)

    async def exchange(self, request: bytes, reader: ResponseReader, reused: bool) -> ResponseReader:
        """Send ``request`` and wait for the whole answer (the caller bounds the wait)."""
        self._reader, self._reused = reader, reused
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        self.transport.close()


class AsyncKeepAlivePool:
    """:class:`KeepAlivePool` on an asyncio event loop: at most ``max_idle`` idle connections to one
    origin, kept on the loop that uses them (a pool used from another loop starts afresh). The
    caller bounds an exchange's time (``asyncio.timeout``); an exchange that does not finish leaves
    its connection closed. :meth:`close` may be called from any thread."""

    def __init__(self, origin: Origin, *, max_idle: int = 8, ssl_context: ssl.SSLContext | None = None) -> None:
        self.origin = origin
        self.max_idle = max_idle
        self._ssl = (ssl_context or ssl.create_default_context()) if origin.tls else None
        self._idle: list[_AsyncConnection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        loop = self._loop
        for connection in idle:
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(connection.close)

    async def exchange(self, request: bytes, reader: ResponseReader) -> ResponseReader:
        """Send ``request`` (complete bytes) and feed the answer to ``reader`` until it is whole."""
        connection, reused = await self._connection()
        try:
            reader = await self._exchange(connection, request, reader, reused)
        except _Stale:
            connection, _ = await self._connection(fresh=True)
            reader = await self._exchange(connection, request, reader, False)
        if reader.keep_alive and not connection.closed:
            self._release(connection)
        else:
            connection.close()
        return reader

    async def _connection(self, *, fresh: bool = False) -> tuple[_AsyncConnection, bool]:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise ConnectionAbortedError("the connection pool is closed")
            if self._loop is not loop:  # connections belong to one loop: a new loop starts afresh
                old_loop, stale = self._loop, self._idle
                self._idle, self._loop = [], loop
                if old_loop is not None and not old_loop.is_closed():
                    for connection in stale:
                        old_loop.call_soon_threadsafe(connection.close)
            while not fresh and self._idle:
                connection = self._idle.pop()
                if not connection.closed:
                    return connection, True
        host, port = self.origin.host, self.origin.port
        _, connection = await loop.create_connection(
            _AsyncConnection, host, port, ssl=self._ssl, server_hostname=host if self._ssl else None)
        return connection, False

    @staticmethod
    async def _exchange(connection: _AsyncConnection, request: bytes, reader: ResponseReader, reused: bool) -> ResponseReader:
        finished = False
        try:
            reader = await connection.exchange(request, reader, reused)
            finished = True
            return reader
        finally:
            if not finished:  # refused, cut off or timed out mid-answer: the connection's state is unknown
                connection.close()

    def _release(self, connection: _AsyncConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(connection)
                return
        connection.close()


# ------------------------------------------------------------------------------ the plain face


class HttpUnreachable(LedgerError, ConnectionError):
    """The server could not be reached, closed the connection mid-answer, answered something that
    is not HTTP, or answered more than the client's limit."""


class HttpTimeout(HttpUnreachable, TimeoutError):
    """The server did not answer in time."""


@dataclass(frozen=True)
class HttpAnswer:
    """A whole answer: the status, the headers (lower-case names), the body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _HeaderKeepingReader(ResponseReader):
    __slots__ = ("header_values",)

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.header_values: dict[str, str] = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.header_values[name.decode("latin-1").lower()] = value.decode("latin-1")


class HttpClient:
    """Blocking requests to one origin (``base_url``; its path prefixes every request's) over
    kept-alive connections, thread-safe: for callers off the hot paths (a requester, a CLI). No
    proxies, no redirects followed, answers bounded by ``max_answer_bytes``, every exchange bounded
    by ``timeout`` seconds. An https origin is verified against ``ssl_context`` (default: the
    system's trust)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, max_answer_bytes: int = 64 << 20,
                 ssl_context: ssl.SSLContext | None = None, user_agent: str = "govshare") -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = Origin(self.base_url)
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self._prefix = self.origin.path.rstrip("/")
        self._head = f"Host: {self.origin.host_header}\r\nUser-Agent: {user_agent}\r\nAccept-Encoding: identity\r\n"
        self._pool = KeepAlivePool(self.origin, max_idle=4, ssl_context=ssl_context)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> HttpAnswer:
        """``method`` ``base_url + path`` with ``body`` (sent with a Content-Length) and ``headers``;
        the whole answer, whatever its status. :class:`HttpTimeout` past the timeout,
        :class:`HttpUnreachable` for every other transport failure."""
        lines = [f"{method} {self._prefix}{path} HTTP/1.1\r\n", self._head]
        lines += [f"{name}: {value}\r\n" for name, value in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        request = "".join(lines).encode("latin-1") + b"\r\n" + (body or b"")
        reader = _HeaderKeepingReader(self.max_answer_bytes)
        try:
            self._pool.exchange(request, reader, timeout=self.timeout, deadline=time.monotonic() + self.timeout)
        except TimeoutError as exc:
            raise HttpTimeout(f"{self.base_url} did not answer within {self.timeout:g} s") from exc
        except (OSError, httptools.HttpParserError, AnswerTooLarge) as exc:
            raise HttpUnreachable(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from exc
        return HttpAnswer(reader.status, reader.header_values, reader.body())

