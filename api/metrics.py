"""The API service's Prometheus metrics, served at ``GET /metrics`` (text exposition format, or
OpenMetrics when the scraper asks for it), with ``prometheus-client`` and a registry per app.

``govshare_api_requests_total{route, method, status}``  requests answered, by route *template*
    (``/v1/grants/{grant_id}``, never the raw path; ``unrouted`` for a request no route answered: an
    unknown path, a body refused before routing, a redirect to the path with(out) a slash), method
    (the usual verbs, else ``other``) and status class (``2xx``...``5xx``)
``govshare_api_request_seconds{route, method}``  histogram: from the request's arrival to its answer
``govshare_api_oracle_calls_total{outcome}``  queries sent to a provider's oracle (``POST /v1/queries``):
    ``served``, ``refused`` (a refusal with the oracle's signed receipt), ``bad_answer`` (no or not
    its receipt, not a query answer), ``timeout``, ``unreachable``
``govshare_api_oracle_call_seconds``  histogram: how long the oracles took to answer
``govshare_api_chain_unavailable_total``  requests answered 503 because the chain's node could not be reached

Labels take only small fixed sets of values: no account, token, id or raw path.

Access: ``metrics_enabled`` (default true) serves ``/metrics`` without credentials, as operators
usually scrape on an internal network and nothing in it is personal or secret (counts and
latencies; like ``/v1/health``, which shows the chain's state); ``metrics_token_sha256`` (the
SHA-256 of a bearer token, as ``tokens`` store them) makes it ask for that token, which a
Prometheus scrape config sends with ``authorization: {credentials: ...}``. It is not an account's
token: it proves nothing but the right to read the metrics. ``metrics_enabled = false`` removes the
route and the per-request counting.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import Unauthenticated
from api.settings import ApiSettings, token_sha256

__all__ = ["ApiMetrics", "RequestMetrics", "install_metrics"]

#: Upper bounds (seconds) of the request histogram: reads take milliseconds, transactions wait for a block.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The oracle's answer: milliseconds, up to the ``oracle_timeout_seconds`` (30 s by default).
ORACLE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ORACLE_OUTCOMES = ("served", "refused", "bad_answer", "timeout", "unreachable")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "unrouted"


class ApiMetrics:
    """One API service's metrics; ``registry`` is its own (tests run several services in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter("govshare_api_requests", "HTTP requests answered, by route template, method and status class.",
                                ("route", "method", "status"), registry=self.registry)
        self.request_seconds = Histogram("govshare_api_request_seconds", "Seconds from a request's arrival to its answer.",
                                         ("route", "method"), buckets=REQUEST_BUCKETS, registry=self.registry)
        oracle_calls = Counter("govshare_api_oracle_calls", "Queries sent to providers' oracles, by outcome.",
                               ("outcome",), registry=self.registry)
        self._oracle_calls = {outcome: oracle_calls.labels(outcome) for outcome in ORACLE_OUTCOMES}
        self.oracle_call_seconds = Histogram("govshare_api_oracle_call_seconds", "Seconds providers' oracles took to answer.",
                                             buckets=ORACLE_BUCKETS, registry=self.registry)
        self.chain_unavailable = Counter("govshare_api_chain_unavailable",
                                         "Requests answered 503 because the chain's node could not be reached.",
                                         registry=self.registry)

    def request_answered(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, f"{status // 100}xx").inc()
        self.request_seconds.labels(route, method).observe(seconds)

    def oracle_called(self, outcome: str, seconds: float) -> None:
        """A query went to a provider's oracle; ``outcome`` is one of :data:`ORACLE_OUTCOMES`."""
        self._oracle_calls[outcome].inc()
        self.oracle_call_seconds.observe(seconds)

    def chain_was_unavailable(self) -> None:
        self.chain_unavailable.inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for (Prometheus text by default): body, content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def route_template(scope: Scope, routes: Iterable[BaseRoute], request: Scope | None = None) -> str:
    """The template of the route that answered ``scope``: the router notes FastAPI's routes in the
    scope; a mount (the docs' assets) is found among the app's own ``routes`` by ``request``, the
    scope as it arrived (before the mount rewrote its paths). :data:`UNROUTED` otherwise."""
    route = scope.get("route")
    if route is None:
        probe = request if request is not None else scope
        route = next((r for r in routes if isinstance(r, Mount) and r.matches(probe)[0] is not Match.NONE), None)
    if route is None:
        return UNROUTED
    return getattr(route, "path_format", None) or UNROUTED


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by route template, method and status class."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        arrived = (scope["path"], scope.get("root_path", ""))  # a mount rewrites them
        status = 500  # unless the app starts an answer: an exception on its way to the server's 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            request = {"type": "http", "method": scope["method"], "path": arrived[0], "root_path": arrived[1]}
            self.metrics.request_answered(route_template(scope, self.routes, request), scope["method"], status,
                                          time.perf_counter() - started)


def install_metrics(app: FastAPI, metrics: ApiMetrics, settings: ApiSettings) -> None:
    """Serve ``GET /metrics`` and count every request, if ``settings.metrics_enabled``."""
    if not settings.metrics_enabled:
        return
    token_hash = settings.metrics_token_sha256

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        if token_hash is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token_sha256(token.strip()), token_hash):
                raise Unauthenticated("the metrics need the bearer token configured as metrics_token_sha256")
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    app.add_middleware(RequestMetrics, metrics=metrics, routes=app.router.routes)
