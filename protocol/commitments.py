"""What the hashes of a query and its answer commit to.

Every commitment is a *salted canonical hash* (:func:`ledger.hashing.salted_hash`):
``keccak256(canonical_json({"salt": "0x" + hex(salt), "body": value}))``, with a salt of 16 to 64
bytes (the oracle and the requester make 32 from the operating system's CSPRNG). The salt lets the
audit log name a low-entropy value (one resident's id number) without revealing it to whoever
reads the chain; whoever holds the salt and the value can recompute the hash.

* ``paramsHash`` (signed in the query): ``body`` = the parameters, a JSON object of strings;
* ``requestHash`` (in the receipt and the audit record): ``body`` = ``{"query": <the query's wire
  form>, "signature": "0x…", "params": {…}}`` for a signed query, ``{"requestId": <int>,
  "transaction": "0x…", "params": {…} | null}`` for an on-chain request;
* ``responseHash``: ``body`` = ``{"records": [...]}``, the records exactly as served; 32 zero bytes
  when nothing was served (a denial, a source failure, a withheld answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledger.contracts.audit_log import ZERO_HASH  # the response hash of an access that served nothing
from ledger.hashing import salted_hash

__all__ = ["ZERO_HASH", "onchain_request_body", "params_hash", "request_hash", "response_hash"]


def params_hash(params: Mapping[str, str], salt: bytes) -> bytes:
    """The query's ``paramsHash``: the salted canonical hash of its parameters."""
    return salted_hash(params, salt)


def request_hash(body: Mapping[str, Any], salt: bytes) -> bytes:
    """The ``requestHash`` of a request whose committed form is ``body`` (:meth:`protocol.query.SignedQuery.canonical`
    or :func:`onchain_request_body`)."""
    return salted_hash(body, salt)


def onchain_request_body(request_id: int, transaction: str, params: Mapping[str, str] | None) -> dict[str, Any]:
    """What the ``requestHash`` of an on-chain request commits to: its id, the transaction that made
    it, and its decrypted parameters (``None`` when they could not be decrypted or parsed)."""
    return {"requestId": request_id, "transaction": transaction, "params": None if params is None else dict(params)}


def response_hash(records: Sequence[Mapping[str, Any]], salt: bytes) -> bytes:
    """The ``responseHash`` of served ``records`` (as sent to the requester, after masking)."""
    return salted_hash({"records": records}, salt)
