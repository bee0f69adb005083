"""QueryRequests on a real chain, through ledger.contracts.query_requests.QueryRequestsClient.

Covers the agreement of Python's EIP-712 digest and signature recovery with the contract's
(``hashQuery``, ``recoverQuerySigner``, OpenZeppelin's ECDSA refusals), the on-chain request path
(stored commitment, the event the provider's oracle reads, reading them by provider department) and
fulfilment by the provider's oracle. Every refusal is checked for its exact custom error and
arguments and for changing nothing (no block mined, requests as before).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from ledger.contracts.audit_log import Outcome, record_id
from ledger.contracts.query_requests import MAX_PARAMS_LENGTH, QueryRequest, QueryStatus, public_key_of
from ledger.hashing import keccak
from ledger.keys import generate_signer
from protocol.query import SECP256K1_N, Query, query_digest, recover_query_signer, sign_query
from tests.ledger.contracts.test_grants import _sol_enum, register
from tests.ledger.contracts.test_grants import request as request_grant
from tests.support.assertions import expect_revert

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
FIELDS = 0b011
PARAMS = b"\x04" + b"ECIES ciphertext of the query parameters for the provider's oracle" * 3


def queries_state(consortium, *request_ids: int) -> tuple:
    """Everything a refused QueryRequests call could have changed."""
    return consortium.queries.request_count(), tuple(consortium.queries.request(r) for r in request_ids)


def random_query(rng: random.Random, requester: str) -> Query:
    return Query(
        requester=requester,
        requester_dept=rng.getrandbits(32),
        dataset_id=rng.getrandbits(64),
        grant_id=rng.getrandbits(64),
        fields=rng.getrandbits(256),
        params_hash=rng.randbytes(32),
        nonce=rng.getrandbits(256),
        deadline=rng.getrandbits(64),
    )


@pytest.fixture
def grant(consortium, members) -> int:
    """A grant TAX requested on a SAMR dataset (requested only: the contract decides no access)."""
    return request_grant(consortium, members.tax, register(consortium, members.samr))


@pytest.fixture
def pending(consortium, members, grant) -> int:
    """A pending request of TAX's operator under ``grant``."""
    return consortium.queries.request_query(members.tax.operator, grant, FIELDS, PARAMS, public_key_of(members.tax.operator))


def test_enum_mirrors_solidity() -> None:
    assert _sol_enum(CONTRACTS / "interfaces" / "IQueryRequests.sol", "QueryStatus") == ["None", "Pending", "Fulfilled"]
    assert [s.value for s in QueryStatus] == [0, 1, 2]


# --------------------------------------------------------------------------- EIP-712 agreement


def test_hash_query_equals_python_digest_for_random_queries(consortium) -> None:
    rng = random.Random(20)
    chain_id, address = consortium.chain.chain_id, consortium.queries.address
    for i in range(20):
        q = random_query(rng, to_checksum_address(rng.randbytes(20)))
        if i == 0:  # the extremes of every member
            q = Query(q.requester, (1 << 32) - 1, (1 << 64) - 1, (1 << 64) - 1, (1 << 256) - 1, b"\xff" * 32,
                      (1 << 256) - 1, (1 << 64) - 1)
        assert consortium.queries.hash_query_on_chain(q) == query_digest(q, chain_id, address)


def test_domain_separator_equals_python(consortium) -> None:
    from protocol.query import domain_separator  # noqa: PLC0415

    expected = domain_separator(consortium.chain.chain_id, consortium.queries.address)
    assert consortium.queries.domain_separator_on_chain() == expected


def test_python_signature_recovers_on_chain(consortium, accounts) -> None:
    rng = random.Random(21)
    chain_id, address = consortium.chain.chain_id, consortium.queries.address
    for signer in [accounts[5], generate_signer(), generate_signer()]:
        q = random_query(rng, signer.address)
        sig = sign_query(signer, q, chain_id, address)
        assert consortium.queries.recover_on_chain(q, sig) == signer.address
        assert recover_query_signer(q, sig, chain_id, address) == signer.address
        tampered = Query(**{**q.__dict__, "fields": q.fields ^ 1})
        assert consortium.queries.recover_on_chain(tampered, sig) == recover_query_signer(tampered, sig, chain_id, address)
        assert consortium.queries.recover_on_chain(tampered, sig) != signer.address


def test_chain_refuses_what_python_refuses(consortium, accounts) -> None:
    q = random_query(random.Random(22), accounts[5].address)
    sig = sign_query(accounts[5], q, consortium.chain.chain_id, consortium.queries.address)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high_s = (SECP256K1_N - s).to_bytes(32, "big")
    expect_revert(consortium.chain, lambda: consortium.queries.recover_on_chain(q, r + high_s + bytes([55 - v])),
                  "ECDSAInvalidSignatureS", {"s": high_s})
    expect_revert(consortium.chain, lambda: consortium.queries.recover_on_chain(q, sig[:64] + b"\x01"),
                  "ECDSAInvalidSignature", {})
    expect_revert(consortium.chain, lambda: consortium.queries.recover_on_chain(q, sig[:64]),
                  "ECDSAInvalidSignatureLength", {"length": 64})


# --------------------------------------------------------------------------- requestQuery


def test_request_query_stores_commitment_and_emits(consortium, members, grant) -> None:
    operator = members.tax.operator
    key = public_key_of(operator)
    assert len(key) == 64 and to_checksum_address(keccak(key)[12:]) == operator.address
    result = consortium.queries._transact(operator, "requestQuery", grant, FIELDS, PARAMS, key)
    (event,) = result.logs
    g = consortium.grants.grant(grant)
    assert event.name == "QueryRequested"
    assert event.args == {
        "requestId": 1,
        "providerDept": members.samr.id,
        "requester": operator.address,
        "grantId": grant,
        "datasetId": g.dataset_id,
        "fields": FIELDS,
        "encryptedParams": PARAMS,
        "requesterPublicKey": key,
    }
    assert consortium.queries.request_count() == 1
    assert consortium.queries.request(1) == QueryRequest(
        request_id=1,
        requester=operator.address,
        requester_dept=members.tax.id,
        provider_dept=members.samr.id,
        grant_id=grant,
        dataset_id=g.dataset_id,
        requested_at=consortium.chain.block_timestamp(result.block_number),
        status=QueryStatus.PENDING,
        commitment=keccak(PARAMS),
    )
    second = consortium.queries.request_query(operator, grant, FIELDS, b"\x01" * MAX_PARAMS_LENGTH, key)
    assert second == 2 and consortium.queries.request(2).commitment == keccak(b"\x01" * MAX_PARAMS_LENGTH)


def test_requests_for_reads_the_provider_departments_requests(consortium, members, grant) -> None:
    start = consortium.chain.block_number()
    dataset = register(consortium, members.psb)
    psb_grant = request_grant(consortium, members.samr, dataset)
    tax, samr = members.tax.operator, members.samr.operator
    first = consortium.queries.request_query(tax, grant, FIELDS, PARAMS, public_key_of(tax))
    other = consortium.queries.request_query(samr, psb_grant, 1, b"to PSB", public_key_of(samr))
    third = consortium.queries.request_query(tax, grant, 0b001, b"again", public_key_of(tax))

    to_samr = list(consortium.queries.requests_for(members.samr.id, step=1))  # one block per eth_getLogs
    assert [(r.request_id, r.requester, r.fields, r.encrypted_params) for r in to_samr] == [
        (first, tax.address, FIELDS, PARAMS),
        (third, tax.address, 0b001, b"again"),
    ]
    assert to_samr[0].requester_public_key == public_key_of(tax)
    assert to_samr[0].block_number < to_samr[1].block_number
    assert [r.request_id for r in consortium.queries.requests_for(members.psb.id, start)] == [other]
    assert list(consortium.queries.requests_for(members.tax.id)) == []
    assert list(consortium.queries.requests_for(members.samr.id, to_samr[1].block_number)) == to_samr[1:]


def test_request_does_not_decide_access(consortium, members, grant) -> None:
    """A department that is not the grant's requester may still post: its oracle will deny it."""
    psb = members.psb.operator
    request_id = consortium.queries.request_query(psb, grant, FIELDS, PARAMS, public_key_of(psb))
    stored = consortium.queries.request(request_id)
    assert (stored.requester_dept, stored.provider_dept) == (members.psb.id, members.samr.id)


def test_request_refused_to_non_operators(consortium, members, grant) -> None:
    for account in [members.outsider, members.tax.oracle, members.audit.auditor]:
        expect_revert(
            consortium.chain,
            lambda a=account: consortium.queries.request_query(a, grant, FIELDS, PARAMS, public_key_of(a)),
            "QueryRequestsNotOperator", {"caller": account.address}, lambda: queries_state(consortium),
        )


@pytest.mark.parametrize("offset", [0, 1, 1000])
def test_request_refused_for_unknown_grant(consortium, members, grant, offset: int) -> None:
    unknown = 0 if offset == 0 else grant + offset
    op = members.tax.operator
    expect_revert(
        consortium.chain, lambda: consortium.queries.request_query(op, unknown, FIELDS, PARAMS, public_key_of(op)),
        "QueryRequestsUnknownGrant", {"grantId": unknown}, lambda: queries_state(consortium),
    )


def test_request_refused_with_someone_elses_public_key(consortium, members, grant) -> None:
    op, other = members.tax.operator, members.samr.operator
    expect_revert(
        consortium.chain, lambda: consortium.queries.request_query(op, grant, FIELDS, PARAMS, public_key_of(other)),
        "QueryRequestsPublicKeyMismatch", {"caller": op.address, "keyAddress": other.address},
        lambda: queries_state(consortium),
    )


@pytest.mark.parametrize("mangle", [lambda k: b"\x04" + k, lambda k: k[:63], lambda k: b"", lambda k: k[:33]])
def test_request_refused_with_malformed_public_key(consortium, members, grant, mangle) -> None:
    op = members.tax.operator
    key = mangle(public_key_of(op))
    expect_revert(
        consortium.chain, lambda: consortium.queries.request_query(op, grant, FIELDS, PARAMS, key),
        "QueryRequestsInvalidPublicKeyLength", {"length": len(key)}, lambda: queries_state(consortium),
    )


@pytest.mark.parametrize("size", [0, MAX_PARAMS_LENGTH + 1])
def test_request_refused_with_empty_or_oversized_params(consortium, members, grant, size: int) -> None:
    op = members.tax.operator
    expect_revert(
        consortium.chain, lambda: consortium.queries.request_query(op, grant, FIELDS, b"\x07" * size, public_key_of(op)),
        "QueryRequestsInvalidParamsLength", {"length": size, "max": MAX_PARAMS_LENGTH},
        lambda: queries_state(consortium),
    )


# --------------------------------------------------------------------------- fulfilQuery


def test_provider_oracle_fulfils(consortium, members, pending) -> None:
    oracle = members.samr.oracle
    rid, response_hash = record_id(oracle.address, 1), keccak(b"salted response")
    result = consortium.queries.fulfil(oracle, pending, rid, Outcome.SERVED, response_hash)
    assert [(e.name, e.args) for e in result.logs] == [
        ("QueryFulfilled", {"requestId": pending, "recordId": rid, "outcome": 0, "responseHash": response_hash}),
    ]
    stored = consortium.queries.request(pending)
    assert stored.status is QueryStatus.FULFILLED
    assert stored.commitment == keccak(PARAMS)  # nothing else changes


def test_denial_and_source_failure_fulfil_too(consortium, members, grant) -> None:
    op, oracle = members.tax.operator, members.samr.oracle
    for sequence, outcome in enumerate([Outcome.DENIED, Outcome.SOURCE_FAILURE], start=1):
        request_id = consortium.queries.request_query(op, grant, FIELDS, PARAMS, public_key_of(op))
        result = consortium.queries.fulfil(oracle, request_id, record_id(oracle.address, sequence), outcome, bytes(32))
        assert consortium.queries.event(result, "QueryFulfilled").args["outcome"] == outcome
        assert consortium.queries.request(request_id).status is QueryStatus.FULFILLED


def test_fulfil_refused_to_others_than_the_provider_oracle(consortium, members, pending) -> None:
    for account in [members.tax.oracle, members.psb.oracle, members.samr.operator, members.tax.operator, members.outsider]:
        expect_revert(
            consortium.chain,
            lambda a=account: consortium.queries.fulfil(a, pending, 1, Outcome.SERVED, bytes(32)),
            "QueryRequestsNotProviderOracle",
            {"requestId": pending, "caller": account.address, "providerDept": members.samr.id},
            lambda: queries_state(consortium, pending),
        )


@pytest.mark.parametrize("unknown", [0, 2, 2**256 - 1])
def test_fulfil_refused_for_unknown_request(consortium, members, pending, unknown: int) -> None:
    oracle = members.samr.oracle
    expect_revert(
        consortium.chain, lambda: consortium.queries.fulfil(oracle, unknown, 1, Outcome.SERVED, bytes(32)),
        "QueryRequestsUnknownRequest", {"requestId": unknown}, lambda: queries_state(consortium, pending),
    )
    expect_revert(consortium.chain, lambda: consortium.queries.request(unknown),
                  "QueryRequestsUnknownRequest", {"requestId": unknown})


def test_fulfil_refused_when_already_fulfilled(consortium, members, pending) -> None:
    oracle = members.samr.oracle
    consortium.queries.fulfil(oracle, pending, record_id(oracle.address, 1), Outcome.SERVED, bytes(32))
    expect_revert(
        consortium.chain,
        lambda: consortium.queries.fulfil(oracle, pending, record_id(oracle.address, 2), Outcome.DENIED, bytes(32)),
        "QueryRequestsInvalidStatus", {"requestId": pending, "status": QueryStatus.FULFILLED},
        lambda: queries_state(consortium, pending),
    )


def test_fulfil_refused_with_unknown_outcome(consortium, members, pending) -> None:
    oracle = members.samr.oracle
    expect_revert(
        consortium.chain, lambda: consortium.queries.fulfil(oracle, pending, 1, 3, bytes(32)),
        "QueryRequestsInvalidOutcome", {"requestId": pending, "outcome": 3},
        lambda: queries_state(consortium, pending),
    )


def test_fulfil_refused_for_another_oracles_record(consortium, members, pending) -> None:
    """A fulfilment names the audit record of the access, which must be the fulfilling oracle's own."""
    oracle = members.samr.oracle
    foreign = record_id(members.psb.oracle.address, 1)
    expect_revert(
        consortium.chain, lambda: consortium.queries.fulfil(oracle, pending, foreign, Outcome.SERVED, bytes(32)),
        "QueryRequestsForeignRecord", {"requestId": pending, "recordId": foreign},
        lambda: queries_state(consortium, pending),
    )
