"""The bad-input catalogue, as data: one row per attack, with the surface it enters by, what it
does, the exact refusal expected, and the audit evidence the design promises for it.

Adding a case is adding one row to :data:`CASES` (an ``act`` is a small function of the
:class:`tests.security.world.World`); ``SECURITY.md`` lists every row (a test holds it to that).

Refusals:
  * :class:`Problem`: an HTTP problem with this status, and the oracle's ``reason`` name and/or the
    API's problem-type slug;
  * :class:`Exit`: the ``govshare`` subprocess exits with this code and says this on stderr;
  * :class:`Reverts`: the transaction reverts with this custom error and these arguments.
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
from pathlib import Path
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from api.auth import sign_request
from ledger.contracts.audit_log import AuditEntry, OracleReason, Outcome
from ledger.contracts.grants import AccessReason
from ledger.contracts.query_requests import public_key_of
from ledger.contracts.registry import Role
from protocol.query import SECP256K1_N, SignedQuery, sign_query
from tests.security.world import Answer, World


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Problem:
    status: int
    reason: str | None = None  # the oracle's reason name (``reason`` member of the problem)
    slug: str | None = None  # the API's problem type, urn:govshare:problem:<slug>


@dataclass(frozen=True)
class Exit:
    code: int
    says: str  # a substring of stderr (the key, line or reason at fault)


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
    refusal: Problem | Exit | Reverts
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
        w.consortium.chain.rpc("evm_mine")


def _oversized(w: World) -> bytes:
    body = w.signed().to_json()
    body["params"] = {"company_id": "x" * 70_000}
    return json.dumps(body).encode()


def _huge_header(w: World) -> Answer:
    return w.post_query(w.signed().to_json(), {"X-Padding": "a" * 20_000})


def _wrong_method(w: World) -> Answer:
    from tests.security.world import answer_of
    return answer_of(w.http.get("/v1/query"))


def _result_unsigned(w: World) -> Answer:
    from tests.security.world import answer_of
    return answer_of(w.http.get("/v1/results/1"))


def _result_forged(w: World) -> Answer:
    from tests.security.world import answer_of
    return answer_of(w.http.get("/v1/results/1", headers={"Authorization": f"Govshare {int(time.time())}:0x{'11' * 65}"}))


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
        from tests.security.world import answer_of
        headers = sign_request(w.account(signer), method, target, body, timestamp=timestamp)
        if claimed:
            headers["X-Govshare-Account"] = w.account(claimed).address
        return answer_of(w.api_http.request(method, target, content=sent_body if sent_body is not None else body,
                                            headers={**headers, "Content-Type": "application/json"}))
    return act


def _signed_twice(w: World) -> Answer:
    from tests.security.world import answer_of
    headers = sign_request(w.account("tax"), "GET", "/v1/datasets")
    first = w.api_http.get("/v1/datasets", headers=headers)
    assert first.status_code == 200, first.text
    return answer_of(w.api_http.get("/v1/datasets", headers=headers))


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


def _oracle_config(name: str, base_url: str = "http://127.0.0.1:9", extra: str = "", top: str = "") -> Callable[[World], list[str]]:
    """``govshare oracle serve --config NAME``: an otherwise valid config of SAMR's oracle."""
    def act(w: World) -> list[str]:
        text = (f'rpc_url = "{w.consortium.chain.url}"\n{top}department = "SAMR"\nkey_file = "{w.keys["samr"]}"\n'
                f'outbox = "{w.files / (name + ".sqlite")}"\n'
                f'[datasets.{w.datasets["companies"]}]\nbase_url = "{base_url}"\npath = "/companies"\n'
                f'params = ["company_id"]\n{extra}')
        return ["oracle", "serve", "--config", _write(w, name, text)]
    return act


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
    else:
        refusal = f"`{r.error}`"
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
