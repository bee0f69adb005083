"""The oracle's client of the department's own HTTP API: one :class:`DepartmentApi` per dataset.

``DepartmentApi.fetch(params)`` (blocking, any thread) and ``await DepartmentApi.fetch_async(params)``
(on the oracle's event loop) send ``GET base_url + path?params`` and return the ``records`` of a
``{"records": [...]}`` answer, or raise one of the oracle's source errors; both parse, judge and
refuse the answer with the same code (``_Exchange``), so they fail alike:

* a parameter the dataset's config does not list -> ``MalformedRequest`` (nothing is sent);
* no answer within ``timeout_seconds`` -> ``SourceTimeout``. For ``fetch`` the timeout applies to the
  connect and to each read, and the whole exchange is checked against it after every chunk of the
  body, so a server dripping bytes is cut off too; for ``fetch_async`` it bounds the whole exchange;
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

The HTTP/1.1 clients are the relay's own: kept-alive connections (at most ``max_connections`` idle
ones per dataset and client, TLS for ``https``), the request written in one piece and the answer
parsed by ``httptools`` (llhttp, the parser uvicorn uses) through ``ledger.http_client`` (which the chain's
JSON-RPC also uses), so a query costs one ``send`` and usually one ``recv``. On the oracle's hot path
httpx cost about 1.5 ms of CPU per call and urllib3 (through ``http.client``) about 0.5 ms; these a
small fraction of that. They reach the department API directly (no proxy variables: personal data
is not routed through a proxy someone set for other traffic), follow no redirects and retry only one
thing: a request on a kept-alive connection that the server had closed meanwhile (nothing was read
from it), on a fresh one. The blocking client is thread-safe; the asyncio client keeps its
connections on the loop that uses it (the oracle answers on one event loop: see ``oracle.service``);
:meth:`DepartmentApi.close` closes both. JSON is parsed with ``orjson`` when installed,
else ``json`` (which is told to refuse ``NaN``/``Infinity``, as orjson does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from typing import Any, Callable, Mapping
from urllib.parse import quote, quote_plus, urlencode

import httptools

from ledger.http_client import AnswerTooLarge, ConnectionCutShort, KeepAlivePool, Origin, ResponseReader, client_tls_context
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


class _Exchange(ResponseReader):
    """One answer of the department API: the status and headers judged as soon as they are in
    (before a large body is read), the body counted against the limit as it streams; every refusal
    is a source error naming the dataset and the URL (never a parameter value). Both clients feed it."""

    __slots__ = ("where",)

    def __init__(self, limit: int, where: str) -> None:
        super().__init__(limit)
        self.where = where

    def feed(self, data: bytes) -> None:
        try:
            super().feed(data)
        except AnswerTooLarge as exc:
            if exc.announced:
                raise SourceBadResponse(f"{self.where} answered {exc.size} bytes, more than the limit of {exc.limit}") from None
            raise SourceBadResponse(f"{self.where} answered more than the limit of {exc.limit} bytes") from None

    def end_of_stream(self) -> None:
        try:
            super().end_of_stream()
        except ConnectionCutShort:
            raise SourceUnavailable(f"{self.where} unreachable: ProtocolError (the connection closed mid-answer)") from None

    def check_head(self) -> None:
        status = self.status
        if status >= 400:
            raise SourceUnavailable(f"{self.where} answered HTTP {status}")
        if not 200 <= status < 300:
            raise SourceBadResponse(f"{self.where} answered HTTP {status}, not a 2xx answer")
        if self.encoding not in (b"", b"identity"):
            raise SourceBadResponse(f"{self.where} answered a body that cannot be decoded (it is encoded; identity was asked)")


class _StaleConnection(Exception):
    """A kept-alive connection the server had closed before we wrote: retry once on a fresh one."""


class _AsyncConnection(asyncio.Protocol):
    """One kept-alive connection of the asyncio client: an exchange at a time, its bytes fed to the
    :class:`_Exchange` as they arrive and the waiting request woken when the answer is whole."""

    transport: asyncio.Transport  # set by the loop (connection_made) before the connection is handed out

    def __init__(self) -> None:
        self.closed = False
        self._exchange: _Exchange | None = None
        self._waiter: asyncio.Future[_Exchange] | None = None
        self._reused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange, waiter = self._exchange, self._waiter
        if exchange is None or waiter is None or waiter.done():  # bytes nobody asked for: unusable now
            self.close()
            return
        try:
            exchange.feed(data)
        except (SourceUnavailable, httptools.HttpParserError) as exc:
            self._finish(exc)
            self.close()
            return
        if exchange.done:
            self._finish(None)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange, waiter = self._exchange, self._waiter
        if exchange is None or waiter is None or waiter.done():
            return
        if self._reused and not exchange.received:
            self._finish(_StaleConnection())
        elif exc is not None:
            self._finish(exc)
        else:
            try:
                exchange.end_of_stream()
            except (SourceUnavailable, httptools.HttpParserError) as error:
                self._finish(error)
                return
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        exchange, waiter = self._exchange, self._waiter
        self._exchange = self._waiter = None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(exchange)  # type: ignore[arg-type]
            else:
                waiter.set_exception(error)

    async def exchange(self, request: bytes, exchange: _Exchange, reused: bool) -> _Exchange:
        """Send ``request`` and wait for the whole answer (the caller bounds the wait)."""
        self._exchange, self._reused = exchange, reused
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        self.transport.close()


class DepartmentApi:
    """The department API behind one dataset, with its own pools of kept-alive connections: one for
    the blocking client (:meth:`fetch`, any thread) and one for the asyncio client
    (:meth:`fetch_async`, on the event loop that first used it)."""

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config
        self.url = config.url
        self._allowed = frozenset(config.params)
        self._fixed = dict(config.fixed_params)
        self._where = f"dataset {config.id} source {self.url}"
        origin = Origin(self.url)
        self._address = (origin.host, origin.port)
        self._path = origin.path
        self._head = (f"Host: {origin.host_header}\r\nAccept: application/json\r\nAccept-Encoding: identity\r\n"
                      "User-Agent: govshare-oracle\r\n\r\n").encode("ascii")
        self._ssl = client_tls_context(config.ca_file, config.client_cert_file, config.client_key_file) if origin.tls else None
        self._pool = KeepAlivePool(origin, max_idle=config.max_connections, ssl_context=self._ssl)
        self._async_idle: list[_AsyncConnection] = []
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> DepartmentApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the object cannot fetch afterwards."""
        self._pool.close()
        with self._lock:
            self._closed = True
            async_idle, self._async_idle = self._async_idle, []
        for connection in async_idle:
            loop = self._async_loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(connection.close)

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

    def _request(self, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        self.check_params(params)
        query = {**params, **self._fixed}
        target = f"{self._path}?{urlencode(query)}" if query else self._path
        return b"GET " + target.encode("ascii") + b" HTTP/1.1\r\n" + self._head, query

    def _failure(self, exc: Exception, query: Mapping[str, str]) -> SourceUnavailable:
        """The source error for what went wrong at the socket or HTTP level (never naming a parameter value)."""
        if isinstance(exc, TimeoutError):
            return SourceTimeout(f"{self._where} did not answer within {self.config.timeout_seconds} s")
        if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
            return SourceUnavailable(f"{self._where} unreachable: {type(exc).__name__}")
        if isinstance(exc, httptools.HttpParserError):
            return SourceUnavailable(f"{self._where} unreachable: ProtocolError ({type(exc).__name__})")
        return SourceUnavailable(f"{self._where} unreachable: {_describe(exc, query)}")  # reset, TLS failures...

    # ---------------------------------------------------------------- the blocking client

    def fetch(self, params: dict[str, str]) -> list[dict]:
        """The records the department API answers for ``params`` (at most ``max_records``)."""
        request, query = self._request(params)
        timeout = self.config.timeout_seconds
        if self._closed:
            raise SourceUnavailable(f"{self._where}: the relay is closed")
        exchange = _Exchange(self.config.max_response_bytes, self._where)
        try:
            self._pool.exchange(request, exchange, timeout=timeout, deadline=time.monotonic() + timeout)
        except (OSError, httptools.HttpParserError) as exc:  # TimeoutError is an OSError
            raise self._failure(exc, query) from None
        return self._records(exchange.body())

    # ---------------------------------------------------------------- the asyncio client

    async def fetch_async(self, params: dict[str, str]) -> list[dict]:
        """:meth:`fetch` on the running event loop: the same request, limits and errors, with
        ``timeout_seconds`` bounding the whole exchange (connect included)."""
        request, query = self._request(params)
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                connection, reused = await self._async_connection()
                try:
                    exchange = await self._async_exchange(connection, request, reused)
                except _StaleConnection:
                    connection, _ = await self._async_connection(fresh=True)
                    exchange = await self._async_exchange(connection, request, False)
        except (OSError, httptools.HttpParserError) as exc:  # TimeoutError is an OSError
            raise self._failure(exc, query) from None
        if exchange.keep_alive and not connection.closed:
            self._async_release(connection)
        else:
            connection.close()
        return self._records(exchange.body())

    async def _async_connection(self, *, fresh: bool = False) -> tuple[_AsyncConnection, bool]:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise SourceUnavailable(f"{self._where}: the relay is closed")
            if self._async_loop is not loop:  # connections belong to one loop: a new loop starts afresh
                old_loop, stale = self._async_loop, self._async_idle
                self._async_idle, self._async_loop = [], loop
                if old_loop is not None and not old_loop.is_closed():
                    for connection in stale:
                        old_loop.call_soon_threadsafe(connection.close)
            while not fresh and self._async_idle:
                connection = self._async_idle.pop()
                if not connection.closed:
                    return connection, True
        host, port = self._address
        _, connection = await loop.create_connection(
            _AsyncConnection, host, port, ssl=self._ssl, server_hostname=host if self._ssl else None)
        return connection, False

    async def _async_exchange(self, connection: _AsyncConnection, request: bytes, reused: bool) -> _Exchange:
        finished = False
        try:
            exchange = await connection.exchange(request, _Exchange(self.config.max_response_bytes, self._where), reused)
            finished = True
            return exchange
        finally:
            if not finished:  # refused, cut off or timed out mid-answer: the connection's state is unknown
                connection.close()

    def _async_release(self, connection: _AsyncConnection) -> None:
        with self._lock:
            if not self._closed and len(self._async_idle) < self.config.max_connections:
                self._async_idle.append(connection)
                return
        connection.close()

    # ---------------------------------------------------------------- the answer

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
