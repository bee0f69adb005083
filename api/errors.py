"""The API's errors, and their one mapping to RFC 9457 problem details.

Every error response of the service is ``application/problem+json``::

    {"type": "urn:govshare:problem:wrong-role", "title": "Wrong role", "status": 403,
     "detail": "only an operator of SAMR (the dataset's owner) may approve grant 3; 0xAb… acts for TAX",
     "instance": "/v1/grants/3/approve", ...extension members}

``type`` is a URN per kind of problem (``urn:govshare:problem:<slug>``: stable, for programs to branch
on; there is no page behind it), ``title`` its human summary, ``instance`` the request's path.
Extension members carry context: a contract refusal has ``error`` (the custom error's name, e.g.
``AccessGrantsNotOwnerOperator``), ``error_args`` and ``selector``; an oracle refusal its ``reason``
and signed ``receipt``; a validation error the list of ``errors``.

:func:`install_problem_handlers` maps, once for the whole app:

==========================================  ======================================================
:class:`ApiError` and its subclasses        their own status (401 adds ``WWW-Authenticate``, 429 ``Retry-After``)
``ContractRevert``                          404 for an unknown id, 403 for a role, 422 for a bad
                                            argument, 409 for any other refusal (the chain's state)
``DataFileError``, ``UnknownField``         422
``ChainUnavailable``                        503 (the node's URL is not shown: it may hold a key)
``TransactionFailed``                       502
``ManifestError``, ``KeystoreError``        503 (the service is misconfigured)
any other ``LedgerError``, any exception    500 with a generic detail (logged, never echoed)
FastAPI's request validation                400 for a body that is not JSON, 422 otherwise
Starlette's ``HTTPException`` (404, 405...) its status
==========================================  ======================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.contracts.catalog import UnknownField
from ledger.dataset_file import DataFileError
from ledger.errors import (
    ChainUnavailable,
    ContractRevert,
    KeystoreError,
    LedgerError,
    ManifestError,
    TransactionFailed,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ApiError",
    "BadGateway",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthenticated",
    "UnprocessableContent",
    "UnsupportedMediaType",
    "install_problem_handlers",
    "problem_response",
    "problem_type",
]

log = logging.getLogger("govshare.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:govshare:problem:"

#: The challenges a 401 answer names (RFC 9110 §11.6.1): a bearer token, or a signed request.
WWW_AUTHENTICATE = 'Bearer realm="govshare", GovshareSignature realm="govshare"'


def problem_type(slug: str) -> str:
    """The ``type`` URI of a kind of problem (``urn:govshare:problem:<slug>``)."""
    return _TYPE_PREFIX + slug


class ApiError(LedgerError):
    """Root of the API's own errors: each is answered as a problem with its ``status``.

    ``slug`` names the kind (it becomes the ``type`` URN), ``title`` summarises it, ``detail`` (the
    message) says what happened in this case; ``extensions`` become extension members.
    """

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str, *, slug: str | None = None, title: str | None = None,
                 headers: Mapping[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.headers = dict(headers or {})
        self.extensions = extensions


class BadRequest(ApiError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthenticated(ApiError):
    """No credentials, or credentials that do not prove an account (answered with ``WWW-Authenticate``)."""

    status, slug, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": WWW_AUTHENTICATE}, **kwargs)


class Forbidden(ApiError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ApiError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ApiError):
    status, slug, title = 409, "conflict", "Conflict with the chain's state"


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ApiError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class UnprocessableContent(ApiError):
    status, slug, title = 422, "invalid-request", "Invalid request"


class TooManyRequests(ApiError):
    """Over the caller's rate limit (answered with ``Retry-After``)."""

    status, slug, title = 429, "rate-limited", "Too many requests"


class BadGateway(ApiError):
    status, slug, title = 502, "bad-gateway", "Upstream failure"


class ServiceUnavailable(ApiError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class ConfigError(ApiError, ValueError):
    """The service's settings are missing or invalid (raised at start, never answered over HTTP)."""

    status, slug, title = 500, "configuration", "Invalid configuration"


def problem_response(status: int, slug: str, title: str, detail: str, instance: str | None = None, *,
                     headers: Mapping[str, str] | None = None, **extensions: Any) -> JSONResponse:
    """An RFC 9457 problem response (also used by the body size limit, outside the exception path)."""
    body: dict[str, Any] = {"type": problem_type(slug), "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {}))


# ---------------------------------------------------------------- contract refusals

_NOT_FOUND_MARKS = ("Unknown",)
_FORBIDDEN_MARKS = ("NotOperator", "NotOwner", "NotRequesterOperator", "NotIndependentAuditor",
                    "NotDepartmentOperator", "NotCommitteeMember", "NotDeployer", "NotOracle", "NotProviderOracle")
_UNPROCESSABLE_MARKS = ("Invalid", "PurposeRequired", "NotNarrowing", "EmptyFieldName", "DuplicateField",
                        "TooLong", "OwnDataset")


def revert_status(name: str) -> int:
    """The HTTP status of a contract's custom error, by its name."""
    if name.endswith("InvalidStatus"):
        return 409  # the grant (or request) is not in a state that allows the action
    if any(mark in name for mark in _NOT_FOUND_MARKS):
        return 404
    if any(mark in name for mark in _FORBIDDEN_MARKS):
        return 403
    if any(mark in name for mark in _UNPROCESSABLE_MARKS):
        return 422
    return 409


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)  # JSON numbers beyond 2^53 lose digits
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


# ---------------------------------------------------------------- the mapping, once

def install_problem_handlers(app: FastAPI, *, on_chain_unavailable: Callable[[], None] | None = None) -> None:
    """Answer every error of ``app`` as an RFC 9457 problem (see the module's table);
    ``on_chain_unavailable`` is called for each 503 for a chain that cannot be reached (a metric)."""

    def path(request: Request) -> str:
        return request.url.path

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem_response(exc.status, exc.slug, exc.title, exc.detail, path(request), headers=exc.headers,
                                **exc.extensions)

    @app.exception_handler(ContractRevert)
    async def contract_revert(request: Request, exc: ContractRevert) -> JSONResponse:
        args = {k: _jsonable(v) for k, v in exc.args.items()}
        return problem_response(revert_status(exc.name), "contract-refused", "The contract refused the transaction",
                                f"the chain refused: {exc}", path(request), error=exc.name, error_args=args,
                                selector=exc.selector)

    @app.exception_handler(DataFileError)
    async def data_file_error(request: Request, exc: DataFileError) -> JSONResponse:
        return problem_response(422, "invalid-data-file", "Invalid data file", str(exc), path(request))

    @app.exception_handler(UnknownField)
    async def unknown_field(request: Request, exc: UnknownField) -> JSONResponse:
        return problem_response(422, "unknown-field", "Unknown field", str(exc.args[0] if exc.args else exc),
                                path(request))

    @app.exception_handler(ChainUnavailable)
    async def chain_unavailable(request: Request, exc: ChainUnavailable) -> JSONResponse:
        log.warning("chain unreachable: %s", type(exc.__cause__ or exc).__name__)
        if on_chain_unavailable is not None:
            on_chain_unavailable()
        return problem_response(503, "chain-unavailable", "Chain unavailable",
                                "the consortium chain's node cannot be reached; nothing was done, try again later",
                                path(request), headers={"Retry-After": "5"})

    @app.exception_handler(TransactionFailed)
    async def transaction_failed(request: Request, exc: TransactionFailed) -> JSONResponse:
        log.warning("transaction failed: %s", exc)
        return problem_response(502, "transaction-failed", "Transaction failed",
                                "the chain did not accept or did not mine the transaction", path(request))

    @app.exception_handler(ManifestError)
    @app.exception_handler(KeystoreError)
    async def misconfigured(request: Request, exc: LedgerError) -> JSONResponse:
        log.error("service misconfigured: %s", exc)
        return problem_response(503, "misconfigured", "Service misconfigured",
                                "the service cannot use its deployment manifest or keys; see its log", path(request))

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        log.error("unexpected ledger error on %s: %s", path(request), exc)
        return problem_response(500, "internal-error", "Internal error", "an unexpected error occurred; see the log",
                                path(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(400, "malformed-json", "Malformed JSON", "the request body is not valid JSON",
                                    path(request), errors=errors)
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return problem_response(422, "invalid-request", "Invalid request", f"{where}: {first['msg']}{more}",
                                path(request), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}
        slugs = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return problem_response(exc.status_code, slugs.get(exc.status_code, "http-error"),
                                titles.get(exc.status_code, "HTTP error"), detail, path(request),
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", path(request))
        return problem_response(500, "internal-error", "Internal error", "an unexpected error occurred; see the log",
                                path(request))
