"""Who the caller is, and what the chain lets that account do.

A caller proves an account in one of two ways:

* **Bearer token** — ``Authorization: Bearer <token>``. The settings (and ``tokens_file``, read
  again when it changes: :mod:`api.tokens`) hold only the SHA-256 of each token with the account it
  is bound to and its expiry; a presented token is hashed and compared with every stored hash by
  ``hmac.compare_digest``. An expired token is a 401 (``expired-token``).
* **Signed request** — three headers::

      X-Govshare-Account:   0x… (the account)
      X-Govshare-Timestamp: unix seconds
      X-Govshare-Signature: 0x… (65 bytes) EIP-191 ``personal_sign`` of the text
          "govshare-api-request-v1\\n{METHOD}\\n{path?query as sent}\\n{hex sha256 of the body}\\n{timestamp}"

  The timestamp must be within ``signature_window_seconds`` of the service's clock, and each signed
  message is accepted once: a replay within the window is refused (after the window the timestamp
  is stale anyway). :func:`sign_request` builds the headers.

No credentials, or credentials that prove nothing, is a 401 with ``WWW-Authenticate``. Once an
account is proven, it is counted against ``rate_limit`` (429 ``rate-limited`` with ``Retry-After``
over it). Then the
account must belong to an active department of the consortium (read on chain), else 403: that is
:data:`CurrentCaller`, the dependency every route (the audit routes too) takes. Write actions also
need the service to hold the account's key (:meth:`Caller.acting_signer`) and the on-chain role the
action needs (:func:`require_operator`, :func:`require_auditor`), checked before any transaction
is sent; the contract still refuses on its own if the state changed in between.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils import is_address, to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ApiContext, ContextDep
from api.errors import Forbidden, TooManyRequests, Unauthenticated
from ledger.contracts.registry import Department, Role
from ledger.deployment import Consortium
from ledger.keys import Signer
from serving.rate_limit import retry_after_header

__all__ = [
    "HEADER_ACCOUNT",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "Authentication",
    "Caller",
    "CurrentCaller",
    "ReplayGuard",
    "authenticated_account",
    "current_caller",
    "request_message",
    "require_auditor",
    "require_operator",
    "sign_request",
]

HEADER_ACCOUNT = "X-Govshare-Account"
HEADER_TIMESTAMP = "X-Govshare-Timestamp"
HEADER_SIGNATURE = "X-Govshare-Signature"
SIGNATURE_DOMAIN = "govshare-api-request-v1"
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")


# ---------------------------------------------------------------- signed requests

def request_message(method: str, target: str, body: bytes, timestamp: int) -> str:
    """The text a signed request signs: method, path with query as sent, body SHA-256, timestamp."""
    return f"{SIGNATURE_DOMAIN}\n{method.upper()}\n{target}\n{hashlib.sha256(body).hexdigest()}\n{timestamp}"


def sign_request(signer: Signer, method: str, target: str, body: bytes = b"", *, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed request (``target`` is the path and query exactly as sent)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = signer.sign_message(encode_defunct(text=request_message(method, target, body, stamp))).signature
    return {HEADER_ACCOUNT: signer.address, HEADER_TIMESTAMP: str(stamp), HEADER_SIGNATURE: "0x" + bytes(signature).hex()}


class ReplayGuard:
    """Remembers each accepted signed message until its timestamp leaves the freshness window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[bytes] = set()
        self._expiry: list[tuple[float, bytes]] = []

    def first_use(self, key: bytes, expires_at: float, now: float) -> bool:
        """True the first time ``key`` is seen (and remember it until ``expires_at``); False for a replay."""
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                self._seen.discard(heapq.heappop(self._expiry)[1])
            if key in self._seen:
                return False
            self._seen.add(key)
            heapq.heappush(self._expiry, (expires_at, key))
            return True


# ---------------------------------------------------------------- the caller

@dataclass(frozen=True)
class Authentication:
    """An account proven by a token or a signature (membership not yet checked)."""

    account: str
    via: Literal["token", "signature"]


@dataclass(frozen=True)
class Caller:
    """An authenticated account of an active department; ``signer`` is the service's key for it, if any."""

    account: str
    department: Department
    via: Literal["token", "signature"]
    signer: Signer | None

    def acting_signer(self, action: str) -> Signer:
        """The key to send a transaction (or sign a query) with; 403 if the service holds none for the caller."""
        if self.signer is None:
            raise Forbidden(
                f"this service holds no key for {self.account} ({self.department.code}), so it cannot {action} "
                "for it; callers may only act through accounts whose keys the service holds",
                slug="no-key-for-account", title="The service cannot act for this account", account=self.account)
        return self.signer


_bearer = HTTPBearer(auto_error=False, description="a token bound to an account in the service's settings")
_signature = APIKeyHeader(name=HEADER_SIGNATURE, auto_error=False, scheme_name="SignedRequest",
                          description=f"EIP-191 signature of the request, with {HEADER_ACCOUNT} and {HEADER_TIMESTAMP}")


async def authenticated_account(
    request: Request,
    context: ContextDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    signature: Annotated[str | None, Depends(_signature)],
) -> Authentication:
    """The account the request proves (401 when it proves none)."""
    if bearer is not None and signature is not None:
        raise Unauthenticated("send either a bearer token or a signed request, not both")
    if bearer is not None:
        binding = context.tokens.lookup(bearer.credentials)
        if binding is None:
            raise Unauthenticated("the bearer token is not valid", slug="invalid-token")
        if binding.expired(time.time()):
            raise Unauthenticated(f"the bearer token expired at {binding.expires_at.isoformat()}",  # type: ignore[union-attr]
                                  slug="expired-token")
        return _within_rate(context, Authentication(binding.account, "token"))
    if signature is not None:
        body = await request.body()
        return _within_rate(context, Authentication(_verify_signature(request, context, signature, body), "signature"))
    raise Unauthenticated("authenticate with a bearer token (Authorization: Bearer …) or a signed request "
                          f"({HEADER_ACCOUNT}, {HEADER_TIMESTAMP}, {HEADER_SIGNATURE})")


def _within_rate(context: ApiContext, authentication: Authentication) -> Authentication:
    """``authentication``, counted against its account's rate limit (429 over it). Counted once the
    credentials are proven, by account: nobody spends another's budget, and a caller gains nothing
    by holding several tokens or by switching to signed requests."""
    limit = context.rate_limit
    if limit is not None:
        wait = limit.acquire(authentication.account)
        if wait is not None:
            raise TooManyRequests(f"{authentication.account} made more requests than this service allows ({limit.spec}); "
                                  f"retry in {retry_after_header(wait)} s", headers={"Retry-After": retry_after_header(wait)},
                                  account=authentication.account, rate_limit=limit.spec)
    return authentication


def _verify_signature(request: Request, context: ApiContext, signature: str, body: bytes) -> str:
    claimed = request.headers.get(HEADER_ACCOUNT, "")
    stamp = request.headers.get(HEADER_TIMESTAMP, "")
    if not is_address(claimed):
        raise Unauthenticated(f"{HEADER_ACCOUNT} must be the signing account's address", slug="invalid-signature")
    if not stamp.isdigit():
        raise Unauthenticated(f"{HEADER_TIMESTAMP} must be unix seconds", slug="invalid-signature")
    window = context.settings.signature_window_seconds
    now = time.time()
    if abs(now - int(stamp)) > window:
        raise Unauthenticated(f"the signed request's timestamp is more than {window} s from the service's clock",
                              slug="stale-signature")
    if not _SIGNATURE.fullmatch(signature):
        raise Unauthenticated(f"{HEADER_SIGNATURE} must be 0x and 130 hex digits (r, s, v)", slug="invalid-signature")
    message = request_message(request.method, _target(request), body, int(stamp))
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=signature)
    except (ValueError, TypeError, BadSignature, EthValidationError):  # r, s or v out of range
        raise Unauthenticated("the request signature is not a valid signature", slug="invalid-signature") from None
    account = to_checksum_address(claimed)
    if signer != account:
        raise Unauthenticated(f"the request is not signed by {account}", slug="invalid-signature")
    key = hashlib.sha256(f"{account}\n{message}".encode()).digest()
    if not context.replays.first_use(key, int(stamp) + window + 1, now):
        raise Unauthenticated("this signed request was already used; sign each request afresh", slug="replayed-request")
    return account


def _target(request: Request) -> str:
    """The request target as the client sent it: the raw path, and the raw query if any."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def current_caller(authentication: Annotated[Authentication, Depends(authenticated_account)], context: ContextDep) -> Caller:
    """The authenticated caller, an account of an active department (401 unauthenticated, 403 not a member)."""
    registry = context.consortium().registry
    dept_id = registry.department_of(authentication.account)
    if dept_id == 0:
        raise Forbidden(f"account {authentication.account} belongs to no department of the consortium",
                        slug="not-a-member", title="Not a member", account=authentication.account)
    department = registry.department(dept_id)
    if not department.active:
        raise Forbidden(f"account {authentication.account} belongs to {department.code}, which is no longer a member "
                        "of the consortium", slug="not-a-member", title="Not a member", account=authentication.account)
    return Caller(authentication.account, department, authentication.via, context.signer_for(authentication.account))


CurrentCaller = Annotated[Caller, Depends(current_caller)]


# ---------------------------------------------------------------- on-chain roles

def _require_role(consortium: Consortium, caller: Caller, role: bytes, role_name: str, action: str) -> None:
    if consortium.registry.department_with_role(role, caller.account) != caller.department.id:
        raise Forbidden(f"to {action} an account needs the {role_name} role; {caller.account} of "
                        f"{caller.department.code} does not hold it", slug="wrong-role", title="Wrong role",
                        account=caller.account, role=role_name)


def require_operator(consortium: Consortium, caller: Caller, action: str) -> None:
    """403 unless the caller holds OPERATOR for its department."""
    _require_role(consortium, caller, Role.OPERATOR, "OPERATOR", action)


def require_auditor(consortium: Consortium, caller: Caller, action: str) -> None:
    """403 unless the caller holds AUDITOR for its department and that department is an audit office."""
    _require_role(consortium, caller, Role.AUDITOR, "AUDITOR", action)
    if not caller.department.audit_office:
        raise Forbidden(f"to {action} the caller's department must be an audit office; {caller.department.code} is not",
                        slug="wrong-role", title="Wrong role", account=caller.account, role="AUDITOR")
