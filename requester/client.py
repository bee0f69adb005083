"""The requesting side: sign a query, send it to the provider's oracle, check what comes back; and,
for the on-chain way to ask, encrypt the parameters to the oracle and fetch the encrypted result.

Everything said on the wire is :mod:`protocol`'s; the HTTP calls go through govshare's one client
(:class:`ledger.http_client.HttpClient`). Failures are typed: :class:`QueryRefused` (the oracle
answered with a problem; its ``receipt``, when present, is signed evidence of the refusal),
:class:`OracleUnreachable` / :class:`OracleTimeout` (no answer), :class:`OracleBadAnswer` (an
answer that is not the protocol's), :class:`ReceiptNotFromOracle`, :class:`InconsistentReceipt`.

Every receipt is checked for what a requester can check alone: its record hash and hash-chain head
follow from its fields (:meth:`protocol.receipt.Receipt.check_binding`) and, for served records, its
response hash opens to the records received. :func:`save_receipt` keeps it as a file, for an auditor's
``govshare audit verify --receipts DIR``.
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import orjson

from ledger.errors import LedgerError
from ledger.hashing import canonical_json, new_salt
from ledger.http_client import HttpClient, HttpTimeout, HttpUnreachable
from ledger.keys import Signer
from protocol import commitments, ecies
from protocol.query import Query, SignedQuery
from protocol.receipt import InvalidReceipt, Receipt, receipt_signer
from protocol.results import params_associated_data, result_associated_data, result_auth_header

__all__ = [
    "InconsistentReceipt",
    "OracleBadAnswer",
    "OracleClient",
    "OracleTimeout",
    "OracleUnreachable",
    "QueryRefused",
    "QueryResult",
    "ReceiptNotFromOracle",
    "encrypt_params_for",
    "fetch_result",
    "save_receipt",
]


class QueryRefused(LedgerError):
    """The oracle refused the query; ``status``, ``reason`` and the signed ``receipt`` say why."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.reason = problem.get("reason")
        self.receipt = problem.get("receipt")
        retry_after = problem.get("retry_after")  # a 429 (RATE_LIMITED): seconds to wait, as its Retry-After says
        self.retry_after = retry_after if isinstance(retry_after, int) and not isinstance(retry_after, bool) else None
        super().__init__(f"{status} {problem.get('title')}: {problem.get('detail')}")


class OracleUnreachable(LedgerError, ConnectionError):
    """The oracle could not be reached (or hung up mid-answer)."""


class OracleTimeout(OracleUnreachable, TimeoutError):
    """The oracle did not answer in time."""


class OracleBadAnswer(LedgerError, ValueError):
    """The oracle answered something that is not the protocol's JSON."""


class ReceiptNotFromOracle(LedgerError):
    """The receipt is not signed by the oracle account the client was told to expect."""


class InconsistentReceipt(LedgerError):
    """The receipt contradicts itself (record hash, chain head) or the records it came with."""


@dataclass(frozen=True)
class QueryResult:
    records: list[dict[str, Any]]
    receipt: dict[str, Any]
    query: Query
    params: dict[str, str]
    params_salt: bytes


class OracleClient:
    """Talks to one provider's oracle. ``oracle_address`` (from the registry) pins whose receipts count.
    An https oracle is verified with ``ssl_context`` (``ClientTls(ca_file, cert_file, key_file).context()``:
    the CAs trusted instead of the system's, and the client certificate presented when the oracle
    asks for one, mutual TLS); without it, with the system's trust and no client certificate."""

    def __init__(self, base_url: str, chain_id: int, verifying_contract: str, oracle_address: str | None = None,
                 *, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.chain_id = chain_id
        self.verifying_contract = verifying_contract
        self.oracle_address = oracle_address
        self.http = HttpClient(self.base_url, timeout=timeout, ssl_context=ssl_context, user_agent="govshare-requester")

    def close(self) -> None:
        self.http.close()

    def signed_body(self, signer: Signer, dept_id: int, dataset_id: int, grant_id: int, fields: int,
                    params: Mapping[str, str], *, ttl: int = 120, nonce: int | None = None) -> tuple[dict[str, Any], Query, bytes]:
        """The ``POST /v1/query`` body of a fresh signed query (a new salt, a random nonce unless
        given, a deadline ``ttl`` seconds away), the query, and its parameters' salt."""
        salt = new_salt()
        signed = SignedQuery.sign(signer, requester_dept=dept_id, dataset_id=dataset_id, grant_id=grant_id,
                                  fields=fields, params=params, salt=salt, deadline=int(time.time()) + ttl,
                                  chain_id=self.chain_id, verifying_contract=self.verifying_contract, nonce=nonce)
        return signed.to_json(), signed.query, salt

    def query(self, signer: Signer, dept_id: int, dataset_id: int, grant_id: int, fields: int,
              params: Mapping[str, str], **kwargs: Any) -> QueryResult:
        """Sign and send; the records and the oracle's receipt, or :class:`QueryRefused`."""
        body, query, salt = self.signed_body(signer, dept_id, dataset_id, grant_id, fields, params, **kwargs)
        status, data = self._call("POST", "/v1/query", orjson.dumps(body), {"Content-Type": "application/json"})
        receipt = data.get("receipt")
        if receipt is not None and self.oracle_address:
            try:
                signed_by = receipt_signer(receipt)
            except InvalidReceipt as exc:
                raise ReceiptNotFromOracle(f"the receipt's signature cannot be verified: {exc}") from None
            if signed_by != self.oracle_address:
                raise ReceiptNotFromOracle("the receipt is not signed by the provider's registered oracle")
        if receipt is not None:
            check_receipt_binding(receipt, data.get("records") if status == 200 else None)
        if status != 200:
            raise QueryRefused(status, data)
        if not isinstance(data.get("records"), list) or not isinstance(receipt, dict):
            raise OracleBadAnswer(f"{self.base_url} answered 200 without records and a receipt")
        return QueryResult(data["records"], receipt, query, dict(params), salt)

    def _call(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """Status and JSON object of one exchange with the oracle."""
        try:
            answer = self.http.request(method, path, body=body, headers={"Accept": "application/json", **(headers or {})})
        except HttpTimeout as exc:
            raise OracleTimeout(str(exc)) from None
        except HttpUnreachable as exc:
            raise OracleUnreachable(str(exc)) from None
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise OracleBadAnswer(f"{self.base_url} answered {answer.status} with a body that is not JSON") from None
        if not isinstance(data, dict):
            raise OracleBadAnswer(f"{self.base_url} answered {answer.status} with JSON that is not an object")
        return answer.status, data


def fetch_result(base_url: str, signer: Signer, request_id: int, *, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> dict[str, Any] | None:
    """The requester's encrypted answer to an on-chain request, decrypted; None while not answered."""
    client = OracleClient(base_url, 0, "0x" + "00" * 20, timeout=timeout, ssl_context=ssl_context)
    try:
        status, data = client._call("GET", f"/v1/results/{request_id}",
                                    headers={"Authorization": result_auth_header(signer, request_id)})
    finally:
        client.close()
    if status == 404:
        return None
    if status != 200:
        raise QueryRefused(status, data)
    ciphertext = data.get("ciphertext")
    if not isinstance(ciphertext, str) or not ciphertext.startswith("0x"):
        raise OracleBadAnswer(f"{base_url} answered a result without its ciphertext")
    plain = ecies.decrypt(bytes(signer.account.key), bytes.fromhex(ciphertext[2:]), result_associated_data(request_id))
    return orjson.loads(plain)


def encrypt_params_for(oracle_public_key: bytes, requester: str, params: Mapping[str, str]) -> bytes:
    """Parameters of an on-chain request (canonical JSON of the object), encrypted to the provider's oracle."""
    return ecies.encrypt(oracle_public_key, canonical_json(dict(params)), params_associated_data(requester))


def check_receipt_binding(receipt: Any, records: Any = None) -> None:
    """:class:`InconsistentReceipt` unless ``receipt`` is a receipt whose record hash and chain head
    follow from its fields and, with ``records`` (a 200 answer's), whose response hash opens to them."""
    try:
        parsed = Receipt.from_dict(receipt)
        parsed.check_binding()
        if records is not None:
            salt = bytes.fromhex(parsed.response_salt[2:]) if parsed.response_salt[:2] == "0x" else b""
            if "0x" + commitments.response_hash(records, salt).hex() != parsed.response_hash:
                raise InconsistentReceipt("the receipt's response_hash does not open to the records received")
    except InvalidReceipt as exc:
        raise InconsistentReceipt(f"the oracle's receipt is inconsistent: {exc}") from None
    except (ValueError, TypeError, LedgerError) as exc:
        if isinstance(exc, InconsistentReceipt):
            raise
        raise InconsistentReceipt(f"the oracle's receipt cannot be checked: {exc}") from None


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def save_receipt(receipt: Mapping[str, Any], directory: Path | str) -> Path:
    """Write ``receipt`` to ``directory`` as ``receipt-<oracle>-<sequence>.json`` (mode 0600: its salts
    open the request's and response's hashes), atomically; the path. For ``audit verify --receipts``."""
    oracle, sequence = receipt.get("oracle"), receipt.get("sequence")
    if not isinstance(oracle, str) or not _ADDRESS.fullmatch(oracle) or type(sequence) is not int or sequence < 1:
        raise InconsistentReceipt("the receipt names no oracle address and sequence to file it under")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"receipt-{oracle.lower()}-{sequence}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".receipt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(dict(receipt), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
