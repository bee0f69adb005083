"""The requesting side: sign a query, send it to the provider's oracle, check what comes back."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

import httpx
from eth_account.messages import encode_defunct

from ledger.errors import LedgerError
from ledger.hashing import new_salt
from ledger.keys import Signer
from protocol.query import Query, sign_query
from protocol import ecies
from oracle.app import result_auth_message
from oracle.request_follower import params_associated_data, result_associated_data
from oracle.service import receipt_signer


class QueryRefused(LedgerError):
    """The oracle refused the query; ``status``, ``reason`` and the signed ``receipt`` say why."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.reason = problem.get("reason")
        self.receipt = problem.get("receipt")
        super().__init__(f"{status} {problem.get('title')}: {problem.get('detail')}")


@dataclass(frozen=True)
class QueryResult:
    records: list[dict[str, Any]]
    receipt: dict[str, Any]
    query: Query
    params: dict[str, str]
    params_salt: bytes


class OracleClient:
    """Talks to one provider's oracle. ``oracle_address`` (from the registry) pins whose receipts count."""

    def __init__(self, base_url: str, chain_id: int, verifying_contract: str, oracle_address: str | None = None,
                 *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.chain_id = chain_id
        self.verifying_contract = verifying_contract
        self.oracle_address = oracle_address
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def signed_body(self, signer: Signer, dept_id: int, dataset_id: int, grant_id: int, fields: int,
                    params: Mapping[str, str], *, ttl: int = 120, nonce: int | None = None) -> tuple[dict[str, Any], Query, bytes]:
        salt = new_salt()
        query = Query.for_params(requester=signer.address, requester_dept=dept_id, dataset_id=dataset_id,
                                 grant_id=grant_id, fields=fields, params=dict(params), salt=salt,
                                 deadline=int(time.time()) + ttl, nonce=nonce)
        signature = sign_query(signer, query, self.chain_id, self.verifying_contract)
        body = {"query": query.to_json(), "signature": "0x" + signature.hex(), "params": dict(params),
                "paramsSalt": "0x" + salt.hex()}
        return body, query, salt

    def query(self, signer: Signer, dept_id: int, dataset_id: int, grant_id: int, fields: int,
              params: Mapping[str, str], **kwargs: Any) -> QueryResult:
        """Sign and send; the records and the oracle's receipt, or :class:`QueryRefused`."""
        body, query, salt = self.signed_body(signer, dept_id, dataset_id, grant_id, fields, params, **kwargs)
        reply = self.http.post(f"{self.base_url}/v1/query", json=body)
        data = reply.json()
        receipt = data.get("receipt")
        if receipt is not None and self.oracle_address and receipt_signer(receipt) != self.oracle_address:
            raise LedgerError("the receipt is not signed by the provider's registered oracle")
        if reply.status_code != 200:
            raise QueryRefused(reply.status_code, data)
        return QueryResult(data["records"], receipt, query, dict(params), salt)


def fetch_result(base_url: str, signer: Signer, request_id: int, *, timeout: float = 10.0) -> dict[str, Any] | None:
    """The requester's encrypted answer to an on-chain request, decrypted; None while not answered."""
    stamp = int(time.time())
    signature = signer.sign_message(encode_defunct(text=result_auth_message(request_id, stamp))).signature
    reply = httpx.get(f"{base_url.rstrip('/')}/v1/results/{request_id}",
                      headers={"Authorization": f"Govshare {stamp}:0x{bytes(signature).hex()}"}, timeout=timeout)
    if reply.status_code == 404:
        return None
    if reply.status_code != 200:
        raise QueryRefused(reply.status_code, reply.json())
    blob = bytes.fromhex(reply.json()["ciphertext"][2:])
    plain = ecies.decrypt(bytes(signer.account.key), blob, result_associated_data(request_id))
    return json.loads(plain)


def encrypt_params_for(oracle_public_key: bytes, requester: str, params: Mapping[str, str]) -> bytes:
    """Parameters of an on-chain request, encrypted to the provider's oracle."""
    return ecies.encrypt(oracle_public_key, json.dumps(dict(params), sort_keys=True).encode(), params_associated_data(requester))
