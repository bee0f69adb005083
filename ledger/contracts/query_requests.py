"""On-chain query requests (QueryRequests): post a query for a provider's oracle, fulfil it, read them.

The parameters travel encrypted to the provider's oracle (``encrypted_params``); the chain keeps
only ``keccak256(encrypted_params)`` and a status. The requester names its own 64-byte public key
(:func:`public_key_of`), which the contract checks is the caller's, so the oracle can encrypt the
result to it. The contract decides no access: the oracle checks the grant and fulfils with the
outcome and the id of the audit record of the access. The same contract hashes and recovers signed
off-chain queries (``protocol.query``) exactly as Python does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Iterator, Protocol

from eth_keys import keys as eth_keys
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from ledger.chain import TxResult
from ledger.contracts.base import ContractClient
from ledger.events import ChainEvent, read_events
from ledger.keys import Signer

__all__ = ["QueryRequest", "QueryRequested", "QueryRequestsClient", "QueryStatus", "public_key_of"]

#: Longest ``encrypted_params`` the contract accepts, in bytes (QueryRequests.MAX_PARAMS_LENGTH).
MAX_PARAMS_LENGTH = 4096


class AbiQuery(Protocol):
    """A signed query in the form the contract's ``Query`` struct takes (``protocol.query.Query``)."""

    def as_abi(self) -> tuple: ...


class QueryStatus(IntEnum):
    NONE = 0
    PENDING = 1
    FULFILLED = 2


@dataclass(frozen=True)
class QueryRequest:
    """A request as stored on chain (IQueryRequests.QueryRequest) and its id."""

    request_id: int
    requester: ChecksumAddress
    requester_dept: int
    provider_dept: int
    grant_id: int
    dataset_id: int
    requested_at: int
    status: QueryStatus
    commitment: bytes  # keccak256(encrypted_params)

    @classmethod
    def from_abi(cls, request_id: int, raw: tuple) -> QueryRequest:
        return cls(
            request_id=int(request_id),
            requester=to_checksum_address(raw[0]),
            requester_dept=int(raw[1]),
            provider_dept=int(raw[2]),
            grant_id=int(raw[3]),
            dataset_id=int(raw[4]),
            requested_at=int(raw[5]),
            status=QueryStatus(raw[6]),
            commitment=bytes(raw[7]),
        )


@dataclass(frozen=True)
class QueryRequested:
    """A {QueryRequested} event: everything the provider's oracle needs to answer."""

    request_id: int
    provider_dept: int
    requester: ChecksumAddress
    grant_id: int
    dataset_id: int
    fields: int
    encrypted_params: bytes
    requester_public_key: bytes
    block_number: int
    tx_hash: str
    log_index: int

    @classmethod
    def from_event(cls, event: ChainEvent) -> QueryRequested:
        a = event.args
        return cls(
            request_id=int(a["requestId"]),
            provider_dept=int(a["providerDept"]),
            requester=to_checksum_address(a["requester"]),
            grant_id=int(a["grantId"]),
            dataset_id=int(a["datasetId"]),
            fields=int(a["fields"]),
            encrypted_params=bytes(a["encryptedParams"]),
            requester_public_key=bytes(a["requesterPublicKey"]),
            block_number=event.block_number,
            tx_hash=event.tx_hash,
            log_index=event.log_index,
        )


def public_key_of(signer: Signer) -> bytes:
    """The signer's 64-byte uncompressed secp256k1 public key (no 0x04 prefix): what
    ``request_query`` takes as ``requester_public_key``."""
    return eth_keys.PrivateKey(bytes(signer.account.key)).public_key.to_bytes()


class QueryRequestsClient(ContractClient):
    """Typed access to QueryRequests."""

    def request_query(
        self, signer: Signer, grant_id: int, fields: int, encrypted_params: bytes, requester_public_key: bytes
    ) -> int:
        """Post a query under ``grant_id`` for the grant owner's oracle; returns the request id."""
        result = self._transact(
            signer, "requestQuery", grant_id, fields, bytes(encrypted_params), bytes(requester_public_key)
        )
        return int(self.event(result, "QueryRequested").args["requestId"])

    def fulfil(self, signer: Signer, request_id: int, record_id: int, outcome: int, response_hash: bytes) -> TxResult:
        """Mark a pending request answered (the provider's oracle only), naming the audit record
        (``oracle << 64 | sequence``) of the access and its outcome (ledger.contracts.audit_log.Outcome)."""
        return self._transact(signer, "fulfilQuery", request_id, record_id, int(outcome), bytes(response_hash))

    def request(self, request_id: int, *, block: int | str = "latest") -> QueryRequest:
        """A request by id (reverts QueryRequestsUnknownRequest)."""
        return QueryRequest.from_abi(request_id, self._call("request", request_id, block=block))

    def request_count(self, *, block: int | str = "latest") -> int:
        return int(self._call("requestCount", block=block))

    def hash_query_on_chain(self, query: AbiQuery) -> bytes:
        """The contract's EIP-712 digest of ``query``, to check ``protocol.query.query_digest`` agrees."""
        return bytes(self._call("hashQuery", query.as_abi()))

    def recover_on_chain(self, query: AbiQuery, signature: bytes) -> ChecksumAddress:
        """The signer the contract recovers (OpenZeppelin ECDSA: reverts ECDSAInvalidSignature*)."""
        return to_checksum_address(self._call("recoverQuerySigner", query.as_abi(), bytes(signature)))

    def domain_separator_on_chain(self) -> bytes:
        return bytes(self._call("domainSeparator"))

    def requests_for(
        self, provider_dept: int, from_block: int | None = None, to_block: int | None = None, *, step: int = 2_000
    ) -> Iterator[QueryRequested]:
        """Every request addressed to ``provider_dept`` in the block range (default: from deployment to
        the latest block), in chain order, read in ranges of at most ``step`` blocks and filtered by
        the indexed ``providerDept`` topic on the node."""
        topic0 = "0x" + self.events.topic("QueryRequested").hex()
        dept_topic = "0x" + int(provider_dept).to_bytes(32, "big").hex()
        start = self.from_block if from_block is None else from_block
        events = read_events(
            self.chain, self.events, [self.address], start, to_block, topics=[topic0, None, dept_topic], step=step
        )
        for event in events:
            yield QueryRequested.from_event(event)
