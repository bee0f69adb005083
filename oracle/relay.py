"""The oracle's client of the department's own HTTP API: one :class:`DepartmentApi` per dataset.

``DepartmentApi.fetch(params)`` sends ``GET base_url + path?params`` and returns the ``records`` of a
``{"records": [...]}`` answer, or raises one of the oracle's source errors:

* a parameter the dataset's config does not list -> ``MalformedRequest`` (nothing is sent);
* no answer within ``timeout_seconds`` -> ``SourceTimeout``. urllib3 applies the timeout to the
  connect and to each read; the relay also checks the whole exchange against it after every chunk
  of the body, so a server dripping bytes is cut off too;
* connection refused, DNS failure, reset, protocol error -> ``SourceUnavailable``;
* HTTP status >= 400 -> ``SourceUnavailable`` naming the status (the body is not read); a redirect
  (not followed) or another non-2xx status -> ``SourceBadResponse``;
* a body over ``max_response_bytes`` (a ``Content-Length`` over it is refused before reading; without
  one, the body is streamed and reading stops at the limit; the limit counts decoded bytes) -> 
  ``SourceBadResponse``;
* a body that is not JSON, or not an object with a ``records`` list of objects -> ``SourceBadResponse``.

More than ``max_records`` records are truncated to the first ``max_records`` (a warning is logged
with the dataset and the counts): the department API answers in its own order and the oracle
serves a bounded page of it.

Error messages name the dataset and the URL without its query: parameter values may be personal
data and never appear in a message, a log line or a chained exception.

The connection pool (urllib3: HTTP/1.1, keep-alive, ``max_connections``) is created once per
dataset; it ignores proxy environment variables (the department API is reached directly, personal
data is not routed through a proxy someone set for other traffic), follows no redirects and never
retries. It is thread-safe; :meth:`DepartmentApi.close` closes it. urllib3 rather than httpx: on the
oracle's hot path httpx cost about 1.5 ms of CPU per call, urllib3 a fraction of that. JSON is parsed with ``orjson`` when installed, else ``json``
(which is told to refuse ``NaN``/``Infinity``, as orjson does).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Mapping
from urllib.parse import quote, quote_plus, urlencode

import urllib3

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


class DepartmentApi:
    """The department API behind one dataset, with its own pooled HTTP client."""

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config
        self.url = config.url
        self._allowed = frozenset(config.params)
        self._fixed = dict(config.fixed_params)
        self._where = f"dataset {config.id} source {self.url}"
        self._timeout = urllib3.Timeout(connect=config.timeout_seconds, read=config.timeout_seconds)
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=config.max_connections,
            block=False,
            retries=False,
            timeout=self._timeout,
            headers={"Accept": "application/json", "Accept-Encoding": "identity", "User-Agent": "govshare-oracle"},
        )

    def __enter__(self) -> DepartmentApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the object cannot fetch afterwards."""
        self._pool.clear()

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
        target = f"{self.url}?{urlencode(query)}" if query else self.url
        limit = self.config.max_response_bytes
        deadline = time.monotonic() + self.config.timeout_seconds
        response = None
        complete = False
        try:
            response = self._pool.request("GET", target, preload_content=False, redirect=False, retries=False)
            status = response.status
            if status >= 400:
                raise SourceUnavailable(f"{self._where} answered HTTP {status}")
            if not 200 <= status < 300:
                raise SourceBadResponse(f"{self._where} answered HTTP {status}, not a 2xx answer")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise SourceBadResponse(f"{self._where} answered {int(declared)} bytes, more than the limit of {limit}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.stream(65_536, decode_content=True):
                size += len(chunk)
                if size > limit:
                    raise SourceBadResponse(f"{self._where} answered more than the limit of {limit} bytes")
                if time.monotonic() > deadline:
                    raise SourceTimeout(f"{self._where} did not finish answering within {self.config.timeout_seconds} s")
                chunks.append(chunk)
            complete = True
        except urllib3.exceptions.NewConnectionError as exc:  # refused (urllib3 files it under timeouts too)
            raise SourceUnavailable(f"{self._where} unreachable: {_describe(exc, query)}") from None
        except urllib3.exceptions.TimeoutError as exc:
            raise SourceTimeout(
                f"{self._where} did not answer within {self.config.timeout_seconds} s ({type(exc).__name__})"
            ) from None
        except urllib3.exceptions.DecodeError:
            raise SourceBadResponse(f"{self._where} answered a body that cannot be decoded") from None
        except urllib3.exceptions.HTTPError as exc:  # refused, reset, protocol errors...
            raise SourceUnavailable(f"{self._where} unreachable: {_describe(exc, query)}") from None
        finally:
            if response is not None:
                if complete:
                    response.release_conn()  # fully read: the connection goes back to the pool
                else:
                    response.close()  # unread body or a broken exchange: never reuse the connection
        return self._records(b"".join(chunks))

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
