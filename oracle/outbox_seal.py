"""The outbox's sealed head: the oracle's own record of what it signed, checked at start-up.

Every receipt the oracle signs commits to its record's hash and to the hash-chain head after it
(:mod:`protocol.receipt`). The outbox keeps the head after its newest record, sealed with a key only
the oracle's private key yields (HMAC-SHA256, :meth:`ledger.keys.Signer.derive_key`), in the same
SQLite statement as the record. At start-up (:meth:`oracle.outbox.Outbox.bind`) the oracle recomputes
its hash chain from the head the contract holds over the records the chain does not hold yet, and
refuses to start (:class:`OutboxTampered`) if a record is missing, was added, or no longer hashes to
the sealed head: anchoring it would put on chain something other than what its receipts say.

What this cannot see: a whole outbox put back to an earlier state of its own (every row and the seal
as they were before); the receipts still prove that (``govshare audit verify --receipts DIR``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger.contracts.audit_log import AuditEntry, chain_step, record_id
from oracle.outbox_file import OutboxMismatch

__all__ = ["RECENT_HEADS", "SEAL_KEY_LABEL", "HeadSeal", "OutboxTampered", "RecentHeads", "check_unanchored"]

#: What the seal key is derived for (``Signer.derive_key(SEAL_KEY_LABEL)``).
SEAL_KEY_LABEL = b"govshare oracle outbox head seal v1"


#: Hash-chain heads kept in memory for receipts not yet made (:class:`RecentHeads`): a receipt is
#: made as soon as its record is written, so only a group's worth is ever waiting.
RECENT_HEADS = 1 << 14


class RecentHeads:
    """(head before, head after) of records just written, until their receipt takes them (written
    under the outbox's lock; taken without it: each step is one atomic dict operation)."""

    def __init__(self) -> None:
        self._heads: dict[int, tuple[bytes, bytes]] = {}

    def remember(self, sequence: int, previous: bytes, head: bytes) -> None:
        heads = self._heads
        heads[sequence] = (previous, head)
        if len(heads) > RECENT_HEADS:  # never taken (a write whose receipt nobody makes)
            heads.pop(next(iter(heads)), None)

    def take(self, sequence: int) -> tuple[bytes, bytes]:
        return self._heads.pop(sequence)

    def forget(self, sequence: int) -> None:
        self._heads.pop(sequence, None)


class OutboxTampered(OutboxMismatch):
    """The outbox's records not yet on chain no longer match the head the oracle sealed (and signed
    receipts for): a record was altered, removed or added while the oracle was not writing."""


@dataclass(frozen=True)
class HeadSeal:
    """Seals (sequence, head) for one outbox identity (oracle, chain, audit log) with the oracle's key."""

    key: bytes
    identity: bytes

    @classmethod
    def for_identity(cls, key: bytes, identity: Mapping[str, str]) -> HeadSeal:
        canonical = "\n".join(f"{k}={identity[k]}" for k in sorted(identity)).encode()
        return cls(key, canonical)

    def seal(self, sequence: int, head: bytes) -> bytes:
        """The 32-byte seal of ``head`` as the hash-chain head after ``sequence``."""
        return hmac.digest(self.key, b"".join((self.identity, b"\x00", sequence.to_bytes(8, "big"), head)), "sha256")

    def valid(self, sequence: int, head: bytes, seal: bytes) -> bool:
        return hmac.compare_digest(self.seal(sequence, head), seal)


def check_unanchored(oracle: str, records: Sequence[tuple[int, AuditEntry]], chain_last: int, chain_head: bytes,
                     sealed: tuple[int, bytes, bytes] | None, seal: HeadSeal, where: str) -> bytes:
    """The head after the last of ``records`` (the outbox's records past the chain's last sequence
    ``chain_last``, in sequence order), recomputed from ``chain_head``; :class:`OutboxTampered` unless
    they follow on from the chain without a gap and end exactly at the sealed (sequence, head)."""
    head = chain_head
    heads: dict[int, bytes] = {chain_last: chain_head}
    for expected, (sequence, entry) in enumerate(records, start=chain_last + 1):
        if sequence != expected:
            raise OutboxTampered(f"outbox {where}: record {expected} is missing (the records not on chain jump from "
                                 f"{expected - 1} to {sequence}); the oracle signed a receipt for it, and anchoring the "
                                 "rest would renumber them. Restore the outbox from a copy, or investigate")
        head = heads[sequence] = chain_step(head, record_id(oracle, sequence), entry)
    last_local = records[-1][0] if records else chain_last
    if sealed is None:
        if records:
            raise OutboxTampered(f"outbox {where}: {len(records)} record(s) wait to be anchored but the outbox holds no "
                                 "sealed head to check them against (removed, or written by an older govshare: anchor "
                                 "them with that version before upgrading)")
        return head
    sealed_sequence, sealed_head, sealed_mac = sealed
    if not seal.valid(sealed_sequence, sealed_head, sealed_mac):
        raise OutboxTampered(f"outbox {where}: its sealed head (sequence {sealed_sequence}) is not sealed by this "
                             "oracle's key: it was altered, or the file belongs to another key")
    if sealed_sequence > last_local:
        raise OutboxTampered(f"outbox {where}: records {last_local + 1}..{sealed_sequence} were removed: the oracle "
                             f"signed receipts up to sequence {sealed_sequence}, the outbox ends at {last_local}")
    if sealed_sequence < last_local and records:
        raise OutboxTampered(f"outbox {where}: records {max(sealed_sequence, chain_last) + 1}..{last_local} were added "
                             f"after the last record the oracle wrote ({sealed_sequence})")
    if sealed_sequence > chain_last and heads[sealed_sequence] != sealed_head:
        raise OutboxTampered(f"outbox {where}: the records {chain_last + 1}..{sealed_sequence} not yet on chain no longer "
                             f"hash to the head the oracle sealed and signed receipts for (0x{sealed_head.hex()}; "
                             f"recomputed 0x{heads[sealed_sequence].hex()}): a record was altered")
    return head
