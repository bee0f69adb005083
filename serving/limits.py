"""The limits a govshare HTTP service keeps toward clients, on top of uvicorn's HTTP/1.1 protocol.

uvicorn (with httptools) owns the protocol: parsing, keep-alive, pipelined requests answered in
order (a connection with a request waiting stops being read), ``Expect: 100-continue``, ``HEAD``,
back-pressure, graceful shutdown. What it does not bound, and a service facing other departments
must, is added here by :class:`LimitedHttpToolsProtocol`, a subclass that overrides only parser
callbacks and the refusal path:

* a request head (request line and headers) over ``max_head_bytes`` is refused with 431: counted
  exactly from the parser's callbacks, and, because httptools holds a header value whole before
  it calls back, also from the raw bytes fed while a head is awaited (fed in slices of
  :data:`HEAD_SLICE` bytes then), so that a connection never holds more than ``max_head_bytes`` +
  one slice of an unfinished head;
* a request with more than ``max_headers`` header fields is refused with 431 too;
* a connection beyond ``max_connections`` open at once is answered 503 (``Retry-After``) and closed
  as soon as it is accepted, before anything is read from it;
* bytes that are not HTTP get 400; all as RFC 9457 problems, then the connection closes. Requests
  that came before on the same connection (pipelined) are answered first, the last of them with
  ``Connection: close``;
* a connection that sends nothing for ``keep_alive_seconds`` after it opened (or after its last
  answer: uvicorn's own keep-alive timeout, set to the same value) is closed, and so is one that has
  not delivered a whole request ``request_seconds`` after the request began (slowloris);
* an ``Upgrade`` (websocket, h2c) is not spoken: the request is answered with ``Connection: close``
  and the connection closed (the bytes after it are never parsed as HTTP);
* a client that half-closes its side after sending requests gets their answers, then the close.

A request body's size is the application's to bound (it knows its own limit: the oracle answers 413
with ``Connection: close`` before reading an oversized body).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HEAD_SLICE", "LimitedHttpToolsProtocol", "ServeLimits", "problem_bytes"]

#: Bytes fed to the parser at a time while a request head is awaited.
HEAD_SLICE = 4096


@dataclass(frozen=True)
class ServeLimits:
    """What a service bounds per connection (seconds and bytes)."""

    max_head_bytes: int = 16_384
    max_headers: int = 100
    max_connections: int = 512
    keep_alive_seconds: float = 5.0
    request_seconds: float = 30.0
    shutdown_seconds: float = 30.0


class _HeadTooLarge(Exception):
    """Raised inside a parser callback; httptools wraps it, :meth:`LimitedHttpToolsProtocol.data_received` tells it apart."""


def problem_bytes(status: int, reason: bytes, title: str, detail: str, extra_headers: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer carrying an RFC 9457 problem, closing the connection (``extra_headers``:
    whole header lines, each ending in CRLF)."""
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\ncontent-length: %d\r\n"
            b"%sconnection: close\r\n\r\n" % (status, reason, len(body), extra_headers)) + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with govshare's limits (see the module docstring). The limits
    come from ``config.govshare_limits`` (a :class:`ServeLimits`; set by :mod:`serving.server`)."""

    def __init__(self, config, server_state, app_state, _loop=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ServeLimits = getattr(config, "govshare_limits", ServeLimits())
        self._head_bytes = 0  # counted by the parser's callbacks
        self._header_count = 0
        self._head_raw = 0  # bytes fed since the last message completed, while a head is awaited
        self._awaiting_head = True
        self._head_too_large = False
        self._request_timer: asyncio.TimerHandle | None = None  # set while a request is arriving

    # -------------------------------------------------------------- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._cancel_keep_alive()
            transport.write(problem_bytes(503, b"Service Unavailable", "too many connections",
                                          f"this service keeps at most {self.limits.max_connections} connections open; "
                                          "try again shortly", b"retry-after: 1\r\n"))
            transport.close()
            return
        # A connection that never sends a byte is closed like an idle kept-alive one.
        self.timeout_keep_alive_task = self.loop.call_later(self.limits.keep_alive_seconds, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_request_timer()
        super().connection_lost(exc)

    def eof_received(self) -> bool:
        """The client sent everything it will send (a half-close): answer the requests it sent, the
        last with ``Connection: close``, then close (uvicorn would close at once, answers lost)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete or cycle.more_body:
            return False  # nothing to answer, or a request cut short: close now
        cycle.keep_alive = False
        return True

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade:
            self._refuse_upgrade()
        except httptools.HttpParserError:
            if self._header_count > self.limits.max_headers:
                self._refuse(431, b"Request Header Fields Too Large", "too many header fields",
                             f"a request has at most {self.limits.max_headers} header fields")
            elif self._head_too_large:
                self._refuse(431, b"Request Header Fields Too Large", "request head too large",
                             f"a request's line and headers are at most {self.limits.max_head_bytes} bytes")
            else:
                self._refuse(400, b"Bad Request", "malformed request", "the request is not valid HTTP/1.1")

    def _feed(self, data: bytes) -> None:
        """Feed ``data`` to the parser; while a head is awaited, in slices, counting those that
        leave it still awaited (a slice that completes a message and starts the next head is not
        counted: at most one slice more is held than the count says)."""
        if not self._awaiting_head:
            self.parser.feed_data(data)  # a body, or a head that is whole before the limit matters
            return
        for start in range(0, len(data), HEAD_SLICE):
            if not self._awaiting_head:
                self.parser.feed_data(data[start:])
                return
            piece = data[start:start + HEAD_SLICE]
            self.parser.feed_data(piece)
            if not self._awaiting_head:
                continue
            if self._head_raw < 0:  # this slice completed a message: count from the next one
                self._head_raw = 0
                continue
            self._head_raw += len(piece)
            if self._head_raw > self.limits.max_head_bytes + HEAD_SLICE:
                self._head_too_large = True
                raise httptools.HttpParserError("request head too large")

    # -------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._header_count = 0
        self._cancel_request_timer()
        self._request_timer = self.loop.call_later(self.limits.request_seconds, self._request_too_slow)

    def on_url(self, url: bytes) -> None:
        self._grow_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _HeadTooLarge()
        self._grow_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_request_timer()
        self._awaiting_head, self._head_raw = True, -1  # -1: the slice in progress is not counted
        super().on_message_complete()

    # -------------------------------------------------------------- refusals

    def _grow_head(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.limits.max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge()

    def _refuse(self, status: int, reason: bytes, title: str, detail: str) -> None:
        """Refuse what came after the requests already taken: those are answered first (the last
        with ``Connection: close``); with none in progress, the problem goes out now."""
        self._cancel_request_timer()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            cycle.keep_alive = False  # the request is whole: answer it, then close
            self.flow.pause_reading()
            return
        if not self.transport.is_closing():
            self.transport.write(problem_bytes(status, reason, title, detail))
            self.transport.close()

    def _refuse_upgrade(self) -> None:
        """An upgrade is not spoken here: answer the request that asked for it, then close."""
        if self.cycle is not None:
            self.cycle.keep_alive = False
            self.cycle.more_body = False
            self.cycle.message_event.set()
        self.flow.pause_reading()

    def _request_too_slow(self) -> None:
        """A request began ``request_seconds`` ago and is still not whole (the timer is cancelled
        when it is): close the connection."""
        self._request_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _cancel_keep_alive(self) -> None:
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def _cancel_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None
