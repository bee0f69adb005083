"""When the chain holds fewer of this oracle's records than the outbox marks anchored, or other ones.

A consortium chain can lose blocks the oracle saw mined: a proof-of-authority reorg, or a dev node
killed and restarted from a database that lost its newest blocks (ganache's ``--database.dbPath``).
The outbox then marks records anchored that the chain no longer holds, and each of them has a signed
receipt committing to its record hash and to the hash-chain head after it. What the oracle does:

* **Lost records are anchored again, as they were.** The batcher compares the chain's last sequence
  for the oracle with the highest one it holds as anchored (at the anchoring side's start, whenever a
  batch fails or a refusal says the sequence is not the chain's, when a batch stays stuck behind a
  nonce the chain no longer reaches, and every ``batch_chain_check_seconds`` while it runs). Records
  past the chain's last sequence are un-marked in the outbox (:meth:`oracle.outbox.Outbox.forget_anchored`)
  and anchored again in sequence order with their stored content: the same sequence numbers, record
  hashes and hash chain (the contract recomputes the head from the chain's, which is the outbox's
  head at that sequence, checked first), so every receipt stays valid. It logs "N records lost from
  the chain (sequences a..b), anchoring them again" and counts them
  (``govshare_oracle_lost_from_chain_records_total``). The contract's sequence check keeps this
  exactly-once: a record the chain still holds is never sent again (it is never un-marked), and one
  sent twice anyway (a node behind the others answering the check) is refused and marked again.
* **A chain that holds other records is refused** (:class:`ChainDiverged`): when the hash-chain head
  the chain holds after sequence ``s`` is not the head of the outbox's records ``1..s``, the chain
  holds records this oracle did not write, or not as it wrote them (a fork beyond repair, another
  instance with the key, or tampering). Anchoring after it would extend a history the receipts do
  not describe, and nothing may be overwritten: the oracle refuses to start (exit 1), and a running
  batcher stops anchoring for good (CRITICAL in the log, ``/v1/health``'s ``last_anchoring_error``)
  until people decide. The outbox keeps every record; the receipts prove what the oracle signed.

A re-anchored record keeps its decision block (``checked_at_block``): the receipt binds it. After a
rollback it may name a block the chain has not reached again; a served record is then held (like one
too old for the decision-age bound, ``oracle.batcher.HeldRecord``) until the chain's next block is
at least its decision block, since auditors flag a served record anchored before the block it was
decided at (``decision_after_anchoring``). On a proof-of-authority chain blocks come every period
anyway; on ganache, which mines only for transactions, each batch anchored before the held record
moves the chain on.

What this cannot repair: records lost from the chain that the outbox no longer holds (an outbox
replaced by an older copy as well) are reported (:class:`ChainDiverged`), not invented. A decision
block the new chain reaches with other contents (a grant lost with the rollback) shows in the
auditors' replay, as it should.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.contracts.audit_log import ZERO_HASH, OracleState, Outcome, recompute_head
from oracle.outbox_file import OutboxMismatch, OutboxRecord, record_from_row
from oracle.outbox_seal import HeadSeal

__all__ = ["ChainDiverged", "LostRecords", "check_chain_agrees", "check_outbox_against_chain", "find_lost",
           "held_for_lost_blocks", "read_backlog", "reconcile_outbox", "unmark_after"]


class ChainDiverged(OutboxMismatch):
    """The chain holds records at this oracle's sequences that are not the outbox's: refused, never overwritten."""


@dataclass(frozen=True)
class LostRecords:
    """Records ``first``..``last`` the outbox held as anchored and the chain no longer holds."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{self.count} records lost from the chain (sequences {self.first}..{self.last}), anchoring them again"


def check_chain_agrees(oracle: str, records: Sequence[OutboxRecord], chain_last: int, chain_head: bytes,
                       where: str) -> None:
    """:class:`ChainDiverged` unless the chain's head after ``chain_last`` is the head of the outbox's
    records ``1..chain_last`` (``records``: those, in sequence order). Nothing to compare, and so no
    refusal, when the outbox does not hold them all (it began after the chain, a lost outbox)."""
    local = _local_head(oracle, records, chain_last)
    if local is not None and local != chain_head:
        raise ChainDiverged(
            f"the chain's hash-chain head for this oracle after sequence {chain_last} is 0x{chain_head.hex()}, the "
            f"records 1..{chain_last} of outbox {where} give 0x{local.hex()}: the chain diverged from the outbox (a fork, "
            "another instance with the oracle's key, or tampering with the chain or the outbox); nothing is anchored "
            "over it. Investigate before starting the oracle again")


def check_outbox_against_chain(db: sqlite3.Connection, oracle: str, chain_last: int, chain_head: bytes,
                               sealed: tuple[int, bytes, bytes] | None, seal: HeadSeal, where: str) -> None:
    """At start-up (:meth:`oracle.outbox.Outbox.bind`, before the records not yet on chain are checked
    against the sealed head): :class:`ChainDiverged` if the chain's head after ``chain_last`` is not
    the head of the outbox's records up to it *and* the outbox is what the oracle wrote (its records,
    recomputed from the first, end at the head it sealed, ``sealed``). An outbox whose records do not
    (edited) is left to :func:`oracle.outbox_seal.check_unanchored`, which judges the records the chain
    does not hold yet: an edit of a record already on chain does not stop the oracle (the chain is the
    evidence). Nothing to compare when no head is given (``ZERO_HASH``, which no chain holds after a record)."""
    if chain_head == ZERO_HASH or chain_last == 0 or sealed is None:
        return
    records = [record_from_row(r) for r in db.execute("SELECT * FROM records ORDER BY sequence")]
    local = _local_head(oracle, records[:chain_last], chain_last)
    if local is None or local == chain_head:
        return
    sealed_sequence, sealed_head, sealed_mac = sealed
    mine = seal.valid(sealed_sequence, sealed_head, sealed_mac) and records[-1].sequence == sealed_sequence and \
        recompute_head(oracle, [r.entry for r in records]) == sealed_head
    if mine:
        raise ChainDiverged(
            f"the chain diverged from outbox {where}: its hash-chain head for this oracle after sequence {chain_last} is "
            f"0x{chain_head.hex()}, the oracle's own records 1..{chain_last} (as sealed) give 0x{local.hex()}. The chain "
            "holds records this oracle did not write (a fork, another instance with its key, or tampering); nothing "
            "is anchored over them. Investigate before starting the oracle again")


def _local_head(oracle: str, records: Sequence[OutboxRecord], chain_last: int) -> bytes | None:
    """The head after the outbox's records ``1..chain_last`` (``records``), None unless it holds them all."""
    if chain_last == 0 or len(records) != chain_last or records[0].sequence != 1 or records[-1].sequence != chain_last:
        return None
    return recompute_head(oracle, [r.entry for r in records])


def find_lost(records: Sequence[OutboxRecord], state: OracleState, anchored_through: int, where: str) -> LostRecords | None:
    """The records past the chain's last sequence (``state``) that were held as anchored: marked in
    ``records`` (every record of the outbox, in sequence order) or up to ``anchored_through`` (what
    the batcher itself saw mined). :class:`ChainDiverged` if the outbox no longer holds one of them."""
    marked = max([anchored_through] + [r.sequence for r in records if r.anchored_block is not None])
    if marked <= state.last_sequence:
        return None
    lost = LostRecords(state.last_sequence + 1, marked)
    held = {r.sequence for r in records if lost.first <= r.sequence <= lost.last}
    if len(held) != lost.count:
        raise ChainDiverged(f"{lost.count} records lost from the chain (sequences {lost.first}..{lost.last}) and outbox "
                            f"{where} no longer holds them all: they cannot be anchored again")
    return lost


def reconcile_outbox(outbox: Any, oracle: str, state: OracleState, anchored_through: int) -> LostRecords | None:
    """Bring ``outbox`` (the batcher's :class:`oracle.batcher.AnchoringSide`) in line with the chain's
    ``state`` for ``oracle``: :class:`ChainDiverged` unless the chain's head is the head of the
    outbox's records up to its last sequence; the records past it held as anchored (marked, or up to
    ``anchored_through``) are un-marked, to be anchored again, and returned; those up to it not yet
    marked (a batch whose receipt was lost, one anchored before a crash) are marked."""
    records = list(outbox.all_records())
    local = [r for r in records if r.sequence <= state.last_sequence]
    where = str(getattr(outbox, "path", "of the oracle"))
    check_chain_agrees(oracle, local, state.last_sequence, state.head, where)
    lost = find_lost(records, state, anchored_through, where)
    if lost is not None:
        outbox.forget_anchored(state.last_sequence)
    unmarked = [r for r in local if r.anchored_block is None]
    if unmarked:
        outbox.mark_anchored(unmarked[0].sequence, unmarked[-1].sequence, "(reconciled)", 0)
    outbox.on_chain_through(state.last_sequence)
    return lost


def held_for_lost_blocks(sequence: int, decision_block: int, next_block: int) -> str:
    """Why anchoring holds at served record ``sequence``, decided at ``decision_block``, when the chain's
    next block is ``next_block``, before it (the batcher's ``HeldRecord``, after the chain lost blocks)."""
    return (f"anchoring held at record {sequence}: served after a decision at block {decision_block}, which the chain "
            f"has not reached again since it lost blocks (its next block is {next_block}); anchored sooner, auditors "
            "would see the decision made after its anchoring. It and the records after it wait until the chain "
            "reaches that block")


def unmark_after(db: sqlite3.Connection, sequence: int) -> int:
    """Un-mark every record past ``sequence`` held as anchored (the writer's connection); how many."""
    return db.execute("UPDATE records SET anchored_tx = NULL, anchored_block = NULL WHERE sequence > ?"
                      " AND anchored_block IS NOT NULL", (sequence,)).rowcount


def read_backlog(db: sqlite3.Connection) -> tuple[dict[int, int], int, float | None]:
    """(served records not yet on chain per grant, records not yet on chain, ``created_at`` of the
    oldest of them): what the outbox keeps in memory, read from its file."""
    served = {int(grant_id): int(count) for grant_id, count in db.execute(
        "SELECT grant_id, COUNT(*) FROM records WHERE anchored_block IS NULL AND outcome = ? GROUP BY grant_id",
        (int(Outcome.SERVED),))}
    count, oldest = db.execute("SELECT COUNT(*), MIN(created_at) FROM records WHERE anchored_block IS NULL").fetchone()
    return served, int(count), oldest
