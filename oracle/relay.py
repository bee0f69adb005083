"""The oracle's client of the department's own HTTP API: one :class:`DepartmentApi` per dataset.

``DepartmentApi.fetch(params)`` sends ``GET base_url + path?params`` and returns the ``records`` of a
``{"records": [...]}`` answer, or raises one of the oracle's source errors:

* a parameter the dataset's config does not list -> ``MalformedRequest`` (nothing is sent);
* no answer within ``timeout_seconds`` -> ``SourceTimeout``. The timeout applies to the connect and
  to each read; the relay also checks the whole exchange against it after every chunk of the body,
  so a server dripping bytes is cut off too;
* connection refused, DNS failure, reset, protocol error -> ``SourceUnavailable``;
* HTTP status >= 400 -> ``SourceUnavailable`` naming the status (the body is not read); a redirect
  (not followed) or another non-2xx status -> ``SourceBadResponse``;
* a body over ``max_response_bytes`` (a ``Content-Length`` over it is refused before reading; without
  one, the body is counted as it streams and reading stops at the limit) -> ``SourceBadResponse``;
* a body with a ``Content-Encoding`` (the relay asks for ``identity``) -> ``SourceBadResponse``;
* a body that is not JSON, or not an object with a ``records`` list of objects -> ``SourceBadResponse``.

More than ``max_records`` records are truncated to the first ``max_records`` (a warning is logged
with the dataset and the counts): the department API answers in its own order and the oracle
serves a bounded page of it.

Error messages name the dataset and the URL without its query: parameter values may be personal
data and never appear in a message, a log line or a chained exception.

The HTTP/1.1 client is the relay's own: kept-alive sockets (at most ``max_connections`` idle ones
per dataset, TLS for ``https``), the request written in one piece and the answer parsed by
``httptools`` (llhttp, the parser uvicorn uses), so a query costs one ``send`` and usually one
``recv``. On the oracle's hot path httpx cost about 1.5 ms of CPU per call and urllib3 (through
``http.client``) about 0.5 ms; this client a small fraction of that. It reaches the department
API directly (no proxy variables: personal data is not routed through a proxy someone set for
other traffic), follows no redirects and retries only one thing: a request on a kept-alive
connection that the server had closed meanwhile (nothing was read from it), on a fresh one. It is
thread-safe; :meth:`DepartmentApi.close` closes it. JSON is parsed with ``orjson`` when installed,
else ``json`` (which is told to refuse ``NaN``/``Infinity``, as orjson does).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from typing import Any, Callable, Mapping
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import httptools

from oracle.config import DatasetConfig
from oracle.errors import MalformedRequest, SourceBadResponse, SourceTimeout, SourceUnavailable

__all__ = ["DepartmentApi", "JSON_BACKEND"]

log = logging.getLogger(__name__)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


try:  # orjson is optional: several times faster on large answers
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
    JSON_BACKEND = "orjson"
except ImportError:  # the standard library's parser

    def _loads(body: bytes) -> Any:
        return json.loads(body, parse_constant=_refuse_constant)

    _JSON_ERRORS = (ValueError, RecursionError)
    JSON_BACKEND = "json"


class _Exchange:
    """httptools callbacks for one response: status, the headers that matter, the body."""

    __slots__ = ("chunks", "done", "encoding", "headers_done", "keep_alive", "length", "limit", "parser", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.length: int | None = None
        self.encoding = b""
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self.keep_alive = self.headers_done = False
        self.parser = httptools.HttpResponseParser(self)

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
        # No raising in a parser callback (httptools would wrap it): the reader checks ``size``.
        self.size += len(body)
        if self.size <= self.limit:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _StaleConnection(Exception):
    """A kept-alive connection the server had closed before we wrote: retry once on a fresh one."""


class DepartmentApi:
    """The department API behind one dataset, with its own pool of kept-alive connections."""

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config
        self.url = config.url
        self._allowed = frozenset(config.params)
        self._fixed = dict(config.fixed_params)
        self._where = f"dataset {config.id} source {self.url}"
        parts = urlsplit(self.url)
        self._tls = parts.scheme == "https"
        self._address = (parts.hostname or "", parts.port or (443 if self._tls else 80))
        self._path = parts.path or "/"
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self._head = (f"Host: {host}\r\nAccept: application/json\r\nAccept-Encoding: identity\r\n"
                      "User-Agent: govshare-oracle\r\n\r\n").encode("ascii")
        self._ssl = ssl.create_default_context() if self._tls else None
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> DepartmentApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the object cannot fetch afterwards."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def check_params(self, params: Mapping[str, str]) -> None:
        """Refuse (``MalformedRequest``) a parameter the config does not list, or a value that is not
        a string. Messages name the parameter, never its value."""
        unknown = [name for name in params if name not in self._allowed]
        if unknown:
            raise MalformedRequest(
                f"dataset {self.config.id} does not accept the parameter(s) {', '.join(sorted(map(str, unknown)))} "
                f"(accepted: {', '.join(self.config.params)})"
            )
        for name, value in params.items():
            if not isinstance(value, str):
                raise MalformedRequest(f"parameter {name} of dataset {self.config.id} must be a string")

    def fetch(self, params: dict[str, str]) -> list[dict]:
        """The records the department API answers for ``params`` (at most ``max_records``)."""
        self.check_params(params)
        query = {**params, **self._fixed}
        target = f"{self._path}?{urlencode(query)}" if query else self._path
        request = b"GET " + target.encode("ascii") + b" HTTP/1.1\r\n" + self._head
        timeout = self.config.timeout_seconds
        deadline = time.monotonic() + timeout
        try:
            sock, reused = self._connection(timeout)
            try:
                exchange, keep = self._exchange(sock, request, deadline, reused)
            except _StaleConnection:
                sock.close()
                sock, _ = self._connection(timeout, fresh=True)
                exchange, keep = self._exchange(sock, request, deadline, False)
        except TimeoutError:
            raise SourceTimeout(f"{self._where} did not answer within {timeout} s") from None
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise SourceUnavailable(f"{self._where} unreachable: {type(exc).__name__}") from None
        except httptools.HttpParserError as exc:
            raise SourceUnavailable(f"{self._where} unreachable: ProtocolError ({type(exc).__name__})") from None
        except OSError as exc:  # reset, unreachable network, TLS failures...
            raise SourceUnavailable(f"{self._where} unreachable: {_describe(exc, query)}") from None
        if keep:
            self._release(sock)
        else:
            sock.close()
        return self._records(b"".join(exchange.chunks))

    def _connection(self, timeout: float, *, fresh: bool = False) -> tuple[socket.socket, bool]:
        if not fresh:
            with self._lock:
                if self._closed:
                    raise SourceUnavailable(f"{self._where}: the relay is closed")
                if self._idle:
                    sock = self._idle.pop()
                    sock.settimeout(timeout)
                    return sock, True
        sock = socket.create_connection(self._address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is not None:
            sock = self._ssl.wrap_socket(sock, server_hostname=self._address[0])
        return sock, False

    def _release(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.config.max_connections:
                self._idle.append(sock)
                return
        sock.close()

    def _exchange(self, sock: socket.socket, request: bytes, deadline: float, reused: bool) -> tuple[_Exchange, bool]:
        """Send ``request`` and read the whole answer; True with it if the connection can be kept."""
        exchange = _Exchange(self.config.max_response_bytes)
        parser = exchange.parser
        keep = False
        try:
            sock.sendall(request)
            received = checked = False
            while not exchange.done:
                try:
                    data = sock.recv(65_536)
                except (ConnectionResetError, BrokenPipeError):
                    if reused and not received:
                        raise _StaleConnection() from None
                    raise
                if not data:
                    if reused and not received:
                        raise _StaleConnection()
                    parser.feed_data(b"")  # lets a close-delimited body end; otherwise a protocol error
                    if not exchange.done:
                        raise SourceUnavailable(f"{self._where} unreachable: ProtocolError (the connection closed mid-answer)")
                    break
                received = True
                if time.monotonic() > deadline:
                    raise SourceTimeout(f"{self._where} did not finish answering within {self.config.timeout_seconds} s")
                parser.feed_data(data)
                if not checked:
                    checked = self._check_head(parser, exchange)
                if exchange.size > exchange.limit:
                    raise SourceBadResponse(f"{self._where} answered more than the limit of {exchange.limit} bytes")
            if not checked:
                self._check_head(parser, exchange)
            keep = exchange.keep_alive
            return exchange, keep
        finally:
            if not keep and exchange.done is False:
                sock.close()

    def _check_head(self, parser: httptools.HttpResponseParser, exchange: _Exchange) -> bool:
        """Judge the status and the headers as soon as they are in (before reading a large body);
        False while they are not complete yet."""
        if not exchange.headers_done:
            return False
        status = parser.get_status_code()
        if status >= 400:
            raise SourceUnavailable(f"{self._where} answered HTTP {status}")
        if not 200 <= status < 300:
            raise SourceBadResponse(f"{self._where} answered HTTP {status}, not a 2xx answer")
        limit = self.config.max_response_bytes
        if exchange.length is not None and exchange.length > limit:
            raise SourceBadResponse(f"{self._where} answered {exchange.length} bytes, more than the limit of {limit}")
        if exchange.encoding not in (b"", b"identity"):
            raise SourceBadResponse(f"{self._where} answered a body that cannot be decoded (it is encoded; identity was asked)")
        return True

    def _records(self, body: bytes) -> list[dict]:
        try:
            document = _loads(body)
        except _JSON_ERRORS:
            raise SourceBadResponse(f"{self._where} answered a body that is not JSON") from None
        records = document.get("records") if isinstance(document, dict) else None
        if not isinstance(records, list):
            raise SourceBadResponse(f'{self._where} answered JSON that is not an object with a "records" list')
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise SourceBadResponse(f"{self._where} answered record {index} that is not an object")
        maximum = self.config.max_records
        if len(records) > maximum:
            log.warning("%s answered %d records; serving the first %d", self._where, len(records), maximum)
            del records[maximum:]
        return records


def _describe(exc: Exception, query: Mapping[str, str]) -> str:
    """``exc`` for a message: its type, and its text unless the text might hold a parameter value."""
    text = str(exc)
    forms = [form for value in query.values() if value for form in (value, quote(value), quote_plus(value))]
    if not text or any(form in text for form in forms):
        return type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"
