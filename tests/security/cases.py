"""The bad-input catalogue, as data: one row per attack, with the surface it enters by, what it
does, the exact refusal expected, and the audit evidence the design promises for it.

Adding a case is adding one row to :data:`CASES` (an ``act`` is a small function of the
:class:`tests.security.world.World`); ``SECURITY.md`` lists every row (a test holds it to that).

Refusals:
  * :class:`Problem`: an HTTP problem with this status, and the oracle's ``reason`` name and/or the
    API's problem-type slug;
  * :class:`Exit`: the ``govshare`` subprocess exits with this code and says this on stderr;
  * :class:`Reverts`: the transaction reverts with this custom error and these arguments;
  * :class:`Handshake`: the TLS handshake refuses the client (TLS 1.2: an alert in the handshake;
    TLS 1.3: the connection closed before a byte of HTTP);
  * :class:`Closed`: the service closes connections it never answers (idle, or a request too slow).
Evidence:
  * :class:`Denial`: SAMR's oracle wrote exactly one record, DENIED with this reason code, naming this
    requester and dataset; it was anchored and the chain holds it as written (``AuditRecordAppended``);
  * :data:`COUNTED`: the oracle recorded nothing (a body that is not a signed query has no requester
    to record) and counted it on ``govshare_oracle_malformed_queries_total``;
  * :data:`NO_RECORD`: refused before any record or transaction could be made; nothing is written.
Every case also checks that nothing else changed (``World.state``: catalog, grants, registry,
on-chain requests, audit-log states, the outbox).
"""

from __future__ import annotations

import json
import secrets
import socket
import sqlite3
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from api.auth import sign_request
from ledger.contracts.audit_log import ZERO_HASH, AuditEntry, OracleReason, Outcome, chain_step, record_id
from ledger.contracts.grants import AccessReason
from ledger.contracts.query_requests import public_key_of
from ledger.contracts.registry import Role
from oracle.outbox import NONCE_PRUNE_GRACE_SECONDS, Outbox
from oracle.outbox_seal import SEAL_KEY_LABEL
from protocol.query import SECP256K1_N, SignedQuery, sign_query
from protocol.receipt import Receipt
from tests.security.world import (
    API_IDLE_SECONDS,
    API_RATE_LIMIT_COUNT,
    API_REQUEST_SECONDS,
    ORACLE_RATE_LIMIT_COUNT,
    Answer,
    World,
    answer_of,
    write_tokens_file,
)

# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Problem:
    status: int
    reason: str | None = None  # the oracle's reason name (``reason`` member of the problem)
    slug: str | None = None  # the API's problem type, urn:govshare:problem:<slug>
    retry_after: bool = False  # a Retry-After header of whole seconds (>= 1), the same wait as the problem says
    detail: str | None = None  # a substring of the problem's detail


@dataclass(frozen=True)
class Exit:
    code: int
    says: str  # a substring of stderr (the key, line or reason at fault), or of stdout with stream="stdout"
    stream: str = "stderr"


@dataclass(frozen=True)
class Handshake:
    """The service's TLS handshake refuses the client: the act returns what a TLS 1.2 and a TLS 1.3
    client got (:func:`_handshake`)."""


@dataclass(frozen=True)
class Closed:
    """The service closes, without a byte of answer, a connection that sent nothing for ``idle``
    seconds and one whose request is not whole ``slow`` seconds after it began (the act returns
    what :func:`_slow_clients` measured)."""

    idle: float
    slow: float


@dataclass(frozen=True)
class Reverts:
    error: str
    args: Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Denial:
    reason: int
    requester: str | None  # account name in World.account, None: the zero address (unauthenticated)
    dataset: str | None = None  # dataset name in World.datasets, None: 0 (no dataset of this department yet)
    grant: str | int | None = None  # grant name in World.grants, or the id itself; None: 0


@dataclass(frozen=True)
class Evidence:
    kind: str


COUNTED = Evidence("counted")
NO_RECORD = Evidence("none")


@dataclass(frozen=True)
class Case:
    id: str
    surface: str  # oracle | api | cli | contract
    attack: str
    act: Callable[[World], Any]
    refusal: Problem | Exit | Reverts | Handshake | Closed
    evidence: Denial | Evidence = NO_RECORD
    setup: Callable[[World], None] | None = None  # a legitimate prelude (not part of "nothing else changed")


# --------------------------------------------------------------------------- oracle attacks


def _post(make: Callable[[World], SignedQuery | dict[str, Any] | bytes], **headers: str) -> Callable[[World], Answer]:
    def act(w: World) -> Answer:
        body = make(w)
        return w.post_query(body.to_json() if isinstance(body, SignedQuery) else body, headers or None)
    return act


def _forged(w: World) -> dict[str, Any]:
    """TAX's operator named as requester, signed by the outsider's key."""
    honest = w.signed()
    signature = sign_query(w.account("outsider"), honest.query, w.chain_id, w.query_contract)
    return {**honest.to_json(), "signature": "0x" + signature.hex()}


def _with_signature(change: Callable[[bytes], bytes]) -> Callable[[World], dict[str, Any]]:
    def make(w: World) -> dict[str, Any]:
        honest = w.signed()
        return {**honest.to_json(), "signature": "0x" + change(honest.signature).hex()}
    return make


def _high_s(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])


def _tampered_query(**members: Any) -> Callable[[World], dict[str, Any]]:
    """An honest body whose signed query members are changed after signing."""
    def make(w: World) -> dict[str, Any]:
        body = w.signed().to_json()
        values = {k: (v(w) if callable(v) else v) for k, v in members.items()}
        return {**body, "query": {**body["query"], **values}}
    return make


def _params_tampered(w: World) -> dict[str, Any]:
    body = w.signed().to_json()
    return {**body, "params": {"company_id": w.company_id(8)}}


def _salt_tampered(w: World) -> dict[str, Any]:
    return {**w.signed().to_json(), "paramsSalt": "0x" + secrets.token_hex(32)}


def _replay(w: World) -> Answer:
    return w.post_query(w.replayed.to_json())  # type: ignore[attr-defined]


def _first_use(w: World) -> None:
    w.replayed = w.signed()  # type: ignore[attr-defined]
    first = w.post_query(w.replayed.to_json())  # type: ignore[attr-defined]
    assert first.status == 200, first.body


def _replay_new_params(w: World) -> Answer:
    """The nonce of an answered query, re-signed over other parameters (a new signature, a new salt)."""
    return w.post_query(w.signed(nonce=w.replayed.query.nonce, params={"company_id": w.company_id(9)}).to_json())  # type: ignore[attr-defined]


def _expire(w: World) -> None:
    deadline = w.consortium.grants.grant(w.grants["expiring"]).expires_at
    while w.consortium.chain.w3.eth.get_block("latest")["timestamp"] <= deadline:
        time.sleep(0.5)
        w.consortium.chain.rpc.call("evm_mine", [])


def _oversized(w: World) -> bytes:
    body = w.signed().to_json()
    body["params"] = {"company_id": "x" * 70_000}
    return json.dumps(body).encode()


def _huge_header(w: World) -> Answer:
    return w.post_query(w.signed().to_json(), {"X-Padding": "a" * 20_000})


def _wrong_method(w: World) -> Answer:
    return answer_of(w.http.get("/v1/query"))


def _result_unsigned(w: World) -> Answer:
    return answer_of(w.http.get("/v1/results/1"))


def _result_forged(w: World) -> Answer:
    return answer_of(w.http.get("/v1/results/1", headers={"Authorization": f"Govshare {int(time.time())}:0x{'11' * 65}"}))


def _flood_oracle(w: World) -> None:
    """The flooder (an account of no department) spends its whole budget at the oracle: signed queries
    of a dataset the oracle does not serve, each counted, refused and recorded; all anchored."""
    queries = [w.signed("flooder", dept="tax", dataset="9999").to_json() for _ in range(ORACLE_RATE_LIMIT_COUNT)]
    with ThreadPoolExecutor(4) as pool:  # four connections at once
        for spent in pool.map(w.post_query, queries):
            assert (spent.status, spent.body.get("reason")) == (404, "UNKNOWN_DATASET"), spent.body
    while w.oracle.oracle.outbox.pending_count():
        assert w.oracle.oracle.batcher.anchor_once(force=True)


def _used_then_pruned(w: World) -> None:
    """An answered query whose deadline then passes, and whose used nonce the oracle's periodic
    pruning removes (as it does once the grace after the deadline is over)."""
    w.replayed = w.signed(ttl=3)  # type: ignore[attr-defined]  (at least 2 s to be answered in)
    first = w.post_query(w.replayed.to_json())  # type: ignore[attr-defined]
    assert first.status == 200, first.body
    deadline = w.replayed.query.deadline  # type: ignore[attr-defined]
    while time.time() <= deadline:
        time.sleep(0.1)
    outbox = w.oracle.oracle.outbox
    assert outbox.prune_nonces(deadline + NONCE_PRUNE_GRACE_SECONDS + 1) >= 1
    assert not outbox.nonce_used(w.account("tax").address, str(w.replayed.query.nonce))  # type: ignore[attr-defined]


def _handshake(port: Callable[[World], int], client: str | None) -> Callable[[World], dict[str, Any]]:
    """Connect to the service's https port with a client presenting ``client`` (a certificate of the
    world's PKI by attribute name; None: none): what a TLS 1.2 client's handshake and a TLS 1.3
    client's request got."""
    def act(w: World) -> dict[str, Any]:
        issued = getattr(w.pki, client) if client else None
        tls12 = w.pki.client_context(issued)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        outcome: dict[str, Any] = {}
        with socket.create_connection(("127.0.0.1", port(w)), timeout=10) as raw:
            try:
                with tls12.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    outcome["tls12"] = f"handshake completed ({tls.version()})"
            except ssl.SSLError as exc:
                outcome["tls12"] = None
                outcome["tls12_alert"] = exc.reason
        outcome["tls13_version"], outcome["tls13"] = None, b""
        try:
            with (socket.create_connection(("127.0.0.1", port(w)), timeout=10) as raw,
                  w.pki.client_context(issued).wrap_socket(raw, server_hostname="127.0.0.1") as tls):
                outcome["tls13_version"] = tls.version()  # the client's handshake ends first in TLS 1.3
                tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                outcome["tls13"] = tls.recv(65_536)  # b"" once the server closes; its alert raises
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            outcome["tls13_alert"] = getattr(exc, "reason", type(exc).__name__)
        return outcome
    return act


# --------------------------------------------------------------------------- API attacks


def _api(who: str | None, method: str, path: str | Callable[[World], str], **kwargs: Any) -> Callable[[World], Answer]:
    def act(w: World) -> Answer:
        extra = {k: (v(w) if callable(v) else v) for k, v in kwargs.items()}
        return w.api_call(who, method, path(w) if callable(path) else path, **extra)
    return act


def _query_json(grant: str, **extra: Any) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"grant_id": w.grants[grant], "params": {"company_id": w.company_id()}, **extra}


def _signed_api(signer: str, claimed: str | None = None, *, timestamp: int | None = None, body: bytes = b"",
                sent_body: bytes | None = None, method: str = "GET", target: str = "/v1/datasets") -> Callable[[World], Answer]:
    def act(w: World) -> Answer:
        headers = sign_request(w.account(signer), method, target, body, timestamp=timestamp)
        if claimed:
            headers["X-Govshare-Account"] = w.account(claimed).address
        return answer_of(w.api_http.request(method, target, content=sent_body if sent_body is not None else body,
                                            headers={**headers, "Content-Type": "application/json"}))
    return act


def _signed_twice(w: World) -> Answer:
    headers = sign_request(w.account("tax"), "GET", "/v1/datasets")
    first = w.api_http.get("/v1/datasets", headers=headers)
    assert first.status_code == 200, first.text
    return answer_of(w.api_http.get("/v1/datasets", headers=headers))


def _flood_api(w: World) -> None:
    """The flooder's token (an account of no department) spends its whole budget at the API: each
    request counted once the token is proven, then refused (not a member)."""
    with ThreadPoolExecutor(4) as pool:  # four connections at once
        for spent in pool.map(lambda _: w.api_call("flooder", "GET", "/v1/datasets"), range(API_RATE_LIMIT_COUNT)):
            assert (spent.status, spent.body.get("type")) == (403, "urn:govshare:problem:not-a-member"), spent.body


def _revoke(w: World) -> None:
    """The revocable token works, then its table is deleted from the tokens file (replaced atomically)
    while the API runs."""
    works = w.api_call("revocable", "GET", "/v1/datasets")
    assert works.status == 200, works.body
    write_tokens_file(w.tokens_file, {})


def _deep_upload(w: World) -> Answer:
    """TAX's operator uploads a JSON Lines file to its own dataset whose second line nests 30,000
    arrays deep (within the body limit); the service still answers afterwards."""
    upload = b'{"taxpayer_id": "91110000000000000X", "amount": "1"}\n{"taxpayer_id": ' + b"[" * 30_000 + b"]" * 30_000 + b"}\n"
    refused = w.api_call("tax", "POST", f"/v1/datasets/{w.datasets['tax-filings']}/versions",
                         files={"file": ("deep.jsonl", upload, "application/x-ndjson")})
    alive = w.api_http.get("/v1/health")
    assert alive.status_code == 200, alive.text
    return refused


def _slow_clients(w: World) -> dict[str, Any]:
    """At once: a connection that completes its TLS handshake and sends nothing; a slowloris, sending
    a request head a header line at a time (every 0.3 s) and never ending it; and meanwhile an honest
    request. When each of the first two was closed (seconds after its start), and what came back."""
    def tls_connection() -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", w.api_port), timeout=10)
        return w.pki.client_context(w.pki.client).wrap_socket(raw, server_hostname="127.0.0.1")

    def read_until_closed(tls: ssl.SSLSocket, started: float) -> tuple[float, bytes]:
        received = b""
        try:
            while chunk := tls.recv(65_536):
                received += chunk
        except (ssl.SSLError, ConnectionResetError, TimeoutError):
            pass
        return time.monotonic() - started, received

    measured: dict[str, Any] = {}

    def idle() -> None:
        with tls_connection() as tls:
            measured["idle"] = read_until_closed(tls, time.monotonic())

    def slowloris() -> None:
        with tls_connection() as tls:
            started = time.monotonic()
            tls.sendall(b"GET /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sent, received, closed_at = 0, b"", None
            try:
                # a header line every 0.3 s, listening in between, until the service closes or answers
                while closed_at is None and time.monotonic() - started < API_REQUEST_SECONDS + 5:
                    tls.sendall(b"X-Slow-%d: x\r\n" % sent)
                    sent += 1
                    tls.settimeout(0.3)
                    try:
                        chunk = tls.recv(65_536)
                    except TimeoutError:
                        continue
                    received += chunk
                    if not chunk:
                        closed_at = time.monotonic() - started
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                closed_at = time.monotonic() - started
            tls.settimeout(10)
            if closed_at is None:
                closed_at, rest = read_until_closed(tls, started)
                received += rest
            measured["slow"] = (closed_at, received)
            measured["slow_headers_sent"] = sent

    threads = [threading.Thread(target=idle), threading.Thread(target=slowloris)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    honest = w.api_call("tax", "GET", "/v1/datasets")
    for thread in threads:
        thread.join(timeout=API_REQUEST_SECONDS + 15)
    measured["honest"] = honest.status
    return measured


# --------------------------------------------------------------------------- contract attacks


def _entry(w: World, dataset: str = "companies", grant: str = "ok") -> AuditEntry:
    return AuditEntry(w.grants[grant], w.account("tax").address, w.datasets[dataset], 1, Outcome.SERVED, 0,
                      w.consortium.chain.block_number(), secrets.token_bytes(32), secrets.token_bytes(32))


def _append(who: str, first: Callable[[World], int] | None = None) -> Callable[[World], Any]:
    def act(w: World) -> Any:
        signer = w.account(who)
        start = first(w) if first else w.consortium.audit_log.oracle_state(signer.address).last_sequence + 1
        return w.consortium.audit_log.append(signer, start, [_entry(w)])
    return act


def _samr_last(w: World) -> int:
    return w.consortium.audit_log.oracle_state(w.account("samr-oracle").address).last_sequence


def _transact(contract: str, who: str, fn: str, *args: Callable[[World], Any] | Any) -> Callable[[World], Any]:
    """A raw transaction of ``fn(args)`` to ``contract`` from ``who`` (no client-side checks)."""
    def act(w: World) -> Any:
        client = getattr(w.consortium, contract)
        values = [a(w) if callable(a) else a for a in args]
        return client._transact(w.account(who), fn, *values)  # noqa: SLF001 - a raw call on purpose
    return act


def _grant_id(name: str) -> Callable[[World], int]:
    return lambda w: w.grants[name]


def _dataset_id(name: str) -> Callable[[World], int]:
    return lambda w: w.datasets[name]


def _address(name: str) -> Callable[[World], str]:
    return lambda w: w.account(name).address


def _max_decision_age(w: World) -> int:
    return w.consortium.registry.max_decision_age_blocks()


def _old_enough(w: World) -> None:
    """A chain longer than the decision-age bound, so that a decision block beyond it exists."""
    while w.consortium.chain.block_number() <= _max_decision_age(w) + 2:
        w.consortium.chain.rpc.call("evm_mine", [])


def _backdated(w: World) -> int:
    """The youngest decision block the bound refuses for a record in the next block."""
    return w.consortium.chain.block_number() + 1 - _max_decision_age(w) - 1


def _append_backdated(w: World) -> Any:
    """SAMR's oracle anchors, at its next sequence, a SERVED record whose decision block is one block
    older than the consortium's maxDecisionAgeBlocks allows (e.g. decided before a revocation)."""
    entry = AuditEntry(w.grants["ok"], w.account("tax").address, w.datasets["companies"], 1, Outcome.SERVED, 0,
                       _backdated(w), secrets.token_bytes(32), secrets.token_bytes(32))
    return w.consortium.audit_log.append(w.account("samr-oracle"), _samr_last(w) + 1, [entry])


DENIED_TAX = dict(requester="tax", dataset="companies", grant="ok")

CASES: list[Case] = [
    # ---- the oracle's HTTP interface: signatures --------------------------------------------
    Case("ORACLE-SIG-FORGED", "oracle", "query naming TAX's operator as requester, signed by another key",
         _post(_forged), Problem(401, "BAD_SIGNATURE"), Denial(OracleReason.BAD_SIGNATURE, None)),
    Case("ORACLE-SIG-WRONG-CHAIN", "oracle", "query signed in the EIP-712 domain of another chain id (1)",
         _post(lambda w: w.signed(chain_id=1)), Problem(401, "BAD_SIGNATURE"), Denial(OracleReason.BAD_SIGNATURE, None)),
    Case("ORACLE-SIG-WRONG-CONTRACT", "oracle", "query signed for another verifying contract (another deployment)",
         _post(lambda w: w.signed(contract="0x" + "42" * 20)), Problem(401, "BAD_SIGNATURE"),
         Denial(OracleReason.BAD_SIGNATURE, None)),
    Case("ORACLE-SIG-BITFLIP", "oracle", "a valid signature with one bit of r flipped",
         _post(_with_signature(lambda s: bytes([s[0] ^ 1]) + s[1:])), Problem(401, "BAD_SIGNATURE"),
         Denial(OracleReason.BAD_SIGNATURE, None)),
    Case("ORACLE-SIG-HIGH-S", "oracle", "the malleable twin of a valid signature (s' = n - s, v flipped)",
         _post(_with_signature(_high_s)), Problem(401, "BAD_SIGNATURE"), Denial(OracleReason.BAD_SIGNATURE, None)),
    Case("ORACLE-SIG-BAD-V", "oracle", "a signature whose v is 29",
         _post(_with_signature(lambda s: s[:64] + bytes([29]))), Problem(401, "BAD_SIGNATURE"),
         Denial(OracleReason.BAD_SIGNATURE, None)),
    Case("ORACLE-SIG-TRUNCATED", "oracle", "a signature cut to 64 bytes (no v)",
         _post(_with_signature(lambda s: s[:64])), Problem(400), COUNTED),
    # ---- tampered, replayed, late --------------------------------------------------------------
    Case("ORACLE-PARAMS-TAMPERED", "oracle", "parameters changed after signing (paramsHash no longer matches)",
         _post(_params_tampered), Problem(400, "MALFORMED_REQUEST"),
         Denial(OracleReason.MALFORMED_REQUEST, "tax", None, "ok")),
    Case("ORACLE-SALT-TAMPERED", "oracle", "paramsSalt replaced after signing",
         _post(_salt_tampered), Problem(400, "MALFORMED_REQUEST"), Denial(OracleReason.MALFORMED_REQUEST, "tax", None, "ok")),
    Case("ORACLE-FIELDS-TAMPERED", "oracle", "the signed field set widened after signing (signature no longer covers it)",
         _post(_tampered_query(fields=lambda w: str((1 << 7) - 1))), Problem(401, "BAD_SIGNATURE"),
         Denial(OracleReason.BAD_SIGNATURE, None)),
    Case("ORACLE-REPLAY", "oracle", "an answered query sent again byte for byte",
         _replay, Problem(409, "NONCE_REPLAYED"), Denial(OracleReason.NONCE_REPLAYED, **DENIED_TAX), setup=_first_use),
    Case("ORACLE-REPLAY-RESIGNED", "oracle", "a used nonce re-signed over other parameters",
         _replay_new_params, Problem(409, "NONCE_REPLAYED"), Denial(OracleReason.NONCE_REPLAYED, **DENIED_TAX),
         setup=_first_use),
    Case("ORACLE-REPLAY-AFTER-PRUNE", "oracle", "an answered query replayed after its deadline, once its used nonce was pruned",
         _replay, Problem(401, "DEADLINE_PASSED"), Denial(OracleReason.DEADLINE_PASSED, "tax", None, "ok"),
         setup=_used_then_pruned),
    Case("ORACLE-DEADLINE-PAST", "oracle", "a query whose deadline passed a minute ago",
         _post(lambda w: w.signed(deadline=int(time.time()) - 60)), Problem(401, "DEADLINE_PASSED"),
         Denial(OracleReason.DEADLINE_PASSED, "tax", None, "ok")),
    Case("ORACLE-DEADLINE-FAR", "oracle", "a query valid for a year (beyond request_deadline_max_seconds)",
         _post(lambda w: w.signed(ttl=365 * 86_400)), Problem(401, "DEADLINE_PASSED"),
         Denial(OracleReason.DEADLINE_PASSED, "tax", None, "ok")),
    # ---- grants ----------------------------------------------------------------------------------
    Case("ORACLE-FIELD-ESCALATION", "oracle", "signed query asking every field of a grant for four",
         _post(lambda w: w.signed(fields=(1 << 7) - 1)), Problem(403, "FIELDS_NOT_GRANTED"),
         Denial(AccessReason.FIELDS_NOT_GRANTED, **DENIED_TAX)),
    Case("ORACLE-GRANT-REVOKED", "oracle", "query under a revoked grant",
         _post(lambda w: w.signed(grant="revoked")), Problem(403, "REVOKED"),
         Denial(AccessReason.REVOKED, "tax", "companies", "revoked")),
    Case("ORACLE-GRANT-EXPIRED", "oracle", "query under a grant past its expiry (block time)",
         _post(lambda w: w.signed(grant="expiring")), Problem(403, "EXPIRED"),
         Denial(AccessReason.EXPIRED, "tax", "companies", "expiring"), setup=_expire),
    Case("ORACLE-GRANT-NOT-APPROVED", "oracle", "query under a grant only requested, never approved",
         _post(lambda w: w.signed(grant="requested")), Problem(403, "NOT_APPROVED"),
         Denial(AccessReason.NOT_APPROVED, "tax", "companies", "requested")),
    Case("ORACLE-GRANT-UNKNOWN", "oracle", "query under a grant id that does not exist",
         _post(lambda w: w.signed(grant="9999")), Problem(403, "UNKNOWN_GRANT"),
         Denial(AccessReason.UNKNOWN_GRANT, "tax", "companies", 9999)),
    Case("ORACLE-GRANT-QUOTA", "oracle", "query under a grant whose quota is used up on chain",
         _post(lambda w: w.signed(grant="quota1")), Problem(403, "QUOTA_EXHAUSTED"),
         Denial(AccessReason.QUOTA_EXHAUSTED, "tax", "companies", "quota1")),
    Case("ORACLE-GRANT-OTHER-DEPT", "oracle", "TAX's operator uses the grant given to PSB",
         _post(lambda w: w.signed(grant="psb")), Problem(403, "WRONG_DEPARTMENT"),
         Denial(AccessReason.WRONG_DEPARTMENT, "tax", "companies", "psb")),
    Case("ORACLE-DEPT-CLAIMED", "oracle", "TAX's operator claims to act for PSB (requesterDept) under PSB's grant",
         _post(lambda w: w.signed(dept="psb", grant="psb")), Problem(403, "ACCOUNT_NOT_OPERATOR"),
         Denial(AccessReason.ACCOUNT_NOT_OPERATOR, "tax", "companies", "psb")),
    Case("ORACLE-GRANT-DATASET-MISMATCH", "oracle", "a grant on one dataset used for another of the same owner",
         _post(lambda w: w.signed(dataset="annual")), Problem(403, "DATASET_MISMATCH"),
         Denial(AccessReason.DATASET_MISMATCH, "tax", "annual", "ok")),
    Case("ORACLE-DATASET-RETIRED", "oracle", "query of a retired dataset under its (still active) grant",
         _post(lambda w: w.signed(dataset="retired", grant="retired")), Problem(403, "DATASET_RETIRED"),
         Denial(AccessReason.DATASET_RETIRED, "tax", "retired", "retired")),
    Case("ORACLE-NON-MEMBER", "oracle", "an account of no department signs its own query",
         _post(lambda w: w.signed("outsider", dept="tax")), Problem(403, "ACCOUNT_NOT_OPERATOR"),
         Denial(AccessReason.ACCOUNT_NOT_OPERATOR, "outsider", "companies", "ok")),
    Case("ORACLE-WRONG-ROLE", "oracle", "TAX's ORACLE account (not an OPERATOR) signs a query under TAX's grant",
         _post(lambda w: w.signed("tax-oracle")), Problem(403, "ACCOUNT_NOT_OPERATOR"),
         Denial(AccessReason.ACCOUNT_NOT_OPERATOR, "tax-oracle", "companies", "ok")),
    # ---- datasets and parameters ------------------------------------------------------------------
    Case("ORACLE-DATASET-UNKNOWN", "oracle", "query of a dataset id in no catalog",
         _post(lambda w: w.signed(dataset="9999")), Problem(404, "UNKNOWN_DATASET"),
         Denial(OracleReason.UNKNOWN_DATASET, "tax", None, "ok")),
    Case("ORACLE-DATASET-OTHER-DEPT", "oracle", "PSB's dataset asked of SAMR's oracle",
         _post(lambda w: w.signed(dataset="residents")), Problem(404, "UNKNOWN_DATASET"),
         Denial(OracleReason.UNKNOWN_DATASET, "tax", None, "ok")),
    Case("ORACLE-PARAM-UNKNOWN", "oracle", "a parameter the dataset does not accept (signed honestly)",
         _post(lambda w: w.signed(params={"company_id": w.company_id(), "sql": "1=1; DROP TABLE companies"})),
         Problem(400, "MALFORMED_REQUEST"), Denial(OracleReason.MALFORMED_REQUEST, "tax", "companies", "ok")),
    # ---- bodies that are not a signed query ---------------------------------------------------
    Case("ORACLE-JSON-MALFORMED", "oracle", "a body that is not JSON", _post(lambda w: b"{not json"), Problem(400), COUNTED),
    Case("ORACLE-JSON-NOT-OBJECT", "oracle", "a JSON array instead of an object", _post(lambda w: b"[1, 2, 3]"),
         Problem(400), COUNTED),
    Case("ORACLE-JSON-TRUNCATED", "oracle", "a signed body cut in half",
         _post(lambda w: json.dumps(w.signed().to_json()).encode()[:200]), Problem(400), COUNTED),
    Case("ORACLE-JSON-EXTRA-MEMBER", "oracle", "a signed body with an extra member (\"admin\": true)",
         _post(lambda w: {**w.signed().to_json(), "admin": True}), Problem(400), COUNTED),
    Case("ORACLE-JSON-UINT-OVERFLOW", "oracle", "a query whose fields member is 2**256",
         _post(_tampered_query(fields=str(1 << 256))), Problem(400), COUNTED),
    Case("ORACLE-JSON-PARAMS-NOT-STRINGS", "oracle", "a parameter value that is an object",
         _post(lambda w: {**w.signed().to_json(), "params": {"company_id": {"$ne": ""}}}), Problem(400), COUNTED),
    Case("ORACLE-JSON-TOO-MANY-PARAMS", "oracle", "33 parameters (the limit is 32)",
         _post(lambda w: {**w.signed().to_json(), "params": {f"p{i}": "x" for i in range(33)}}), Problem(400), COUNTED),
    Case("ORACLE-BODY-OVERSIZED", "oracle", "a 70 kB body (max_request_bytes is 64 KiB)", _post(_oversized),
         Problem(413), NO_RECORD),
    Case("ORACLE-HEADER-HUGE", "oracle", "a 20 kB header (the head limit is 16 KiB)", _huge_header, Problem(431), NO_RECORD),
    Case("ORACLE-HEADERS-MANY", "oracle", "150 small headers (at most 100 header fields)",
         lambda w: w.post_query(w.signed().to_json(), {f"X-H{i}": "v" for i in range(150)}), Problem(431), NO_RECORD),
    Case("ORACLE-JSON-DEEP-NESTING", "oracle", "a query body nested 30,000 arrays deep (within max_request_bytes)",
         _post(lambda w: b"[" * 30_000 + b"]" * 30_000), Problem(400), COUNTED),
    Case("ORACLE-CONTENT-TYPE-FORM", "oracle", "a form-encoded body (application/x-www-form-urlencoded)",
         _post(lambda w: b"query=1&signature=2", **{"Content-Type": "application/x-www-form-urlencoded"}), Problem(400),
         COUNTED),
    Case("ORACLE-METHOD-GET", "oracle", "GET on the query endpoint", _wrong_method, Problem(405), NO_RECORD),
    # ---- volume and transport ---------------------------------------------------------------------
    Case("ORACLE-RATE-LIMITED", "oracle", f"one signed query more than an account may send in an hour ({ORACLE_RATE_LIMIT_COUNT})",
         _post(lambda w: w.signed("flooder", dept="tax")), Problem(429, "RATE_LIMITED", retry_after=True),
         Denial(OracleReason.RATE_LIMITED, "flooder", None, "ok"), setup=_flood_oracle),
    Case("ORACLE-TLS-NO-CLIENT-CERT", "oracle", "a client without a certificate (mutual TLS required)",
         _handshake(lambda w: w.oracle_port, None), Handshake()),
    Case("ORACLE-TLS-OTHER-CA", "oracle", "a client with a certificate another CA issued (mutual TLS required)",
         _handshake(lambda w: w.oracle_port, "impostor"), Handshake()),
    Case("ORACLE-RESULT-UNSIGNED", "oracle", "fetching an on-chain request's answer without a signature",
         _result_unsigned, Problem(401), NO_RECORD),
    Case("ORACLE-RESULT-FORGED", "oracle", "fetching an answer with a signature that recovers to no one",
         _result_forged, Problem(401), NO_RECORD),
    # ---- the API --------------------------------------------------------------------------------
    Case("API-NO-CREDENTIALS", "api", "reading the catalog without credentials", _api(None, "GET", "/v1/datasets"),
         Problem(401, slug="unauthenticated")),
    Case("API-TOKEN-WRONG", "api", "a bearer token that is not configured",
         lambda w: _api(None, "GET", "/v1/datasets", headers={"Authorization": "Bearer " + secrets.token_urlsafe(32)})(w),
         Problem(401, slug="invalid-token")),
    Case("API-TOKEN-EXPIRED", "api", "a bearer token past its expires_at", _api("expired", "GET", "/v1/datasets"),
         Problem(401, slug="expired-token")),
    Case("API-TOKEN-REVOKED", "api", "a bearer token deleted from the tokens file while the service runs",
         _api("revocable", "GET", "/v1/datasets"), Problem(401, slug="invalid-token"), setup=_revoke),
    Case("API-TOKEN-NON-MEMBER", "api", "a valid token bound to an account of no department",
         _api("outsider", "GET", "/v1/datasets"), Problem(403, slug="not-a-member")),
    Case("API-SIGNED-FORGED", "api", "a signed request claiming TAX's operator, signed by another key",
         _signed_api("outsider", "tax"), Problem(401, slug="invalid-signature")),
    Case("API-SIGNED-STALE", "api", "a signed request an hour old",
         _signed_api("tax", timestamp=int(time.time()) - 3600), Problem(401, slug="stale-signature")),
    Case("API-SIGNED-REPLAY", "api", "a signed request sent twice", _signed_twice, Problem(401, slug="replayed-request")),
    Case("API-SIGNED-BODY-TAMPERED", "api", "a signed query whose body is swapped after signing",
         _signed_api("tax", method="POST", target="/v1/queries", body=b'{"grant_id": 1, "params": {}}',
                     sent_body=b'{"grant_id": 2, "params": {}}'), Problem(401, slug="invalid-signature")),
    Case("API-JSON-MALFORMED", "api", "POST /v1/queries with a body that is not JSON",
         _api("tax", "POST", "/v1/queries", content=b"{not json", headers={"Content-Type": "application/json"}),
         Problem(400, slug="malformed-json")),
    Case("API-JSON-EXTRA-MEMBER", "api", "a query with an unknown member",
         _api("tax", "POST", "/v1/queries", json=lambda w: {**_query_json("ok")(w), "sign_as": "0x" + "00" * 20}),
         Problem(422, slug="invalid-request")),
    Case("API-PARAMS-NOT-STRINGS", "api", "a query parameter that is an object",
         _api("tax", "POST", "/v1/queries", json=lambda w: {"grant_id": w.grants["ok"], "params": {"company_id": {"$ne": 1}}}),
         Problem(422, slug="invalid-request")),
    Case("API-CONTENT-TYPE-TEXT", "api", "a JSON query sent as text/plain",
         _api("tax", "POST", "/v1/queries", content=lambda w: json.dumps(_query_json("ok")(w)).encode(),
              headers={"Content-Type": "text/plain"}), Problem(422, slug="invalid-request")),
    Case("API-JSON-DEEP-NESTING", "api",
         "an unauthenticated body nested 30,000 arrays deep (100,000 killed the service: SIGSEGV)",
         _api(None, "POST", "/v1/queries", content=b"[" * 30_000 + b"]" * 30_000, headers={"Content-Type": "application/json"}),
         Problem(400, slug="json-too-deep")),
    Case("API-PARAM-LONE-SURROGATE", "api", "a query parameter holding a lone surrogate (\\ud800; it was a 502)",
         _api("tax", "POST", "/v1/queries", headers={"Content-Type": "application/json"},
              content=lambda w: ('{"grant_id": %d, "params": {"company_id": "\\ud800"}}' % w.grants["ok"]).encode()),
         Problem(400, slug="invalid-unicode")),
    Case("API-HEADER-HUGE", "api", "a 100 kB header (the head limit is 16 KiB)",
         _api(None, "GET", "/v1/health", headers={"X-Padding": "a" * 100_000}), Problem(431)),
    Case("API-UPLOAD-DEEP-NESTING", "api", "a JSON Lines version upload whose second line nests 30,000 arrays deep",
         _deep_upload, Problem(422, slug="invalid-data-file",
                               detail="line 2: the record nests 30001 levels deep; at most 64 are accepted")),
    Case("API-SLOW-CLIENTS", "api", "a connection that never sends a byte; a slowloris sending its head a line at a time",
         _slow_clients, Closed(API_IDLE_SECONDS, API_REQUEST_SECONDS)),
    Case("API-RATE-LIMITED", "api", f"one request more than an account may make in an hour ({API_RATE_LIMIT_COUNT})",
         _api("flooder", "GET", "/v1/datasets"), Problem(429, slug="rate-limited", retry_after=True), setup=_flood_api),
    Case("API-TLS-NO-CLIENT-CERT", "api", "a client without a certificate (mutual TLS required)",
         _handshake(lambda w: w.api_port, None), Handshake()),
    Case("API-BODY-OVERSIZED", "api", "a 100 kB body (the service's max_body_bytes is 64 KiB)",
         _api("tax", "POST", "/v1/queries", content=b"{" + b" " * 100_000 + b"}", headers={"Content-Type": "application/json"}),
         Problem(413, slug="payload-too-large")),
    Case("API-DATASET-UNKNOWN", "api", "reading a dataset id in no catalog", _api("tax", "GET", "/v1/datasets/9999"),
         Problem(404, slug="unknown-dataset")),
    Case("API-GRANT-UNKNOWN", "api", "querying under a grant id that does not exist",
         _api("tax", "POST", "/v1/queries", json=lambda w: {"grant_id": 9999, "params": {}}),
         Problem(404, slug="unknown-grant")),
    Case("API-GRANT-OTHER-DEPT", "api", "TAX's caller queries under PSB's grant",
         _api("tax", "POST", "/v1/queries", json=_query_json("psb")), Problem(403, slug="not-grantee")),
    Case("API-FIELD-ESCALATION", "api", "TAX's caller asks for fields its grant does not give",
         _api("tax", "POST", "/v1/queries", json=lambda w: {**_query_json("ok")(w), "fields": ["legal_representative"]}),
         Problem(403, "FIELDS_NOT_GRANTED", "oracle-refused"), Denial(AccessReason.FIELDS_NOT_GRANTED, **DENIED_TAX)),
    Case("API-GRANT-REVOKED", "api", "TAX's caller queries under its revoked grant",
         _api("tax", "POST", "/v1/queries", json=_query_json("revoked")), Problem(403, "REVOKED", "oracle-refused"),
         Denial(AccessReason.REVOKED, "tax", "companies", "revoked")),
    Case("API-PARAM-UNKNOWN", "api", "TAX's caller sends a parameter the dataset does not accept",
         _api("tax", "POST", "/v1/queries", json=lambda w: {"grant_id": w.grants["ok"], "params": {"url": "http://169.254.169.254/"}}),
         Problem(422, "MALFORMED_REQUEST", "oracle-refused"), Denial(OracleReason.MALFORMED_REQUEST, **DENIED_TAX)),
    Case("API-WRONG-ROLE-APPROVE", "api", "TAX's caller approves a grant on SAMR's dataset (only SAMR may)",
         _api("tax", "POST", lambda w: f"/v1/grants/{w.grants['requested']}/approve", json={}), Problem(403, slug="wrong-role")),
    Case("API-NO-KEY-FOR-ACCOUNT", "api", "PSB's caller asks for a write the service holds no key for",
         _api("psb", "POST", "/v1/queries", json=_query_json("psb")), Problem(403, slug="no-key-for-account")),
    # ---- direct contract transactions --------------------------------------------------------------
    Case("CHAIN-APPEND-OUTSIDER", "contract", "appendRecords from an account of no department",
         _append("outsider", lambda w: 1), Reverts("AuditLogNotOracle", lambda w: {"caller": w.account("outsider").address})),
    Case("CHAIN-APPEND-OPERATOR", "contract", "appendRecords from SAMR's operator (OPERATOR, not ORACLE)",
         _append("samr", lambda w: 1), Reverts("AuditLogNotOracle", lambda w: {"caller": w.account("samr").address})),
    Case("CHAIN-APPEND-FOREIGN-DATASET", "contract", "TAX's oracle anchors a record of SAMR's dataset",
         _append("tax-oracle"), Reverts("AuditLogDatasetNotOwned", lambda w: {
             "sequence": w.consortium.audit_log.oracle_state(w.account("tax-oracle").address).last_sequence + 1,
             "datasetId": w.datasets["companies"], "oracleDept": w.dept("tax")})),
    Case("CHAIN-APPEND-SEQUENCE-REPLAY", "contract", "SAMR's oracle re-sends its first sequence number",
         _append("samr-oracle", lambda w: 1), Reverts("AuditLogSequenceMismatch", lambda w: {
             "oracle": w.account("samr-oracle").address, "expected": _samr_last(w) + 1, "given": 1})),
    Case("CHAIN-APPEND-SEQUENCE-GAP", "contract", "SAMR's oracle skips a sequence number",
         _append("samr-oracle", lambda w: _samr_last(w) + 2), Reverts("AuditLogSequenceMismatch", lambda w: {
             "oracle": w.account("samr-oracle").address, "expected": _samr_last(w) + 1, "given": _samr_last(w) + 2})),
    Case("CHAIN-DECISION-BACKDATED", "contract",
         "SAMR's oracle anchors a SERVED record decided one block before maxDecisionAgeBlocks allows",
         _append_backdated, Reverts("AuditLogDecisionTooOld", lambda w: {
             "sequence": _samr_last(w) + 1, "decisionBlock": _backdated(w), "currentBlock": w.consortium.chain.block_number() + 1,
             "maxAgeBlocks": _max_decision_age(w)}), setup=_old_enough),
    Case("CHAIN-RECORD-USE-DIRECT", "contract", "counting a grant's use directly, not through the audit log",
         _transact("grants", "tax", "recordUse", _grant_id("quota1"), _dataset_id("companies"), 5),
         Reverts("AccessGrantsNotAuditLog", lambda w: {"caller": w.account("tax").address})),
    Case("CHAIN-ROLE-DIRECT", "contract", "a committee member grants ORACLE with AccessControl's grantRole",
         _transact("registry", "committee", "grantRole", Role.ORACLE, _address("outsider")),
         Reverts("ConsortiumRegistryDirectRoleChange", lambda w: {"account": w.account("outsider").address, "role": Role.ORACLE})),
    Case("CHAIN-ADMIT-DIRECT", "contract", "a committee member calls admitDepartment without a vote",
         _transact("registry", "committee", "admitDepartment", "Rogue", b"ROGUE".ljust(32, b"\0"), False,
                   lambda w: [w.account("outsider").address], [Role.OPERATOR]),
         Reverts("GovernanceOnlySelf", lambda w: {"caller": w.account("committee").address})),
    Case("CHAIN-PROPOSE-OUTSIDER", "contract", "an account of no department proposes admitting itself",
         _transact("registry", "outsider", "propose", lambda w: w.consortium.registry.add_committee_member_call(w.account("outsider").address), "me"),
         Reverts("GovernanceNotCommitteeMember", lambda w: {"account": w.account("outsider").address})),
    Case("CHAIN-BIND-NON-OPERATOR", "contract", "SAMR's oracle account binds a new ORACLE account (only an operator may)",
         _transact("registry", "samr-oracle", "addDepartmentAccount", _address("outsider"), Role.ORACLE),
         Reverts("ConsortiumRegistryNotDepartmentOperator", lambda w: {"caller": w.account("samr-oracle").address,
                                                                        "deptId": w.dept("samr")})),
    Case("CHAIN-REGISTER-OUTSIDER", "contract", "an account of no department registers a dataset",
         _transact("catalog", "outsider", "registerDataset", "fake", ["a"], 0, 0),
         Reverts("DataCatalogNotOperator", lambda w: {"caller": w.account("outsider").address})),
    Case("CHAIN-PUBLISH-NOT-OWNER", "contract", "TAX's operator publishes a version of SAMR's dataset",
         _transact("catalog", "tax", "publishVersion", _dataset_id("companies"), b"\1" * 32, b"\2" * 32, 1),
         Reverts("DataCatalogNotOwner", lambda w: {"datasetId": w.datasets["companies"], "caller": w.account("tax").address,
                                                    "ownerDept": w.dept("samr")})),
    Case("CHAIN-APPROVE-NOT-OWNER", "contract", "TAX's operator approves its own request on SAMR's dataset",
         _transact("grants", "tax", "approveGrant", _grant_id("requested"), lambda w: w.tax_fields(), 0, 86_400, 10),
         Reverts("AccessGrantsNotOwnerOperator", lambda w: {"grantId": w.grants["requested"], "caller": w.account("tax").address})),
    Case("CHAIN-REVOKE-REQUESTER", "contract", "PSB's operator revokes TAX's grant on SAMR's dataset",
         _transact("grants", "psb", "revokeGrant", _grant_id("ok"), "spite"),
         Reverts("AccessGrantsNotOwnerOperator", lambda w: {"grantId": w.grants["ok"], "caller": w.account("psb").address})),
    Case("CHAIN-REQUEST-GRANT-OUTSIDER", "contract", "an account of no department requests a grant",
         _transact("grants", "outsider", "requestGrant", _dataset_id("companies"), 1, 0, "mine", 86_400, 1, 0),
         Reverts("AccessGrantsNotOperator", lambda w: {"caller": w.account("outsider").address})),
    Case("CHAIN-REQUEST-QUERY-FOREIGN-KEY", "contract", "requestQuery with another account's public key",
         lambda w: w.consortium.queries.request_query(w.account("tax"), w.grants["ok"], w.tax_fields(), b"\7" * 64,
                                                      public_key_of(w.account("samr"))),
         Reverts("QueryRequestsPublicKeyMismatch", lambda w: {"caller": w.account("tax").address,
                                                              "keyAddress": w.account("samr").address})),
    Case("CHAIN-REQUEST-QUERY-OUTSIDER", "contract", "requestQuery from an account of no department",
         lambda w: w.consortium.queries.request_query(w.account("outsider"), w.grants["ok"], w.tax_fields(), b"\7" * 64,
                                                      public_key_of(w.account("outsider"))),
         Reverts("QueryRequestsNotOperator", lambda w: {"caller": w.account("outsider").address})),
]



# --------------------------------------------------------------------------- the CLI's input files


def _write(w: World, name: str, content: str | bytes) -> str:
    path = w.files / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _rows(count: int = 3) -> list[dict[str, Any]]:
    from devtools.sample_data import companies
    return companies()[:count]


def _jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _publish(name: str, content: Callable[[], str | bytes]) -> Callable[[World], list[str]]:
    """``govshare dataset publish COMPANIES --file NAME`` as SAMR's operator (the owner)."""
    return lambda w: ["dataset", "publish", str(w.datasets["companies"]), "--file", _write(w, name, content()),
                      "--key-file", str(w.keys["samr"])]


def _with_key(name: str, content: Callable[[World], str | bytes], *, password: str | None = None,
              mode: int = 0o600) -> Callable[[World], list[str]]:
    """``govshare grant revoke OK`` as SAMR's operator, from the keystore file ``content`` makes
    (private to its owner unless ``mode`` says otherwise: a key others may read is refused first)."""
    def act(w: World) -> list[str]:
        key_file = _write(w, name, content(w))
        Path(key_file).chmod(mode)
        args = ["grant", "revoke", str(w.grants["ok"]), "--reason", "stolen key", "--key-file", key_file]
        return args + (["--password-file", _write(w, name + ".password", password)] if password is not None else [])
    return act


def _keystore(w: World) -> str:
    return w.keys["samr"].read_text()


def _mac_tampered(w: World) -> str:
    data = json.loads(_keystore(w))
    text = data["crypto"]["ciphertext"]
    data["crypto"]["ciphertext"] = ("0" if text[0] != "0" else "1") + text[1:]
    return json.dumps(data)


def _oracle_config(name: str, base_url: str = "http://127.0.0.1:9", extra: str = "", top: str = "",
                   key_file: Callable[[World], Path] | None = None) -> Callable[[World], list[str]]:
    """``govshare oracle serve --config NAME``: an otherwise valid config of SAMR's oracle (its key:
    SAMR operator's keystore unless ``key_file`` makes another; its outbox: NAME.sqlite)."""
    def act(w: World) -> list[str]:
        key = key_file(w) if key_file else w.keys["samr"]
        text = (f'rpc_url = "{w.consortium.chain.url}"\n{top}department = "SAMR"\nkey_file = "{key}"\n'
                f'outbox = "{w.files / (name + ".sqlite")}"\n'
                f'[datasets.{w.datasets["companies"]}]\nbase_url = "{base_url}"\npath = "/companies"\n'
                f'params = ["company_id"]\n{extra}')
        return ["oracle", "serve", "--config", _write(w, name, text)]
    return act


def _readable_key(w: World) -> Path:
    """A copy of a valid keystore that group and others can read (mode 0644)."""
    path = Path(_write(w, "readable-oracle.json", _keystore(w)))
    path.chmod(0o644)
    return path


def _tampered_outbox(name: str) -> Callable[[World], list[str]]:
    """``oracle serve`` on an outbox its key wrote and sealed (two records not on chain), whose first
    record was then rewritten with sqlite3 while the oracle was stopped (SERVED made DENIED)."""
    def act(w: World) -> list[str]:
        args = _oracle_config(name, top=f'manifest = "{w.cli_env["GOVSHARE_MANIFEST"]}"\n')(w)
        signer, c = w.account("samr"), w.consortium
        outbox = Outbox(w.files / (name + ".sqlite"))
        outbox.bind({"oracle": signer.address, "chain_id": str(c.chain.chain_id), "audit_log": c.deployment.addresses["AuditLog"]},
                    c.audit_log.oracle_state(signer.address).last_sequence, c.audit_log.oracle_state(signer.address).head,
                    seal_key=signer.derive_key(SEAL_KEY_LABEL))
        for outcome in (Outcome.SERVED, Outcome.DENIED):
            outbox.record(AuditEntry(w.grants["ok"], w.account("tax").address, w.datasets["companies"], 1, outcome,
                                     0 if outcome == Outcome.SERVED else int(AccessReason.REVOKED), c.chain.block_number(),
                                     secrets.token_bytes(32), secrets.token_bytes(32) if outcome == Outcome.SERVED else ZERO_HASH),
                          request_salt=secrets.token_bytes(32), response_salt=None)
        outbox.close()
        db = sqlite3.connect(w.files / (name + ".sqlite"))
        db.execute("UPDATE records SET outcome = ?, reason = ?, response_hash = zeroblob(32) WHERE sequence = 1",
                   (int(Outcome.DENIED), int(OracleReason.SOURCE_UNAVAILABLE)))
        db.commit()
        db.close()
        return args
    return act


def _receipts(name: str, make: Callable[[World], dict[str, Any]]) -> Callable[[World], list[str]]:
    """``govshare audit verify --receipts DIR`` over a directory holding the one receipt ``make`` makes."""
    def act(w: World) -> list[str]:
        directory = w.files / name
        directory.mkdir()
        (directory / "receipt.json").write_text(json.dumps(make(w)))
        return ["audit", "verify", "--receipts", str(directory)]
    return act


def _receipt_edited(w: World) -> dict[str, Any]:
    """The receipt of quota1's served access, edited by its holder to say the access was denied."""
    return {**w.served_receipt, "outcome": int(Outcome.DENIED), "reason": int(AccessReason.REVOKED)}


def _receipt_of_another_record(w: World) -> dict[str, Any]:
    """A receipt the oracle signed (its test key) for a DENIED record on chain, saying SERVED: the oracle
    released data and anchored a denial (a well-formed receipt, consistent in itself)."""
    denied = Receipt.from_dict(w.denied_receipt)
    served = {**denied.body(), "outcome": int(Outcome.SERVED), "reason": int(AccessReason.GRANTED),
              "response_hash": "0x" + secrets.token_bytes(32).hex(), "response_salt": "0x" + secrets.token_bytes(32).hex()}
    entry = Receipt(**served, signature="").entry()
    served["record_hash"] = "0x" + entry.record_hash().hex()
    served["chain_head"] = "0x" + chain_step(bytes.fromhex(denied.previous_head[2:]), record_id(denied.oracle, denied.sequence),
                                             entry).hex()
    return Receipt.signed(w.account("samr-oracle"), **served).as_dict()


def _api_config(name: str, body: str) -> Callable[[World], list[str]]:
    """``govshare api serve --config NAME``."""
    def act(w: World) -> list[str]:
        return ["api", "serve", "--config", _write(w, name, f'rpc_url = "{w.consortium.chain.url}"\n{body}')]
    return act


CASES += [
    Case("CLI-DATA-JSON-MALFORMED", "cli", "a data file whose second line is cut JSON",
         _publish("cut.jsonl", lambda: _jsonl(_rows(1)) + '{"company_id": "91'), Exit(1, "line 2")),
    Case("CLI-DATA-DEEP-NESTING", "cli", "a data file whose second line nests 100,000 arrays deep (it crashed the CLI)",
         _publish("deep.jsonl", lambda: _jsonl(_rows(1)) + '{"company_id": ' + "[" * 100_000 + "]" * 100_000 + "}\n"),
         Exit(1, "line 2: the record nests 100001 levels deep")),
    Case("CLI-DATA-FLOAT", "cli", "a data file with an inexact number (no canonical form to hash)",
         _publish("float.jsonl", lambda: _jsonl([_rows(1)[0], {**_rows(2)[1], "registered_capital": 1.5}])),
         Exit(1, "line 2: the number 1.5 is not exact")),
    Case("CLI-DATA-FIELD-MISSING", "cli", "a record without one of the dataset's fields",
         _publish("missing.jsonl", lambda: _jsonl([{k: v for k, v in _rows(1)[0].items() if k != "status"}])), Exit(1, "line 1")),
    Case("CLI-DATA-FIELD-EXTRA", "cli", "a CSV with a column the dataset does not have",
         _publish("extra.csv", lambda: ",".join([*_rows(1)[0], "password"]) + "\n" + ",".join([*map(str, _rows(1)[0].values()), "x"]) + "\n"),
         Exit(1, "password")),
    Case("CLI-DATA-NOT-OBJECT", "cli", "a JSON Lines record that is an array",
         _publish("array.jsonl", lambda: "[1, 2, 3]\n"), Exit(1, "line 1")),
    Case("CLI-DATA-NOT-UTF8", "cli", "a data file that is not UTF-8",
         _publish("latin1.jsonl", lambda: _jsonl(_rows(1)).encode("utf-8") + b'{"name": "\xff\xfe"}\n'), Exit(1, "is not UTF-8")),
    Case("CLI-KEY-WRONG-PASSWORD", "cli", "a keystore opened with the wrong password",
         _with_key("samr-copy.json", _keystore, password="hunter2"),
         Exit(1, "samr-copy.json: wrong password or corrupted file")),
    Case("CLI-KEY-TRUNCATED", "cli", "a keystore cut in half",
         _with_key("half.json", lambda w: _keystore(w)[: len(_keystore(w)) // 2]), Exit(1, "half.json is not JSON")),
    Case("CLI-KEY-MAC-TAMPERED", "cli", "a keystore whose ciphertext was altered (MAC no longer matches)",
         _with_key("tampered.json", _mac_tampered), Exit(1, "tampered.json: wrong password or corrupted file")),
    Case("CLI-KEY-NOT-KEYSTORE", "cli", "a key file that is JSON but no keystore",
         _with_key("empty.json", lambda w: "{}"), Exit(1, "empty.json is not a Web3 Secret Storage (v3) keystore")),
    Case("CLI-KEY-WORLD-READABLE", "cli", "a valid keystore that group and others can read (mode 0644)",
         _with_key("readable.json", _keystore, mode=0o644),
         Exit(1, "readable.json is accessible by group or others (mode 0644)")),
    Case("CLI-ORACLE-KEY-WORLD-READABLE", "cli", "an oracle whose key file group and others can read (mode 0644)",
         _oracle_config("readable-key.toml", key_file=_readable_key),
         Exit(1, "readable-oracle.json is accessible by group or others (mode 0644)")),
    Case("CLI-ORACLE-OUTBOX-TAMPERED", "cli", "an oracle restarted on its outbox after a record not yet on chain was rewritten",
         _tampered_outbox("tampered-outbox.toml"),
         Exit(1, "the records 1..2 not yet on chain no longer hash to the head the oracle sealed")),
    Case("CLI-AUDIT-RECEIPT-EDITED", "cli", "a served access's receipt edited to say it was denied",
         _receipts("receipt-edited", _receipt_edited),
         Exit(1, "FAILED: 1 violation(s): receipt_not_from_oracle 1", stream="stdout")),
    Case("CLI-AUDIT-RECEIPT-RECORD-ALTERED", "cli", "a receipt the oracle signed saying SERVED, for a record on chain that says DENIED",
         _receipts("receipt-altered", _receipt_of_another_record),
         Exit(1, "FAILED: 1 violation(s): receipt_record_altered 1", stream="stdout")),
    Case("CLI-ORACLE-SOURCE-FILE-URL", "cli", "an oracle config whose department API is file:///etc/passwd",
         _oracle_config("file-url.toml", "file:///etc/passwd"), Exit(1, "base_url: must be an http or https URL with a host")),
    Case("CLI-ORACLE-SOURCE-GOPHER", "cli", "an oracle config whose department API is gopher:// to a local Redis",
         _oracle_config("gopher.toml", "gopher://127.0.0.1:6379/_FLUSHALL"),
         Exit(1, "base_url: must be an http or https URL with a host")),
    Case("CLI-ORACLE-SOURCE-CREDENTIALS", "cli", "a department API URL with credentials to a metadata service",
         _oracle_config("creds.toml", "http://admin:pw@169.254.169.254"), Exit(1, "base_url: must not hold credentials")),
    Case("CLI-ORACLE-SOURCE-QUERY", "cli", "a department API URL carrying its own query string",
         _oracle_config("query.toml", "http://169.254.169.254/latest?role=admin"), Exit(1, "base_url: must not have a query or a fragment")),
    Case("CLI-ORACLE-SOURCE-BAD-PORT", "cli", "a department API URL with port 99999",
         _oracle_config("port.toml", "http://127.0.0.1:99999"), Exit(1, "base_url: not a valid URL: Port out of range")),
    Case("CLI-ORACLE-UNKNOWN-KEY", "cli", "an oracle config asking to follow redirects (no such setting)",
         _oracle_config("redirects.toml", extra="follow_redirects = true\n"), Exit(1, "follow_redirects")),
    Case("CLI-ORACLE-RPC-FILE-URL", "cli", "an oracle config whose chain is file:///",
         lambda w: _oracle_rpc(w), Exit(1, "rpc_url: must be an http or https URL with a host")),
    Case("CLI-ORACLE-NOT-TOML", "cli", "an oracle config that is not TOML",
         lambda w: ["oracle", "serve", "--config", _write(w, "not.toml", "[datasets.1\nbase_url = ")], Exit(1, "not.toml: not valid TOML")),
    Case("CLI-API-ORACLE-URL-FILE", "cli", "an API config routing SAMR's queries to file:///etc/passwd",
         _api_config("api-file.toml", '[oracle_urls]\nSAMR = "file:///etc/passwd"\n'), Exit(1, "oracle_urls: Value error, oracle URL of SAMR must start with http:// or https://")),
    Case("CLI-API-SECRET-IN-FILE", "cli", "an API config holding a keystore password",
         _api_config("api-secret.toml", 'password = "hunter2"\n'), Exit(1, "password: unknown key; secrets are never in this file")),
    Case("CLI-API-PLACEHOLDER-TOKEN", "cli", "an API config with the example's all-zero token hash",
         _api_config("api-zero.toml", f'[[tokens]]\nlabel = "x"\naccount = "0x{"11" * 20}"\nsha256 = "{"0" * 64}"\n'),
         Exit(1, "token x is a well-known placeholder")),
]


def _oracle_rpc(w: World) -> list[str]:
    args = _oracle_config("rpc.toml")(w)
    path = Path(args[-1])
    path.write_text(path.read_text().replace(f'rpc_url = "{w.consortium.chain.url}"', 'rpc_url = "file:///etc/passwd"'))
    return args


# --------------------------------------------------------------------------- the table in SECURITY.md


def table_row(case: Case) -> str:
    """The case's row in SECURITY.md's table: id, surface, attack, expected refusal, evidence."""
    from ledger.contracts.audit_log import reason_name
    r, e = case.refusal, case.evidence
    if isinstance(r, Problem):
        refusal = f"{r.status}" + (f" `{r.reason}`" if r.reason else "") + (f" `{r.slug}`" if r.slug else "")
    elif isinstance(r, Exit):
        refusal = f"exit {r.code}: “{r.says}”"
    elif isinstance(r, Reverts):
        refusal = f"`{r.error}`"
    elif isinstance(r, Handshake):
        refusal = "TLS handshake refused: no HTTP exchanged"
    else:
        refusal = f"closed unanswered: idle after {r.idle:g} s, a slow request after {r.slow:g} s"
    if isinstance(r, Problem) and r.retry_after:
        refusal += " with Retry-After"
    if isinstance(e, Denial):
        evidence = f"DENIED record, reason {int(e.reason)} `{reason_name(int(e.reason))}`, on chain"
    elif e.kind == "counted":
        evidence = "no record; malformed-query counter +1"
    elif case.surface == "contract":
        evidence = "no block mined; state unchanged"
    elif case.surface == "cli":
        evidence = "no transaction; state unchanged"
    else:
        evidence = "no record; state unchanged"
    return f"| `{case.id}` | {case.surface} | {case.attack.replace('|', '/')} | {refusal} | {evidence} |"


if __name__ == "__main__":  # `python -m tests.security.cases`: the rows for SECURITY.md's table
    for _case in CASES:
        print(table_row(_case))
