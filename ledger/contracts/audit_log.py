"""The audit log: entries an oracle appends, the records they become, and the per-oracle hash chain.

Layout shared with AuditLog.sol (a test shows both sides agree):

* record id = ``uint256(uint160(oracle)) << 64 | sequence``
* meta = ``checkedAtBlock | datasetVersion << 64 | outcome << 96 | reason << 104``
* ``head' = keccak256(abi.encode(head, recordId, grantId, requester, datasetId, meta, requestHash, responseHash))``
  starting from 32 zero bytes, per oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable, Iterator, Sequence

from eth_abi import encode as abi_encode
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address

from ledger.chain import SentTx, TxResult
from ledger.contracts.base import ContractClient
from ledger.contracts.grants import AccessReason
from ledger.errors import LedgerError, OutOfGas, TransactionFailed
from ledger.events import ChainEvent, read_events
from ledger.hashing import keccak as fast_keccak
from ledger.keys import Signer
from ledger.rpc import RpcErrorAnswer

ZERO_HASH = b"\x00" * 32
_APPEND_SELECTOR = keccak(text="appendRecords(uint64,bytes)")[:4]
# The event's topic (a hash of its signature), not a key.
_BATCH_EVENT_TOPIC = keccak(text="AuditBatchAppended(address,uint32,uint64,uint64,bytes32)")
ZERO_ADDRESS = to_checksum_address("0x" + "00" * 20)
_U64 = (1 << 64) - 1


class Outcome(IntEnum):
    SERVED = 0
    DENIED = 1
    SOURCE_FAILURE = 2


class OracleReason(IntEnum):
    """Refusals an oracle decides off chain (audit record reasons 64..255); 0..63 are AccessReason."""

    BAD_SIGNATURE = 64
    DEADLINE_PASSED = 65
    NONCE_REPLAYED = 66
    MALFORMED_REQUEST = 67
    UNKNOWN_DATASET = 68
    CHAIN_UNAVAILABLE = 69
    SOURCE_UNAVAILABLE = 70
    SOURCE_TIMEOUT = 71
    SOURCE_BAD_RESPONSE = 72
    QUOTA_PENDING = 73
    WITHHELD = 74  # strict mode: recorded as served, but not anchored in time, so the data was withheld
    RATE_LIMITED = 75  # the requester (the signer) sent more queries than the oracle's rate limit allows


def reason_name(reason: int) -> str:
    """The name of an audit record's reason code (the chain's 0..63, the oracle's 64..255)."""
    try:
        return AccessReason(reason).name if reason < 64 else OracleReason(reason).name
    except ValueError:
        return f"REASON_{reason}"


class HashChainMismatch(LedgerError, ValueError):
    """A recomputed hash chain does not reach the head the contract holds."""

    def __init__(self, oracle: str, expected: bytes, computed: bytes, sequence: int) -> None:
        self.oracle, self.expected, self.computed, self.sequence = oracle, expected, computed, sequence
        super().__init__(
            f"hash chain of oracle {oracle} up to sequence {sequence}: expected head 0x{expected.hex()}, "
            f"computed 0x{computed.hex()}"
        )


@dataclass(frozen=True)
class AuditEntry:
    """One access as the oracle submits it (see IAuditLog.AuditEntry)."""

    grant_id: int
    requester: str
    dataset_id: int
    dataset_version: int
    outcome: Outcome
    reason: int
    checked_at_block: int
    request_hash: bytes
    response_hash: bytes

    def packed(self) -> bytes:
        """The 128-byte calldata form AuditLog.appendRecords takes (see IAuditLog)."""
        _check_width("grant_id", self.grant_id, 64)
        _check_width("dataset_id", self.dataset_id, 64)
        if len(self.request_hash) != 32 or len(self.response_hash) != 32:
            raise ValueError("request_hash and response_hash are 32 bytes each")
        w0 = int(_address_hex(self.requester), 16) << 96 | self.grant_id << 32
        w1 = self.dataset_id << 192 | self.meta
        return w0.to_bytes(32, "big") + w1.to_bytes(32, "big") + self.request_hash + self.response_hash

    def record_hash(self) -> bytes:
        """``keccak256`` of :meth:`packed`: one hash naming exactly the record that is anchored (what a
        receipt commits to, ``record_hash``)."""
        return fast_keccak(self.packed())

    def as_abi(self) -> tuple:
        return (
            self.grant_id,
            to_checksum_address(self.requester),
            self.dataset_id,
            self.dataset_version,
            int(self.outcome),
            int(self.reason),
            self.checked_at_block,
            self.request_hash,
            self.response_hash,
        )

    @property
    def meta(self) -> int:
        return pack_meta(self.checked_at_block, self.dataset_version, self.outcome, self.reason)


@dataclass(frozen=True)
class AuditRecord:
    """An anchored audit record, as read back from the chain."""

    record_id: int
    oracle: ChecksumAddress
    sequence: int
    entry: AuditEntry
    block_number: int
    tx_hash: str
    log_index: int

    @classmethod
    def from_event(cls, event: ChainEvent) -> AuditRecord:
        a = event.args
        oracle, sequence = split_record_id(int(a["recordId"]))
        checked, version, outcome, reason = unpack_meta(int(a["meta"]))
        entry = AuditEntry(
            grant_id=int(a["grantId"]),
            requester=to_checksum_address(a["requester"]),
            dataset_id=int(a["datasetId"]),
            dataset_version=version,
            outcome=outcome,
            reason=reason,
            checked_at_block=checked,
            request_hash=bytes(a["requestHash"]),
            response_hash=bytes(a["responseHash"]),
        )
        return cls(int(a["recordId"]), oracle, sequence, entry, event.block_number, event.tx_hash, event.log_index)


@dataclass(frozen=True)
class OracleState:
    last_sequence: int
    dept_id: int
    head: bytes


@dataclass(frozen=True)
class AppendResult:
    head: bytes
    tx_hash: str
    block_number: int
    gas_used: int
    records: list[AuditRecord]


def record_id(oracle: str, sequence: int) -> int:
    if not 0 < sequence <= _U64:
        raise ValueError("sequence numbers run from 1 to 2**64 - 1")
    return int(_address_hex(oracle), 16) << 64 | sequence


def _address_hex(address: str) -> str:
    """The 40 hex digits of an address (any case), checked for shape only: hot paths call this."""
    digits = address[2:] if address[:2] in ("0x", "0X") else address
    if len(digits) != 40:
        raise ValueError(f"not an address: {address!r}")
    int(digits, 16)
    return digits


def split_record_id(rid: int) -> tuple[ChecksumAddress, int]:
    return to_checksum_address((rid >> 64).to_bytes(20, "big")), rid & _U64


def _check_width(name: str, value: int, bits: int) -> None:
    # An out-of-range value would spill into the neighbouring field (a version of 2**32 would turn a
    # served record into a denial) instead of failing like the ABI encoding of the same entry does.
    if not 0 <= int(value) < 1 << bits:
        raise ValueError(f"{name} must fit in {bits} bits, got {value}")


def pack_meta(checked_at_block: int, dataset_version: int, outcome: int, reason: int) -> int:
    _check_width("checked_at_block", checked_at_block, 64)
    _check_width("dataset_version", dataset_version, 32)
    _check_width("outcome", int(outcome), 8)
    _check_width("reason", int(reason), 8)
    return checked_at_block | dataset_version << 64 | int(outcome) << 96 | int(reason) << 104


def unpack_meta(meta: int) -> tuple[int, int, Outcome, int]:
    return meta & _U64, (meta >> 64) & 0xFFFFFFFF, Outcome((meta >> 96) & 0xFF), (meta >> 104) & 0xFF


def pack_entries(entries: Iterable[AuditEntry]) -> bytes:
    """Entries in the packed batch layout of AuditLog.appendRecords."""
    return b"".join(entry.packed() for entry in entries)


def chain_step(head: bytes, rid: int, entry: AuditEntry) -> bytes:
    """One step of an oracle's hash chain, exactly as AuditLog.sol computes it:
    ``keccak256(abi.encode(head, recordId, grantId, requester, datasetId, meta, requestHash, responseHash))``,
    the static ABI encoding written out word by word (a few µs: the oracle takes one step per record
    it writes)."""
    _check_width("grant_id", entry.grant_id, 64)
    _check_width("dataset_id", entry.dataset_id, 64)
    if len(head) != 32 or len(entry.request_hash) != 32 or len(entry.response_hash) != 32:
        raise ValueError("head, request_hash and response_hash are 32 bytes each")
    return fast_keccak(b"".join((
        head, rid.to_bytes(32, "big"), entry.grant_id.to_bytes(32, "big"),
        bytes.fromhex(_address_hex(entry.requester)).rjust(32, b"\x00"), entry.dataset_id.to_bytes(32, "big"),
        entry.meta.to_bytes(32, "big"), entry.request_hash, entry.response_hash,
    )))


def recompute_head(oracle: str, entries: Iterable[AuditEntry], *, start: bytes = ZERO_HASH, first_sequence: int = 1) -> bytes:
    """The head after appending ``entries`` as sequences ``first_sequence, ...`` of ``oracle``."""
    head = start
    for offset, entry in enumerate(entries):
        head = chain_step(head, record_id(oracle, first_sequence + offset), entry)
    return head


def verify_hash_chain(records: Sequence[AuditRecord], expected_head: bytes) -> None:
    """Check that ``records`` (one oracle's, from sequence 1) are contiguous and chain to ``expected_head``.

    Raises :class:`HashChainMismatch` (or ValueError for a sequence gap) naming the oracle.
    """
    if not records:
        if expected_head != ZERO_HASH:
            raise HashChainMismatch("(none)", expected_head, ZERO_HASH, 0)
        return
    oracle = records[0].oracle
    head = ZERO_HASH
    for expected_seq, record in enumerate(sorted(records, key=lambda r: r.sequence), start=1):
        if record.oracle != oracle:
            raise ValueError(f"records of two oracles mixed: {oracle} and {record.oracle}")
        if record.sequence != expected_seq:
            raise ValueError(f"oracle {oracle}: sequence gap, expected {expected_seq}, found {record.sequence}")
        head = chain_step(head, record.record_id, record.entry)
    if head != expected_head:
        raise HashChainMismatch(oracle, expected_head, head, len(records))


#: What :func:`anchoring_gas_limit` allows for ``appendRecords``'s execution, beyond the transaction's
#: intrinsic gas and its calldata (both computed exactly): per batch (the role check, the oracle's
#: state, the batch event), per record (its event: 2,899 gas, and the loop), per run of served
#: records of one grant (the quota update and its event), per grant served in the batch (its
#: storage read cold, and written for the first time on its first use: 17,100 gas more), per run of
#: records of one dataset (the ownership check). Measured on the contract (bench/README.md, "Where
#: the gas goes", and the test that sends every shape of batch): about 44,800, 3,660, 5,200, 16,000
#: at a first use, and 4,700; these allow half as much again, and ``ANCHOR_GAS_SLACK`` covers the
#: oracle's own state written for the first time (its first batch: 34,200 gas more).
ANCHOR_GAS_PER_BATCH, ANCHOR_GAS_PER_RECORD = 67_000, 5_500
ANCHOR_GAS_PER_GRANT_RUN, ANCHOR_GAS_PER_GRANT, ANCHOR_GAS_PER_DATASET_RUN = 8_000, 12_000, 7_000
ANCHOR_GAS_SLACK = 60_000
#: Intrinsic gas of a transaction, and calldata gas per zero and non-zero byte (EIP-2028).
_TX_GAS, _ZERO_BYTE_GAS, _NONZERO_BYTE_GAS = 21_000, 4, 16


def anchoring_gas_limit(entries: Sequence[AuditEntry], calldata: bytes) -> int:
    """An upper bound of the gas ``appendRecords`` uses for ``entries`` sent as ``calldata``: the
    intrinsic and calldata gas exactly, the execution from the batch's shape (records, runs of one
    grant's served records, grants served, runs of one dataset) with the ``ANCHOR_GAS_*``
    allowances. A test sends batches of every shape and checks each used less than its bound."""
    grant_runs = dataset_runs = 0
    grant = dataset = None
    grants: set[int] = set()
    for entry in entries:
        if entry.dataset_id != dataset:
            dataset_runs, dataset = dataset_runs + 1, entry.dataset_id
        if entry.outcome is Outcome.SERVED:
            grants.add(entry.grant_id)
            if entry.grant_id != grant:
                grant_runs, grant = grant_runs + 1, entry.grant_id
    zeros = calldata.count(0)
    execution = (ANCHOR_GAS_PER_BATCH + ANCHOR_GAS_PER_RECORD * len(entries) + ANCHOR_GAS_PER_GRANT_RUN * grant_runs
                 + ANCHOR_GAS_PER_GRANT * len(grants) + ANCHOR_GAS_PER_DATASET_RUN * dataset_runs + ANCHOR_GAS_SLACK)
    return _TX_GAS + _ZERO_BYTE_GAS * zeros + _NONZERO_BYTE_GAS * (len(calldata) - zeros) + execution


class AuditLogClient(ContractClient):
    """Typed access to AuditLog."""

    def append(self, signer: Signer, first_sequence: int, entries: Sequence[AuditEntry], *, gas: int | None = None) -> AppendResult:
        """Append ``entries`` as ``signer``'s records ``first_sequence``...; the result carries every
        record as the chain emitted it."""
        result = self._transact(signer, "appendRecords", first_sequence, pack_entries(entries), gas=gas)
        batch = self.event(result, "AuditBatchAppended")
        records = [AuditRecord.from_event(e) for e in self.events_named(result, "AuditRecordAppended")]
        return AppendResult(bytes(batch.args["head"]), result.tx_hash, result.block_number, result.gas_used, records)

    def anchor(self, signer: Signer, first_sequence: int, entries: Sequence[AuditEntry], *,
               replace_after: float | None = None) -> AppendResult:
        """:meth:`append` for a sender that anchors all the time (the oracle's batcher): plain
        JSON-RPC instead of web3, only the batch event read back (``records`` is empty), and no
        ``eth_estimateGas``: the gas limit is :func:`anchoring_gas_limit`, an upper bound computed
        from the batch itself (an estimate executes the whole batch once more on the node, as much
        work as the transaction). A refusal therefore surfaces when the transaction is mined, and
        is decoded by name from its replay (the same :class:`ContractRevert` as :meth:`append`'s);
        a batch that needed more gas than the bound, or a bound the node will not take, is sent
        again with the node's estimate. ``replace_after``: see :meth:`ledger.chain.Chain.send_call_data`."""
        data = self._append_call_data(first_sequence, entries)
        try:
            try:
                result = self.chain.send_call_data(signer, self.address, data, gas=anchoring_gas_limit(entries, data),
                                                   replace_after=replace_after)
            except (RpcErrorAnswer, OutOfGas):  # e.g. over the node's block gas limit, or the bound was short
                result = self.chain.send_call_data(signer, self.address, data, replace_after=replace_after)
        except RpcErrorAnswer:
            return self.append(signer, first_sequence, entries)
        return self._batch_result(result)

    def submit_anchor(self, signer: Signer, first_sequence: int, entries: Sequence[AuditEntry]) -> str:
        """The sending half of :meth:`anchor`, for a batcher with several batches in flight: send the
        batch with :func:`anchoring_gas_limit` as its gas and return the transaction's hash at once
        (:meth:`anchored` reads the outcome). Nothing is retried here: an error answer raises
        :class:`RpcErrorAnswer`, and a refusal surfaces from :meth:`anchored` once it is mined; the
        caller falls back to :meth:`anchor`, which has the retries."""
        return self.send_anchor(signer, first_sequence, entries).tx_hash

    def send_anchor(self, signer: Signer, first_sequence: int, entries: Sequence[AuditEntry]) -> SentTx:
        """:meth:`submit_anchor`, returning what :meth:`ledger.chain.Chain.replace` needs to send
        the batch again in its own place should it stay unmined."""
        data = self._append_call_data(first_sequence, entries)
        return self.chain.send_tx(signer, self.address, data, gas=anchoring_gas_limit(entries, data))

    def anchored(self, tx_hash: str) -> AppendResult | None:
        """The outcome of a batch sent with :meth:`submit_anchor`: None while it is not mined, its
        result once it is; a refused batch raises the decoded refusal (:class:`ContractRevert`,
        e.g. ``AuditLogSequenceMismatch`` after a batch before it failed, or :class:`OutOfGas`)."""
        result = self.chain.mined(tx_hash)
        return None if result is None else self._batch_result(result)

    def anchored_any(self, tx_hashes: list[str]) -> AppendResult | None:
        """:meth:`anchored` for the versions of one batch's transaction (the first, its replacements)."""
        result = self.chain.mined_any(tx_hashes)
        return None if result is None else self._batch_result(result)

    @staticmethod
    def _append_call_data(first_sequence: int, entries: Sequence[AuditEntry]) -> bytes:
        return _APPEND_SELECTOR + abi_encode(["uint64", "bytes"], [first_sequence, pack_entries(entries)])

    def _batch_result(self, result: TxResult) -> AppendResult:
        batch_topic = "0x" + _BATCH_EVENT_TOPIC.hex()
        for log in result.logs:
            if log["topics"] and log["topics"][0] == batch_topic and log["address"].lower() == self.address.lower():
                head = bytes.fromhex(log["data"][2:])[64:96]  # (firstSequence, count, head)
                return AppendResult(head, result.tx_hash, result.block_number, result.gas_used, [])
        raise TransactionFailed(f"transaction {result.tx_hash} emitted no AuditBatchAppended")

    def oracle_state(self, oracle: str, *, block: int | str = "latest") -> OracleState:
        last, dept, head = self._call("oracleState", to_checksum_address(oracle), block=block)
        return OracleState(int(last), int(dept), bytes(head))

    def pack_on_chain(self, entries: Sequence[AuditEntry]) -> bytes:
        """The contract's own packing (a pure function), to check Python agrees."""
        return bytes(self._call("packRecords", [e.as_abi() for e in entries]))

    def chain_step_on_chain(self, head: bytes, rid: int, entry: AuditEntry) -> bytes:
        """The contract's own hash-chain step (a pure function), to check Python agrees."""
        return bytes(self._call("chainStep", head, rid, entry.as_abi()))

    def records(self, from_block: int | None = None, to_block: int | None = None, *, step: int = 2_000) -> Iterator[AuditRecord]:
        """Every anchored record in the block range, in chain order, read in bounded ranges."""
        topic = "0x" + self.events.topic("AuditRecordAppended").hex()
        start = self.from_block if from_block is None else from_block
        for event in read_events(self.chain, self.events, [self.address], start, to_block, topics=[topic], step=step):
            yield AuditRecord.from_event(event)
