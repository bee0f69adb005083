"""Requesters' receipts checked against the chain (``govshare audit verify --receipts DIR``).

A receipt (:mod:`protocol.receipt`) is the oracle's signed promise of what it will anchor at one
sequence: the record's hash and the hash-chain head after it. Given the receipts requesters kept
(JSON files, one receipt each, as ``govshare query --save-receipt`` writes them), the auditor checks
for each one:

* it is signed in the one canonical form, by the oracle it names, and that account held ORACLE (in
  an active member department) at the receipt's decision block (else ``receipt_not_from_oracle``);
* it is consistent in itself: record id, record hash and chain head follow from its fields
  (``receipt_inconsistent``: the oracle signed a self-contradiction, which proves it misbehaved);
* the chain holds, at that oracle and sequence, exactly that record: nothing there
  (``receipt_not_anchored``), another request's record (``receipt_sequence_reused``: the receipt's
  record was dropped and its sequence given to another), the same request with other contents
  (``receipt_record_altered``: e.g. SERVED rewritten as DENIED), or the same record after a different
  history (``receipt_head_mismatch``: an earlier record was altered or dropped).

Each of these is signed evidence against the oracle; the receipts of a set that all match show
that those accesses are on chain as their requesters were told.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from auditing.history import AccessHistory
from auditing.index import ORACLE, AuditIndex, end_of_block, last_position
from auditing.report import CheckCount, VerificationInputError, Violation
from ledger.contracts.audit_log import ZERO_HASH, AuditEntry, Outcome, chain_step, record_id
from protocol.receipt import InvalidReceipt, Receipt, receipt_signer

__all__ = ["MAX_RECEIPT_BYTES", "ReceiptFile", "read_receipts", "verify_receipts"]

#: A receipt is about 1.3 KB; a file larger than this is not one.
MAX_RECEIPT_BYTES = 64 << 10
_U64 = 1 << 64


@dataclass(frozen=True)
class ReceiptFile:
    """One receipt's wire form and where it came from."""

    source: str
    data: dict[str, Any]


def read_receipts(sources: Sequence[Path | str]) -> list[ReceiptFile]:
    """The receipts in ``sources``: directories (every ``*.json`` file in them, sorted) or files, each
    holding one receipt object (or an object with a ``receipt`` key, as the query answer carries it).
    :class:`VerificationInputError` for a path that is missing, too large or not such JSON."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise VerificationInputError(f"no receipt file or directory at {path}")
    receipts = []
    for path in files:
        if path.stat().st_size > MAX_RECEIPT_BYTES:
            raise VerificationInputError(f"{path} is larger than {MAX_RECEIPT_BYTES} bytes: not a receipt")
        try:
            data = json.loads(path.read_bytes())
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise VerificationInputError(f"{path} is not a JSON receipt: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("receipt"), dict):
            data = data["receipt"]
        if not isinstance(data, dict):
            raise VerificationInputError(f"{path} holds no receipt object")
        receipts.append(ReceiptFile(str(path), data))
    return receipts


def verify_receipts(index: AuditIndex, receipts: Sequence[ReceiptFile], cursor: int | None, history: AccessHistory,
                    check: CheckCount, violations: list[Violation]) -> None:
    """Check each receipt against the index (up to block ``cursor``), adding a violation per mismatch."""
    chains: dict[str, dict[int, tuple[tuple, bytes, bytes]]] = {}  # oracle -> sequence -> (row, record hash, head)
    for item in receipts:
        check.checked += 1
        problem = _check_one(index, item, cursor, history, chains)
        if problem is None:
            check.passed += 1
        else:
            violations.append(problem)


def _check_one(index: AuditIndex, item: ReceiptFile, cursor: int | None, history: AccessHistory,
               chains: dict[str, dict[int, tuple[tuple, bytes, bytes]]]) -> Violation | None:
    where = item.source
    try:
        receipt = Receipt.from_dict(item.data)
        signer = receipt_signer(item.data)
        oracle = to_checksum_address(receipt.oracle)
        sequence = int(receipt.sequence)
    except (InvalidReceipt, ValueError, TypeError) as exc:
        return Violation("receipts", "receipt_not_from_oracle", f"{where}: not a receipt signed in the canonical form: {exc}")
    rid = int(oracle, 16) << 64 | sequence if 0 < sequence < _U64 else None

    def violation(code: str, message: str, row: tuple | None = None) -> Violation:
        return Violation("receipts", code, f"{where}: {message}", rid, oracle, sequence,
                         None if row is None else row[10], None if row is None else row[11])

    if signer != oracle:
        return violation("receipt_not_from_oracle", f"signed by {signer}, not by the oracle {oracle} it names")
    chain = chains.get(oracle)
    if chain is None:
        chain = chains[oracle] = _oracle_chain(index, oracle, cursor)
    found = chain.get(sequence)
    # an oracle then: at the decision block, or (a refusal recorded before the oracle read a block)
    # at the block its record was anchored in
    blocks = [int(receipt.checked_at_block)] + ([found[0][10]] if found is not None else [])
    if not any(_oracle_at(history, oracle, end_of_block(block)) for block in blocks):
        return violation("receipt_not_from_oracle", f"{oracle} did not hold the oracle role of a member department at "
                                                    f"block {receipt.checked_at_block}, the receipt's decision block")
    try:
        receipt.check_binding()
    except InvalidReceipt as exc:
        return violation("receipt_inconsistent", f"the oracle signed a receipt that contradicts itself: {exc}")
    if found is None:
        last = max(chain, default=0)
        return violation("receipt_not_anchored", f"the oracle signed a receipt for sequence {sequence} "
                                                 f"({Outcome(receipt.outcome).name}), the chain holds no record there "
                                                 f"(its records of {oracle} end at {last})")
    row, record_hash, head = found
    entry = receipt.entry()
    if "0x" + record_hash.hex() != receipt.record_hash:
        if bytes(row[8]) != entry.request_hash:
            return violation("receipt_sequence_reused",
                             f"sequence {sequence} on chain holds another request's record (request hash "
                             f"0x{bytes(row[8]).hex()}, not the receipt's {receipt.request_hash}): the receipt's "
                             "record was dropped and its sequence reused", row)
        return violation("receipt_record_altered", f"record {sequence} on chain differs from the receipt: "
                                                   + "; ".join(_differences(entry, row)), row)
    if "0x" + head.hex() != receipt.chain_head:
        return violation("receipt_head_mismatch",
                         f"record {sequence} is on chain as signed, but the chain's head after it is 0x{head.hex()}, "
                         f"not the receipt's {receipt.chain_head}: an earlier record was altered or dropped", row)
    return None


def _oracle_at(history: AccessHistory, account: str, pos: int) -> bool:
    dept, roles = history.account(account, pos)
    return bool(dept and roles & ORACLE and history.active(dept, pos))


def _oracle_chain(index: AuditIndex, oracle: str, cursor: int | None) -> dict[int, tuple[tuple, bytes, bytes]]:
    """Per sequence, the oracle's record on chain, its record hash and the hash-chain head after it
    (recomputed from sequence 1 in order: the contract extends the same chain, and the trail's
    ``hash_chain`` check compares it with the heads the contract published)."""
    rows = index.raw(
        "SELECT sequence, grant_id, requester, dataset_id, dataset_version, outcome, reason, checked_at_block,"
        " request_hash, response_hash, block_number, tx_hash FROM records WHERE oracle = ? AND pos <= ? ORDER BY pos",
        (oracle, last_position(cursor)))
    chain: dict[int, tuple[tuple, bytes, bytes]] = {}
    head = ZERO_HASH
    for row in rows:
        sequence, entry = _u(row[0]), _entry(row)
        head = chain_step(head, record_id(oracle, sequence), entry)
        chain.setdefault(sequence, (row, entry.record_hash(), head))
    return chain


def _u(value: int) -> int:
    return value + _U64 if value < 0 else value


def _entry(row: tuple) -> AuditEntry:
    (_, grant_id, requester, dataset_id, version, outcome, reason, checked, request_hash, response_hash, _, _) = row
    return AuditEntry(_u(grant_id), requester, _u(dataset_id), version, Outcome(outcome), reason, _u(checked),
                      bytes(request_hash), bytes(response_hash))


def _differences(entry: AuditEntry, row: tuple) -> list[str]:
    chain = _entry(row)
    out = []
    for name in ("grant_id", "requester", "dataset_id", "dataset_version", "outcome", "reason", "checked_at_block",
                 "request_hash", "response_hash"):
        mine, theirs = getattr(entry, name), getattr(chain, name)
        if name == "requester" and str(mine).lower() == str(theirs).lower():
            continue
        if mine != theirs:
            show = (lambda v: "0x" + v.hex()) if isinstance(theirs, bytes) else (lambda v: getattr(v, "name", v))
            out.append(f"{name} {show(mine)} in the receipt, {show(theirs)} on chain")
    return out
