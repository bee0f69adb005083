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

Both clients are faces of govshare's one HTTP client (``ledger.http_client``: kept-alive
connections, at most ``max_connections`` idle ones per dataset and face, TLS for ``https``; the
request written in one piece and the answer parsed by ``httptools``, so a query costs one ``send``
and usually one ``recv``). They reach the department API directly (no proxy variables: personal
data is not routed through a proxy someone set for other traffic), follow no redirects and retry
only one thing: a request on a kept-alive connection that the server had closed meanwhile
(nothing was read from it), on a fresh one. The blocking client is thread-safe; the asyncio client
keeps its connections on the loop that uses it (the oracle answers on one event loop: see
``oracle.service``); :meth:`DepartmentApi.close` closes both. JSON is parsed with ``orjson`` when installed,
else ``json`` (which is told to refuse ``NaN``/``Infinity``, as orjson does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any, Callable, Mapping
from urllib.parse import quote, quote_plus, urlencode

import httptools

from ledger.http_client import (
    AnswerTooLarge,
    AsyncKeepAlivePool,
    ConnectionCutShort,
    KeepAlivePool,
    Origin,
    ResponseReader,
)
from ledger.tls import client_tls_context
from oracle.config import DatasetConfig
from oracle.errors import (
    MalformedRequest,
    SourceBadResponse,
    SourceTimeout,
    SourceUnavailable,
)

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
        self._path = origin.path
        self._head = (f"Host: {origin.host_header}\r\nAccept: application/json\r\nAccept-Encoding: identity\r\n"
                      "User-Agent: govshare-oracle\r\n\r\n").encode("ascii")
        self._ssl = client_tls_context(config.ca_file, config.client_cert_file, config.client_key_file) if origin.tls else None
        self._pool = KeepAlivePool(origin, max_idle=config.max_connections, ssl_context=self._ssl)
        self._async_pool = AsyncKeepAlivePool(origin, max_idle=config.max_connections, ssl_context=self._ssl)
        self._closed = False

    def __enter__(self) -> DepartmentApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the object cannot fetch afterwards."""
        self._closed = True
        self._pool.close()
        self._async_pool.close()

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
        if self._closed:
            raise SourceUnavailable(f"{self._where}: the relay is closed")
        exchange = _Exchange(self.config.max_response_bytes, self._where)
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                await self._async_pool.exchange(request, exchange)
        except (OSError, httptools.HttpParserError) as exc:  # TimeoutError is an OSError
            raise self._failure(exc, query) from None
        return self._records(exchange.body())

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
