"""Assemble the API service (``create_app``) and run it (``govshare api serve --config FILE``).

The app holds one :class:`api.deps.ApiContext` (settings, the keys it acts with, the chain connected
on first use), maps every error to an RFC 9457 problem once (``api.errors``), refuses bodies over
``max_body_bytes`` with a 413 problem before any route sees them, and includes the routers listed in
``api.routes.ROUTERS``. OpenAPI is served at ``/openapi.json`` and ``/docs``: Swagger UI from the assets
the ``fastapi-offline`` package ships (under ``/docs/assets/``), not from a CDN, so that the page works
on a government network without internet (ReDoc stays off). ``GET /v1/health`` needs
no credentials, nor does ``GET /metrics`` by default (Prometheus metrics, ``api.metrics``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import serving
from api.auth import ReplayGuard
from api.deps import ApiContext, ContextDep, load_signers, signer_map
from api.errors import install_problem_handlers, problem_response
from api.metrics import ApiMetrics, install_metrics
from api.routes import ROUTERS
from api.schemas import HealthPublic
from api.settings import ApiSettings
from api.tokens import TokenTable
from ledger.deployment import Consortium
from ledger.errors import ChainUnavailable
from ledger.json_limits import MAX_DEPTH, JsonTooDeep, check_json
from ledger.keys import Signer
from serving.rate_limit import RateLimit

__all__ = ["BodySizeLimit", "create_app", "serve"]

log = logging.getLogger("govshare.api")

DESCRIPTION = """A department's (or an audit office's) service on the govshare consortium ledger:
the data catalog, access grants, and queries to other departments' oracles.

Authenticate with `Authorization: Bearer <token>` (a token bound to an account in the service's
settings) or a signed request (`X-Govshare-Account`, `X-Govshare-Timestamp`, `X-Govshare-Signature`:
EIP-191 signature of `govshare-api-request-v1\\n{METHOD}\\n{path?query}\\n{sha256(body) hex}\\n{timestamp}`).
Every error is an RFC 9457 problem (`application/problem+json`)."""


#: Where Swagger UI's script, stylesheet and icon are served from (the API's own origin).
DOCS_ASSETS = "/docs/assets"


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 (a problem) before the app
    sees it. A declared ``Content-Length`` over the limit is refused without reading the body; a body
    streamed without one is counted as it arrives (and held, at most ``max_bytes``, for the app).
    A JSON body (``application/json``, ``…+json``, or no content type: FastAPI parses those as JSON)
    nested deeper than ``max_depth`` is answered 400 before anything parses it
    (``ledger.json_limits``: deep nesting would crash or stall a recursive parser)."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if body and _is_json(headers.get(b"content-type")):
            try:
                check_json(body, what="the request body", max_depth=self.max_depth)
            except JsonTooDeep as exc:
                response = problem_response(400, "json-too-deep", "JSON nested too deeply", str(exc), scope.get("path"),
                                            max_depth=self.max_depth)
                await response(scope, receive, send)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, "payload-too-large", "Request body too large",
                                    f"a request body is at most {self.max_bytes} bytes", scope.get("path"),
                                    headers={"Connection": "close"}, max_body_bytes=self.max_bytes)
        await response(scope, receive, send)


def _is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI would parse a body of this content type as JSON (it does without one)."""
    if not content_type:
        return True
    subtype = content_type.split(b";", 1)[0].strip().lower().rpartition(b"/")[2]
    return subtype == b"json" or subtype.endswith(b"+json")


def create_app(settings: ApiSettings, *, consortium: Consortium | None = None,
               signers: Iterable[Signer] | None = None) -> FastAPI:
    """The API app. ``consortium``: an existing chain connection (else connected on first use from
    ``settings.rpc_url``/``manifest``); ``signers``: the keys to act with (else decrypted from
    ``settings.keystores``; tests pass dev keys)."""
    held = signer_map(load_signers(settings) if signers is None else signers)
    metrics = ApiMetrics()
    tokens = TokenTable(settings.tokens, settings.tokens_file, development=settings.development)
    rate_limit = RateLimit(settings.rate_limit) if settings.rate_limit else None
    context = ApiContext(settings, held, tokens, ReplayGuard(), metrics, rate_limit, _consortium=consortium)
    app = FastAPIOffline(title="govshare API", version="1", description=DESCRIPTION, openapi_url="/openapi.json",
                         docs_url="/docs", redoc_url=None, static_url=DOCS_ASSETS)
    app.state.context = context
    install_problem_handlers(app, on_chain_unavailable=metrics.chain_was_unavailable)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    install_metrics(app, metrics, settings)  # outside the size limit: its 413s are counted too

    @app.get("/v1/health", response_model=HealthPublic, tags=["service"], summary="Service and chain status")
    def health(context: ContextDep) -> HealthPublic:
        """Whether the chain is reachable, its id and head, and the accounts the service acts with (no
        credentials needed; addresses are public on the chain anyway)."""
        try:
            chain = context.consortium().chain
            chain_id, block = chain.chain_id, chain.block_number()
        except ChainUnavailable:
            return HealthPublic(status="degraded", chain_reachable=False, chain_id=None, block=None,
                                accounts=sorted(context.signers))
        return HealthPublic(status="ok", chain_reachable=True, chain_id=chain_id, block=block,
                            accounts=sorted(context.signers))

    for router in ROUTERS:
        app.include_router(router)
    return app


def serve(config_path: Path) -> None:
    """Load the settings, decrypt the keys, and serve until interrupted."""
    settings = ApiSettings.load(config_path)
    app = create_app(settings)
    context: ApiContext = app.state.context
    try:
        context.consortium()
    except ChainUnavailable:
        log.warning("the chain at the configured rpc_url is unreachable; requests will be answered 503 until it is back")
    tls = settings.tls
    log.info("govshare API for %s listening on %s://%s:%d", ", ".join(sorted(context.signers)) or "no account",
             "https" if tls else "http", settings.listen_host, settings.listen_port)
    serving.serve(app, settings.listen_host, settings.listen_port, settings.serving.limits(),  # govshare's limits (head size, slow clients)
                  tls=tls.uvicorn_options() if tls else None)
