"""The on-chain request path end to end: request by transaction, answer by the provider's oracle,
fulfilment on chain, and the requester decrypting its answer; the data never touches the chain."""

from __future__ import annotations

import httpx
from eth_keys import keys
from eth_utils import keccak

from devtools.sample_data import companies
from ledger.contracts.audit_log import Outcome, record_id
from ledger.contracts.query_requests import QueryStatus
from protocol.receipt import receipt_signer
from requester.client import encrypt_params_for, fetch_result
from tests.oracle.conftest import TAX_FIELDS


def _oracle_public_key(url: str, expected: str) -> bytes:
    identity = httpx.get(f"{url}/v1/identity").json()
    public = bytes.fromhex(identity["public_key"][2:])
    assert keccak(public)[12:].hex() == expected[2:].lower()  # the key is the registered oracle's
    return public


def _request_on_chain(consortium, samr_oracle, oracle_address: str, requester, params_for: str, grant: int, fields: int, params: dict) -> int:
    """Encrypt ``params`` to the oracle (bound to ``params_for``'s address) and request by transaction."""
    oracle_key = _oracle_public_key(samr_oracle.url, oracle_address)
    encrypted = encrypt_params_for(oracle_key, params_for, params)
    public = keys.PrivateKey(bytes(requester.account.key)).public_key.to_bytes()
    return consortium.queries.request_query(requester, grant, fields, encrypted, public)


def test_request_by_transaction_is_answered_fulfilled_and_decrypted(consortium, members, published, samr_oracle):
    tax = members.tax.operator
    target = companies()[77]
    oracle_key = _oracle_public_key(samr_oracle.url, members.samr.oracle.address)
    secret_params = {"company_id": target["company_id"]}
    encrypted = encrypt_params_for(oracle_key, tax.address, secret_params)
    tax_public = keys.PrivateKey(bytes(tax.account.key)).public_key.to_bytes()
    request_id = consortium.queries.request_query(tax, published.tax_grant, published.company_fields, encrypted, tax_public)
    # the chain holds no parameter in clear: not in the request event, nor anywhere in the block
    block = consortium.chain.w3.eth.get_block("latest", full_transactions=True)
    assert all(target["company_id"].encode() not in bytes(tx["input"]) for tx in block["transactions"])
    assert samr_oracle.oracle.follower.poll_once() == 1
    assert consortium.queries.request(request_id).status is QueryStatus.FULFILLED
    result = fetch_result(samr_oracle.url, tax, request_id)
    assert result["status"] == 200
    assert result["records"] == [{k: target[k] for k in TAX_FIELDS}]
    receipt = result["receipt"]
    assert receipt_signer(receipt) == members.samr.oracle.address
    # the fulfilment names the audit record, which reaches the chain with the same hashes
    assert samr_oracle.oracle.batcher.anchor_once(force=True)
    (record,) = list(consortium.audit_log.records())
    assert hex(record.record_id) == receipt["record_id"] == hex(record_id(members.samr.oracle.address, 1))
    assert "0x" + record.entry.response_hash.hex() == receipt["response_hash"]
    assert record.entry.requester == tax.address and record.entry.outcome is Outcome.SERVED
    # polling again answers nothing twice
    assert samr_oracle.oracle.follower.poll_once() == 0


def test_only_the_requester_may_fetch_and_only_it_can_read(consortium, members, published, samr_oracle):
    tax = members.tax.operator
    request_id = _request_on_chain(consortium, samr_oracle, members.samr.oracle.address, tax, tax.address,
                                   published.tax_grant, published.company_fields, {"company_id": companies()[8]["company_id"]})
    samr_oracle.oracle.follower.poll_once()
    reply = httpx.get(f"{samr_oracle.url}/v1/results/{request_id}")
    assert reply.status_code == 401
    import pytest

    from requester.client import QueryRefused

    with pytest.raises(QueryRefused) as err:
        fetch_result(samr_oracle.url, members.psb.operator, request_id)
    assert err.value.status == 403


def test_revoked_grant_request_is_denied_recorded_and_fulfilled(consortium, members, published, samr_oracle):
    tax = members.tax.operator
    consortium.grants.revoke(members.samr.operator, published.tax_grant, "ended")
    request_id = _request_on_chain(consortium, samr_oracle, members.samr.oracle.address, tax, tax.address,
                                   published.tax_grant, published.company_fields, {"company_id": companies()[9]["company_id"]})
    samr_oracle.oracle.follower.poll_once()
    result = fetch_result(samr_oracle.url, tax, request_id)
    assert result["status"] == 403 and result["reason"] == "REVOKED" and result["records"] is None
    assert consortium.queries.request(request_id).status is QueryStatus.FULFILLED


def test_params_encrypted_for_another_requester_are_refused(consortium, members, published, samr_oracle):
    """Parameters are bound to the requester's address: replaying someone else's ciphertext fails."""
    tax, psb = members.tax.operator, members.psb.operator
    request_id = _request_on_chain(consortium, samr_oracle, members.samr.oracle.address, tax, psb.address,
                                   published.tax_grant, published.company_fields, {"company_id": companies()[1]["company_id"]})
    samr_oracle.oracle.follower.poll_once()
    result = fetch_result(samr_oracle.url, tax, request_id)
    assert result["status"] == 400 and result["reason"] == "MALFORMED_REQUEST"
