"""The fault soak's accounting (``fault_soak.py``): what the requesters were told (the oracle's
signed receipts) against what the chain holds (``AuditRecordAppended`` of the oracle) and the
oracle's own log (its export, for the salts that tie a record without a receipt to its query).

* **lost**: a receipt whose record is not on chain as the receipt says (nothing at its sequence,
  or another record there);
* **duplicated**: a sequence on chain twice, a request hash on chain twice (but for strict mode's
  pair of a SERVED record and the WITHHELD denial that follows it, the same request by design), or
  one query, (requester, nonce), behind two records that are neither a NONCE_REPLAYED refusal of a
  resent query nor a WITHHELD denial;
* also: gaps in the oracle's sequence, receipts contradicting one another, records on chain with
  neither a receipt nor a query found (answers lost to a kill are matched by recomputing the
  request hash with the record's salt from the export over the queries whose answer was lost).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.contracts.audit_log import AuditRecord, OracleReason, Outcome
from protocol import commitments

#: A second record of one query that is not a duplicate: the refusal of a resent query, strict mode's withholding.
EXPECTED_SECOND = {int(OracleReason.NONCE_REPLAYED), int(OracleReason.WITHHELD)}


@dataclass
class Ledger:
    """What the requesters hold: receipts (with the nonce of the query each answers) and the
    committed forms of the queries whose answer never came (a kill mid-answer), by nonce."""

    receipts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    lost_answers: dict[int, dict[str, Any]] = field(default_factory=dict)


def tally(records: Iterable[AuditRecord], oracle: str, ledger: Ledger, export: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The counts of the module docstring, with examples (at most 10 of each kind) for the report."""
    ours = [r for r in records if r.oracle.lower() == oracle.lower()]
    sequences = Counter(r.sequence for r in ours)
    by_sequence = {r.sequence: r for r in ours}
    top = max(sequences, default=0)
    gaps = [s for s in range(1, top + 1) if s not in sequences]
    examples: dict[str, list[Any]] = defaultdict(list)

    def note(kind: str, what: Any) -> None:
        if len(examples[kind]) < 10:
            examples[kind].append(what)

    # ---- receipts against the chain
    lost = conflicting = 0
    receipt_at: dict[int, dict[str, Any]] = {}
    nonce_of: dict[int, int] = {}  # sequence -> nonce of the query it records
    for nonce, receipt in ledger.receipts:
        sequence = receipt["sequence"]
        earlier = receipt_at.get(sequence)
        if earlier is not None and earlier["request_hash"] != receipt["request_hash"]:
            conflicting += 1
            note("conflicting_receipts", sequence)
        receipt_at.setdefault(sequence, receipt)
        nonce_of[sequence] = nonce
        record = by_sequence.get(sequence)
        if record is None or not _same(record, receipt):
            lost += 1
            note("lost", {"sequence": sequence, "on_chain": record is not None, "outcome": receipt["outcome"],
                          "reason": receipt["reason"]})

    # ---- the same record twice
    duplicated = sum(n - 1 for n in sequences.values() if n > 1)
    withheld_pairs = 0
    by_request: dict[bytes, list[AuditRecord]] = defaultdict(list)
    for record in ours:
        by_request[record.entry.request_hash].append(record)
    for group in by_request.values():
        if len(group) < 2:
            continue
        if len(group) == 2 and _withheld_pair(group):
            withheld_pairs += 1
            continue
        duplicated += len(group) - 1
        note("duplicated_request_hash", [r.sequence for r in group])

    # ---- records tied to their query: by receipt, else by the salt and the lost answers' queries
    salts = {int(line["sequence"]): line.get("request_salt") for line in export}
    unmatched: list[int] = []
    for record in ours:
        if record.sequence in nonce_of:
            continue
        nonce = _query_of(record, salts.get(record.sequence), ledger.lost_answers)
        if nonce is None:
            unmatched.append(record.sequence)
        else:
            nonce_of[record.sequence] = nonce
    per_query: dict[int, list[AuditRecord]] = defaultdict(list)
    for sequence, nonce in nonce_of.items():
        if sequence in by_sequence:
            per_query[nonce].append(by_sequence[sequence])
    for nonce, group in per_query.items():
        firsts = [r for r in group if r.entry.reason not in EXPECTED_SECOND]
        if len(firsts) > 1:
            duplicated += len(firsts) - 1
            note("duplicated_query", {"nonce": hex(nonce), "sequences": [r.sequence for r in group]})

    # records of a withheld pair's SERVED half carry no receipt of their own: not "unmatched"
    withheld_served = {r.sequence for g in by_request.values() if len(g) == 2 and _withheld_pair(g)
                       for r in g if r.entry.outcome == Outcome.SERVED}
    unmatched = [s for s in unmatched if s not in withheld_served]
    for sequence in unmatched:
        note("unmatched", sequence)
    outcomes = Counter(Outcome(r.entry.outcome).name.lower() for r in ours)
    return {
        "records_on_chain": len(ours),
        "records_by_outcome": dict(outcomes),
        "last_sequence_on_chain": top,
        "gaps": len(gaps),
        "receipts": len(ledger.receipts),
        "receipt_sequences": len(receipt_at),
        "lost": lost,
        "duplicated": duplicated,
        "conflicting_receipts": conflicting,
        "withheld_pairs": withheld_pairs,
        "records_without_receipt": len(ours) - len(receipt_at.keys() & by_sequence.keys()),
        "records_matched_to_lost_answers": sum(1 for s in nonce_of if s not in receipt_at),
        "records_unmatched": len(unmatched),
        "examples": dict(examples),
    }


def _same(record: AuditRecord, receipt: Mapping[str, Any]) -> bool:
    e = record.entry
    return (hex(record.record_id) == receipt["record_id"] and "0x" + e.request_hash.hex() == receipt["request_hash"]
            and "0x" + e.response_hash.hex() == receipt["response_hash"]
            and (int(e.outcome), e.reason) == (receipt["outcome"], receipt["reason"]))


def _withheld_pair(group: Sequence[AuditRecord]) -> bool:
    served, withheld = sorted(group, key=lambda r: r.sequence)
    return served.entry.outcome == Outcome.SERVED and withheld.entry.reason == OracleReason.WITHHELD


def _query_of(record: AuditRecord, salt: str | None, lost_answers: Mapping[int, Mapping[str, Any]]) -> int | None:
    """The nonce of the lost-answer query whose request hash, with ``salt``, is the record's."""
    if not salt:
        return None
    raw = bytes.fromhex(salt.removeprefix("0x"))
    for nonce, canonical in lost_answers.items():
        if commitments.request_hash(canonical, raw) == record.entry.request_hash:
            return nonce
    return None
