"""A small HTTP/1.1 client core for the hot paths: the chain's JSON-RPC (``ledger.chain``) and the
oracle's relay to department APIs (``oracle.relay``).

* :class:`ResponseReader` parses one response with ``httptools`` (llhttp, the parser uvicorn uses)
  from whatever bytes arrive, counts the body against a limit as it streams, and calls
  :meth:`ResponseReader.check_head` once the status line and headers are in (subclasses refuse
  there, before a large body is read);
* :class:`KeepAlivePool` keeps idle sockets to one origin (TLS for ``https``) and runs one blocking
  exchange: the request written in one piece, the answer read until it is whole. A request on a
  kept-alive socket that the server had closed meanwhile (nothing came back) is sent once more on
  a fresh one; nothing else is retried.

urllib3 (through ``http.client`` and ``email.feedparser``) cost about 0.5 ms of CPU per call on the
oracle's hot path, httpx about 1.5 ms; an exchange here costs one ``send``, usually one ``recv`` and
a small fraction of that. Socket errors are the caller's to map (``OSError``, ``TimeoutError`` among
them, and ``httptools.HttpParserError`` for bytes that are not HTTP).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httptools

__all__ = ["AnswerTooLarge", "ConnectionCutShort", "KeepAlivePool", "Origin", "ResponseReader"]


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


def client_tls_context(ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    """A TLS client context that verifies the server's certificate and name: against ``ca_file``
    (PEM; a department's internal CA) instead of the system's trust when given, presenting
    ``cert_file``/``key_file`` (PEM, the key unencrypted) to a server that asks for a client
    certificate. Raises ``ssl.SSLError`` (or ``OSError``) for a file that does not load."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    if cert_file is not None:
        # An encrypted key is refused (SSLError), never prompted for on a terminal by OpenSSL.
        context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None, password=lambda: b"")
    return context


def check_ca_file(path: Path) -> None:
    """Refuse, with a ``ValueError`` saying why, a CA file that is missing or does not load as PEM
    certificates (settings check theirs at start; OpenSSL's messages never quote a file's content)."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        client_tls_context(path)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"cannot be loaded as PEM certificates ({type(exc).__name__}: {exc})") from None


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
