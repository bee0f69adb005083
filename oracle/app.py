"""The oracle's HTTP edge: pydantic validates what arrives, errors leave as RFC 9457 problems.

``POST /v1/query``   a signed query → ``{"records": [...], "receipt": {...}}`` or a problem with the receipt
``GET  /v1/health``  the oracle's state (head seen, records waiting to be anchored, last anchoring error)
``GET  /v1/identity`` the oracle's address and public key (to encrypt parameters to it)
``GET  /v1/results/{request_id}`` the encrypted answer to an on-chain request, for its requester only
   (header ``Authorization: Govshare <unix time>:<EIP-191 signature of "govshare result <id> at <time>">``)
``GET  /metrics``    Prometheus metrics (:mod:`oracle.metrics`); like ``/v1/health``, no credentials
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import orjson
from eth_keys import keys
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from ledger.errors import LedgerError
from oracle.anchoring import AnchoringProcess
from oracle.batcher import Batcher
from oracle.metrics import OracleMetrics
from oracle.service import OracleService, QueryAnswer
from protocol.query import SignedQuery
from protocol.results import result_requester
from serving.rate_limit import retry_after_header

PROBLEM = "application/problem+json"

log = logging.getLogger("govshare.oracle.http")


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """An RFC 9457 problem response (for the FastAPI routes; the query handler sends :func:`problem_body`'s bytes)."""
    _, body, media_type = problem_body(status, title, detail, **extra)
    return Response(body, status_code=status, media_type=media_type.decode())


class OracleHttpApp:
    """The oracle's ASGI application: ``POST /v1/query`` is served by a lean handler straight on
    the ASGI interface (the hot path: routing, dependency injection and middleware layers cost more
    CPU than the whole access check), on the event loop itself (:meth:`OracleService.answer_async`:
    no thread per query), everything else by the FastAPI app (``.api``). Every error leaves as a
    problem, a failure of a route included (500, its details only in the log). ``metrics`` counts
    each answer and its latency (``GET /metrics`` is a route of the FastAPI app)."""

    def __init__(self, service: OracleService, api: FastAPI, max_request_bytes: int,
                 metrics: OracleMetrics | None = None) -> None:
        self.service = service
        self.api = api
        self.max_request_bytes = max_request_bytes
        self.metrics = metrics if metrics is not None else OracleMetrics(service, None)
        api.add_exception_handler(Exception, _internal_error)

    def close(self) -> None:
        """Nothing of its own to release (the service owns its threads and connections)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/query":
            if scope["method"] == "POST":
                await self._query(scope, receive, send)
            else:
                await _send(send, *problem_body(405, "method not allowed", "POST a signed query here"), [(b"allow", b"POST")])
            return
        await self.api(scope, receive, send)

    async def _query(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        limit = self.max_request_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _send(send, *_too_large(limit))
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _send(send, *_too_large(limit))
                return
            more = message.get("more_body", False)
        await _send(send, *await self.answer_query(body))

    async def answer_query(self, body: bytes | bytearray) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]] | None]:
        """The answer to a ``POST /v1/query`` body (within the size limit): status, JSON body, content
        type, and extra headers (``Retry-After`` for a 429)."""
        received = time.perf_counter()
        try:
            signed = SignedQuery.from_body(body)
        except (ValueError, ValidationError) as exc:  # InvalidQuery is a ValueError
            self.metrics.malformed()
            return (*problem_body(400, "malformed request", _short(exc)), None)
        answer = await self.service.answer_async(signed)
        if answer.withhold is not None:  # strict mode: the records leave only once the access is on chain
            answer = await self._once_anchored(answer)
        self.metrics.answered(answer, time.perf_counter() - received)
        receipt = answer.receipt.as_dict()
        if answer.status == 200:
            return 200, orjson.dumps({"records": answer.records, "receipt": receipt}), JSON, None
        if answer.retry_after is not None:  # RATE_LIMITED: the wait in the header and in the problem
            wait = retry_after_header(answer.retry_after)
            return (*problem_body(answer.status, answer.reason_name or "refused", answer.error or "",
                                  reason=answer.reason_name, receipt=receipt, retry_after=int(wait)),
                    [(b"retry-after", wait.encode())])
        return (*problem_body(answer.status, answer.reason_name or "refused", answer.error or "",
                              reason=answer.reason_name, receipt=receipt), None)

    async def _once_anchored(self, answer: QueryAnswer) -> QueryAnswer:
        """Wait, on the event loop, until the answer's record is on chain; past
        ``strict_timeout_seconds``, record that the data was withheld and answer that instead."""
        loop = asyncio.get_running_loop()
        anchored = loop.create_future()

        def on_anchored() -> None:  # called from the batcher's thread
            loop.call_soon_threadsafe(lambda: anchored.done() or anchored.set_result(True))

        sequence, withhold = answer.receipt.sequence, answer.withhold
        outbox = self.service.outbox
        if withhold is None or outbox.when_anchored(sequence, on_anchored):
            return answer
        try:
            await asyncio.wait_for(anchored, self.service.config.strict_timeout_seconds)
            return answer
        except asyncio.TimeoutError:
            outbox.forget_waiter(sequence, on_anchored)
            record = outbox.get(sequence)
            if record is not None and record.anchored_block is not None:  # anchored just as time ran out
                return answer
            return withhold()


JSON = b"application/json"


def problem_body(status: int, title: str, detail: str, **extra: Any) -> tuple[int, bytes, bytes]:
    """An RFC 9457 problem as (status, JSON body, content type): what every refusal of the oracle's HTTP edge sends."""
    return status, orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}), PROBLEM.encode()


def _too_large(limit: int) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    # the rest of the body is never read: the connection cannot carry another request
    return (*problem_body(413, "request too large", f"a query body is at most {limit} bytes"), [(b"connection", b"close")])


async def _send(send: Any, status: int, body: bytes, content_type: bytes, extra_headers: list | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())] + (extra_headers or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(service: OracleService, batcher: Batcher | AnchoringProcess | None = None, *,
               max_request_bytes: int = 65536) -> OracleHttpApp:
    app = FastAPI(title=f"govshare oracle ({service.config.department})", docs_url=None, redoc_url=None)
    metrics = OracleMetrics(service, batcher)
    public_key = keys.PrivateKey(bytes(service.signer.account.key)).public_key.to_bytes()

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        try:
            head: int | None = service.head()
        except LedgerError:
            head = None
        return {
            "oracle": service.signer.address,
            "department": service.config.department,
            "mode": service.config.mode,
            "head": head,
            "pending": service.outbox.pending_count(),
            "last_anchoring_error": batcher.last_error if batcher else None,
        }

    @app.get("/v1/identity")
    def identity() -> dict[str, Any]:
        return {"oracle": service.signer.address, "department": service.config.department,
                "public_key": "0x" + public_key.hex()}

    @app.get("/v1/results/{request_id}")
    def result(request_id: int, request: Request) -> Response:
        stored = service.outbox.chain_requests.result(request_id)
        requester = result_requester(request.headers.get("authorization", ""), request_id)
        if requester is None:
            return problem(401, "unauthorised", "sign 'govshare result <id> at <unix time>' with the requester's key")
        if stored is None:
            return problem(404, "no result yet", f"request {request_id} has not been answered by this oracle (yet)")
        owner, sequence, blob, fulfilled_tx = stored
        if owner != requester:
            return problem(403, "not your request", "only the account that made the request may fetch its answer")
        if service.config.mode == "strict":
            record = service.outbox.get(sequence)
            if record is None or record.anchored_block is None:  # strict: nothing leaves before its record is on chain
                return problem(404, "no result yet", f"request {request_id} is answered; its record is not on chain yet")
        return JSONResponse({"requestId": request_id, "sequence": sequence, "ciphertext": "0x" + blob.hex(),
                             "fulfilledTx": fulfilled_tx})

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:  # a thread of its own: a scrape reads the chain briefly
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return OracleHttpApp(service, app, max_request_bytes, metrics)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error", "the oracle could not answer this request")


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" + (f" ({exc.error_count()} problems)" if exc.error_count() > 1 else "")
    if isinstance(exc, json.JSONDecodeError) or isinstance(exc, UnicodeDecodeError):
        return "the body is not valid JSON"
    return str(exc)
