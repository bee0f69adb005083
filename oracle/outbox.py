"""The oracle's durable outbox (its writer): every access is written here, in one SQLite transaction with the
requester's nonce, *before* the answer leaves; a batcher later anchors the records on chain.

SQLite in WAL mode. A record's sequence number is allocated here, contiguously, starting one past
the oracle's last anchored sequence on chain; with the contract refusing gaps and duplicates,
that makes anchoring exactly-once. ``synchronous=NORMAL`` survives a killed process (the case the
oracle must handle); ``durability="full"`` also survives power loss at the cost of an fsync per write.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ledger.contracts.audit_log import ZERO_HASH, AuditEntry, Outcome, chain_step, record_id
from oracle.chain_rollback import check_outbox_against_chain, read_backlog, unmark_after
from oracle.errors import NonceReplayed, QuotaUsedUp
from oracle.outbox_file import (
    INSERT_RECORD,
    INSERT_RECORD_WITH_NONCE,
    MIGRATE_NONCES,
    PRUNE_NONCES,
    SCHEMA,
    OutboxMismatch,
    OutboxRecord,
    RecordWrite,
    WalReader,
    record_from_row,
)
from oracle.outbox_requests import ChainRequests
from oracle.outbox_seal import HeadSeal, RecentHeads, check_unanchored

_QUOTA_USED_UP = "the grant's quota is used up (counting accesses not yet on chain)"


#: How many blocks back an access check may lag behind the newest anchoring block.
ANCHORED_MEMORY_BLOCKS = 64

#: WAL pages after which the writer's commit copies back what the anchoring side's checkpoints have
#: not yet copied (``oracle.outbox_file.copy_wal_back`` says how the two sides share the work); SQLite's default ``wal_autocheckpoint``.
WRITER_CHECKPOINT_PAGES = 1000
#: The size the WAL file is cut back to when it is rewound (it grows past the bound above only
#: while a reader holds an old snapshot, e.g. a long export).
WAL_SIZE_LIMIT = 16 << 20

#: A used nonce is pruned this long after its query's deadline: by then the deadline check refuses a
#: replay of the query by itself. The margin covers the oracle's clock being stepped back a little.
NONCE_PRUNE_GRACE_SECONDS = 60.0
#: Seconds between two prunings by the writer (after a write), and the most rows one deletes (under
#: the writer's lock; the rest goes next time).
NONCE_PRUNE_INTERVAL_SECONDS = 60.0
NONCE_PRUNE_MAX_ROWS = 5_000


class Outbox:
    """Thread-safe: one connection, one lock; every write is one transaction."""

    def __init__(self, path: Path, *, durability: str = "normal",
                 nonce_grace_seconds: float = NONCE_PRUNE_GRACE_SECONDS) -> None:
        """``nonce_grace_seconds``: how long after its deadline a used nonce is kept (:meth:`prune_nonces`)."""
        self.path = Path(path)
        self.nonce_grace_seconds = nonce_grace_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One oracle process per outbox: a second one would allocate the same sequence numbers.
        self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise OutboxMismatch(f"outbox {self.path} is in use by another oracle process") from None
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # The anchoring side copies the WAL back (:meth:`checkpoint`, from its own connection, never
        # blocking writers: after each batch, and every CHECKPOINT_SECONDS while nothing anchors);
        # this connection copies only the rest, every WRITER_CHECKPOINT_PAGES pages, which lets
        # SQLite rewind the WAL (:func:`copy_wal_back`).
        self._db.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")  # applied when the WAL is rewound
        # the anchoring side (unanchored, mark_anchored, checkpoint) reads through a connection of its
        # own: the answering path's lock is held only for the writes themselves
        self._anchoring = WalReader(self.path)
        self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        if "expires_at" not in {row[1] for row in self._db.execute("PRAGMA table_info(nonces)")} and \
                self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'nonces'").fetchone():
            self._db.executescript(MIGRATE_NONCES)  # an outbox from before nonces expired
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.chain_requests = ChainRequests(self._db, self._lock)  # the on-chain request follower's state
        self._pruned_at = 0.0  # time.monotonic() of the last pruning of expired nonces (0: at the next write)
        self._next: int | None = None
        # the oracle's hash chain: the head after record _next - 1, and the seal of each new head
        self._oracle: str | None = None
        self._head: bytes = ZERO_HASH
        self._seal: HeadSeal | None = None
        self._recent_heads = RecentHeads()  # of records whose receipt is not made yet
        self._changed = threading.Condition(self._lock)
        # served records not yet anchored, per grant (they count toward the grant's quota), and the backlog
        # (count, oldest), in memory so that the batcher can tell whether a batch is due without a query
        self._pending_served, self._backlog_count, self._backlog_oldest = read_backlog(self._db)
        # per grant, (block, count) of served records anchored recently, oldest first: an access
        # check made at an earlier block does not count them yet
        self._anchored_served: dict[int, deque[tuple[int, int]]] = {}
        # answers held back until their record is anchored (strict mode), by sequence
        self._anchor_waiters: dict[int, list[Callable[[], None]]] = {}
        #: called with the sequence an answer starts waiting for (the anchoring process is told)
        self.on_waiter: Callable[[int], None] | None = None

    def checkpoint(self) -> None:
        """Copy what the WAL holds back into the database file, from the anchoring side's
        connection, without blocking the writer (:func:`copy_wal_back`)."""
        self._anchoring.checkpoint()

    def close(self) -> None:
        self._anchoring.close()
        with self._lock:
            self._db.close()
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    # ------------------------------------------------------------------ identity

    def bind(self, identity: dict[str, str], chain_last_sequence: int, chain_head: bytes = ZERO_HASH, *,
             seal_key: bytes) -> None:
        """Tie this file to one oracle of one deployment, check it against the oracle's sealed head,
        and start numbering after the chain.

        Refuses a file written for another oracle, chain or audit log. If the chain is ahead of the
        file (a lost or older outbox), numbering continues after the chain; if the file is ahead, its
        unanchored records wait to be anchored once recomputed from ``chain_head`` (the contract's
        head after ``chain_last_sequence``) they end at the head sealed with ``seal_key``, else
        :class:`~oracle.outbox_seal.OutboxTampered` (:mod:`oracle.outbox_seal`). A chain whose head is not
        the head of the file's records up to its last sequence is refused (``ChainDiverged``); records
        the chain lost are anchored again by the batcher (:mod:`oracle.chain_rollback`)."""
        with self._lock:
            stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if stored and stored != identity:
                raise OutboxMismatch(f"outbox {self.path} belongs to {stored}, not {identity}")
            seal = HeadSeal.for_identity(seal_key, identity)
            rows = self._db.execute("SELECT * FROM records WHERE sequence > ? ORDER BY sequence", (chain_last_sequence,))
            unanchored = [(r.sequence, r.entry) for r in map(record_from_row, rows)]
            sealed = self._db.execute("SELECT sequence, head, seal FROM sealed_head").fetchone()
            if sealed is not None:
                sealed = (int(sealed[0]), bytes(sealed[1]), bytes(sealed[2]))
            check_outbox_against_chain(self._db, identity["oracle"], chain_last_sequence, chain_head, sealed, seal, str(self.path))
            self._head = check_unanchored(identity["oracle"], unanchored, chain_last_sequence, chain_head, sealed, seal,
                                          str(self.path))
            if not stored:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(identity.items()))
            self._oracle, self._seal = identity["oracle"], seal
            (last_local,) = self._db.execute("SELECT COALESCE(MAX(sequence), 0) FROM records").fetchone()
            if sealed is None:  # a new file (or every record on chain): the row each write updates
                last = max(last_local, chain_last_sequence)
                self._db.execute("INSERT INTO sealed_head VALUES (1, ?, ?, ?)", (last, self._head, seal.seal(last, self._head)))
            self._next = max(last_local, chain_last_sequence) + 1

    def take_heads(self, sequence: int) -> tuple[bytes, bytes]:
        """(the hash-chain head before record ``sequence``, the head after it), for its receipt, once;
        without the lock (a dict's pop is atomic), since an on-chain answer's receipt is made under it."""
        return self._recent_heads.take(sequence)

    # ------------------------------------------------------------------ writes

    def record(
        self,
        entry: AuditEntry,
        *,
        request_salt: bytes | None,
        response_salt: bytes | None,
        nonce: tuple[str, str] | None = None,
        quota_room: int | None = None,
        checked_at_block: int = 0,
        keep_result: Callable[[int], tuple[int, str, bytes]] | None = None,
        nonce_expires_at: float | None = None,
    ) -> int:
        """Durably write one access (and consume the requester's nonce, atomically); its sequence.

        Raises :class:`NonceReplayed` (writing nothing) if the nonce was used before. With
        ``quota_room`` (the grant's quota minus its use on chain at ``checked_at_block``), a served
        access is written only if fewer than ``quota_room`` served accesses of the grant are not
        counted on chain at that block yet (those waiting here, and those anchored after it);
        otherwise :class:`QuotaUsedUp` is raised and nothing is written. The check and the write
        are one step, so concurrent queries cannot overrun a quota between them. ``keep_result``,
        called with the new sequence, gives the (request id, requester, encrypted answer) of an
        on-chain request, stored in the same transaction as its record. ``nonce_expires_at``: the
        signed query's deadline, after which the nonce may be pruned (:meth:`prune_nonces`); None
        keeps it for good."""
        write = RecordWrite(entry, request_salt, response_salt, nonce, quota_room, checked_at_block, nonce_expires_at)
        if keep_result is None:
            (result,) = self.record_many([write])
            if isinstance(result, Exception):
                raise result
            return result
        with self._lock:
            sequence = self._bound_next()
            if self._over_quota(write, 0):
                raise QuotaUsedUp(_QUOTA_USED_UP)
            created_at = time.time()
            previous = self._head
            values, head = self._values(sequence, write, created_at, previous)
            self._recent_heads.remember(sequence, previous, head)  # keep_result makes the receipt inside the transaction
            try:
                self._record_with_result(values, nonce, keep_result, nonce_expires_at)
            except BaseException as exc:
                self._recent_heads.forget(sequence)
                if isinstance(exc, sqlite3.IntegrityError):
                    raise self._refusal(exc) from None
                raise
            self._head = head
            self._count_written(sequence + 1, created_at, {entry.grant_id: 1} if entry.outcome is Outcome.SERVED else {})
            return sequence

    def record_many(self, writes: Sequence[RecordWrite]) -> list[int | NonceReplayed | QuotaUsedUp]:
        """:meth:`record` for several accesses in one transaction (group commit: the answering
        path's event loop writes together the records its answers reach at the same time); for each,
        in order, its sequence or the refusal :meth:`record` would have raised (nothing is written
        for that one). A replay or a used-up quota refuses only its own write; any other failure
        rolls the whole group back and is raised. Sequences stay contiguous: a refused write takes
        none. A single write is one statement on its own (atomic with its trigger), without BEGIN
        and COMMIT."""
        with self._lock:
            sequence = self._bound_next()
            results: list[int | NonceReplayed | QuotaUsedUp] = []
            served: dict[int, int] = {}  # this group's served records, per grant
            created_at = time.time()
            head = start_head = self._head
            written: list[tuple[int, bytes, bytes]] = []
            explicit = len(writes) > 1
            if explicit:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                for write in writes:
                    grant_id, is_served = write.entry.grant_id, write.entry.outcome is Outcome.SERVED
                    if self._over_quota(write, served.get(grant_id, 0)):
                        results.append(QuotaUsedUp(_QUOTA_USED_UP))
                        continue
                    values, new_head = self._values(sequence, write, created_at, head)
                    try:  # a failing statement is undone alone (its trigger's inserts too); the transaction goes on
                        self._insert(values, write.nonce, write.nonce_expires_at)
                    except sqlite3.IntegrityError as exc:
                        results.append(self._refusal(exc))
                        continue
                    written.append((sequence, head, new_head))
                    head = new_head
                    results.append(sequence)
                    sequence += 1
                    if is_served:
                        served[grant_id] = served.get(grant_id, 0) + 1
                if explicit:
                    self._db.execute("COMMIT")
            except BaseException:
                if explicit:
                    self._db.execute("ROLLBACK")
                self._head = start_head
                raise
            self._head = head
            for written_sequence, previous, new_head in written:
                self._recent_heads.remember(written_sequence, previous, new_head)
            self._count_written(sequence, created_at, served)
            if time.monotonic() - self._pruned_at >= NONCE_PRUNE_INTERVAL_SECONDS:
                self._prune_nonces(time.time())
            return results

    def _bound_next(self) -> int:
        """The next sequence (under the lock); refuses an outbox not bound to an oracle yet."""
        if self._next is None:
            raise OutboxMismatch("outbox not bound to an oracle yet")
        return self._next

    def _over_quota(self, write: RecordWrite, also_written: int) -> bool:
        """Whether a served ``write`` would overrun its quota, counting ``also_written`` served
        records of its grant written beside it (under the lock)."""
        return write.quota_room is not None and write.entry.outcome is Outcome.SERVED and \
            self._uncounted(write.entry.grant_id, write.checked_at_block) + also_written >= write.quota_room

    def _values(self, sequence: int, write: RecordWrite, created_at: float, previous: bytes) -> tuple[tuple, bytes]:
        """The columns of ``write`` as record ``sequence`` after head ``previous``, and its head
        (one hash-chain step and one seal: a few µs; under the lock)."""
        entry = write.entry
        head = chain_step(previous, record_id(self._oracle, sequence), entry)  # type: ignore[arg-type]  # bound
        return (sequence, entry.grant_id, entry.requester, entry.dataset_id, entry.dataset_version, int(entry.outcome),
                entry.reason, entry.checked_at_block, entry.request_hash, entry.response_hash, write.request_salt,
                write.response_salt, created_at, head, self._seal.seal(sequence, head)), head  # type: ignore[union-attr]

    def _insert(self, values: tuple, nonce: tuple[str, str] | None, expires_at: float | None = None) -> None:
        """A record, with its requester's nonce in the same statement (through the view's trigger)."""
        if nonce is None:
            self._db.execute(INSERT_RECORD, values)
        else:
            self._db.execute(INSERT_RECORD_WITH_NONCE, (*values, nonce[0], str(nonce[1]), expires_at))

    def _refusal(self, exc: sqlite3.IntegrityError) -> NonceReplayed:
        """The refusal an insert's integrity error means: a used nonce (anything else is an outbox
        that disagrees with this oracle, raised)."""
        if "nonces" not in str(exc):
            raise OutboxMismatch(f"outbox {self.path}: {exc}") from None
        return NonceReplayed("this nonce was already used by this requester")

    def _count_written(self, next_sequence: int, created_at: float, served: dict[int, int]) -> None:
        """The bookkeeping of records written up to ``next_sequence`` at ``created_at`` (under the lock)."""
        written = next_sequence - self._next
        if not written:
            return
        self._next = next_sequence
        self._backlog_count += written
        if self._backlog_oldest is None:
            self._backlog_oldest = created_at
        for grant_id, count in served.items():
            self._pending_served[grant_id] = self._pending_served.get(grant_id, 0) + count
        self._changed.notify_all()

    def _record_with_result(self, values: tuple, nonce: tuple[str, str] | None,
                            keep_result: Callable[[int], tuple[int, str, bytes]], expires_at: float | None) -> None:
        """The record, its nonce and an on-chain request's answer in one transaction (under the lock)."""
        sequence = values[0]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._insert(values, nonce, expires_at)
            request_id, requester, blob = keep_result(sequence)
            self._db.execute("INSERT INTO chain_requests VALUES (?, ?, ?, ?, NULL)", (request_id, requester, sequence, blob))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def prune_nonces(self, now: float | None = None) -> int:
        """Delete the used nonces whose query's deadline passed more than ``nonce_grace_seconds``
        before ``now`` (default: the clock), at most :data:`NONCE_PRUNE_MAX_ROWS` of them; how many.
        A replay of a pruned nonce is refused by the deadline check, which comes before the nonce
        is looked at. The writer also calls this after a write every
        :data:`NONCE_PRUNE_INTERVAL_SECONDS`. Each deletion is a committed SQLite transaction: a
        pruned nonce stays pruned, an unpruned one stays used, whatever happens to the process."""
        with self._lock:
            return self._prune_nonces(time.time() if now is None else now)

    def _prune_nonces(self, now: float) -> int:
        self._pruned_at = time.monotonic()
        return self._db.execute(PRUNE_NONCES, (now - self.nonce_grace_seconds, NONCE_PRUNE_MAX_ROWS)).rowcount

    def nonce_count(self) -> int:  # used nonces kept
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM nonces").fetchone()[0])

    def nonce_used(self, requester: str, nonce: str | int) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM nonces WHERE requester = ? AND nonce = ?", (requester, str(nonce))).fetchone()
        return row is not None

    def mark_anchored(self, first: int, last: int, tx_hash: str, block: int) -> None:
        """Record that records ``first``..``last`` are on chain (in ``tx_hash``, ``block``; block 0
        when reconciled from the chain's state). Records are anchored in sequence order, so every
        record after ``last`` is still waiting."""
        with self._anchoring.lock:
            # Read what the update needs before taking the writer's lock: only the anchoring side
            # changes these rows, and records after ``last`` are only ever appended.
            served = self._anchoring.read(
                "SELECT grant_id, COUNT(*) FROM records WHERE sequence BETWEEN ? AND ? AND anchored_block IS NULL"
                " AND outcome = ? GROUP BY grant_id",
                (first, last, int(Outcome.SERVED)),
            )
            following = self._anchoring.read("SELECT created_at FROM records WHERE sequence = ?", (last + 1,))
            with self._lock:
                marked = self._db.execute(
                    "UPDATE records SET anchored_tx = ?, anchored_block = ? WHERE sequence BETWEEN ? AND ? AND anchored_block IS NULL",
                    (tx_hash, block, first, last),
                ).rowcount
                for grant_id, count in served:
                    self._pending_served[int(grant_id)] -= int(count)
                    if block > 0:
                        recent = self._anchored_served.setdefault(int(grant_id), deque())
                        recent.append((block, int(count)))
                        while recent[0][0] < block - ANCHORED_MEMORY_BLOCKS:
                            recent.popleft()  # every check is made at a later head by now
                self._backlog_count -= marked
                if not marked:  # marked before (a repeated batch): the backlog is as it was
                    pass
                elif self._backlog_count == 0:
                    self._backlog_oldest = None
                elif following:  # ``last`` is now the newest record on chain
                    self._backlog_oldest = following[0][0]
                else:  # written since the read above
                    self._backlog_oldest = self._db.execute(
                        "SELECT created_at FROM records WHERE anchored_block IS NULL ORDER BY sequence LIMIT 1").fetchone()[0]
                ready = [callback for sequence in [q for q in self._anchor_waiters if q <= last]
                         for callback in self._anchor_waiters.pop(sequence)]
                self._changed.notify_all()
        for callback in ready:
            callback()

    def on_chain_through(self, sequence: int) -> None:
        """The chain holds every record up to ``sequence`` (:meth:`mark_anchored` marked them)."""

    def forget_anchored(self, after: int) -> None:
        """The chain no longer holds the records past ``after`` (a rollback: :mod:`oracle.chain_rollback`):
        un-mark them, so that they count as not yet on chain (backlog, quota) and are anchored again."""
        with self._anchoring.lock, self._lock:
            if unmark_after(self._db, after):
                self._pending_served, self._backlog_count, self._backlog_oldest = read_backlog(self._db)
                self._changed.notify_all()

    # ------------------------------------------------------------------ reads

    def unanchored(self, limit: int, after: int = 0) -> list[OutboxRecord]:
        """The oldest records not yet on chain (and past sequence ``after``: those not yet sent while
        batches are in flight), in sequence order."""
        rows = self._anchoring.read(
            "SELECT * FROM records WHERE anchored_block IS NULL AND sequence > ? ORDER BY sequence LIMIT ?", (after, limit)
        )
        return [record_from_row(r) for r in rows]

    def pending_count(self) -> int:
        """Records not yet on chain."""
        return self._backlog_count

    def backlog(self, after: int = 0) -> tuple[int, float | None, bool]:
        """(records not yet on chain, ``created_at`` of the oldest of them, whether an answer is
        waiting for its record to be anchored), from memory; with ``after``, only the records past
        that sequence count (the batcher's batches in flight end there), and the oldest of them is
        read from the file."""
        with self._lock:
            count, oldest = self._backlog_count, self._backlog_oldest
            if self._next is None or after <= self._next - 1 - count:  # nothing in flight past what is on chain
                return count, oldest, bool(self._anchor_waiters)
            unsent = max(0, self._next - 1 - after)
            awaited = any(sequence > after for sequence in self._anchor_waiters)
        if not unsent:
            return 0, None, False
        row = self._anchoring.read("SELECT created_at FROM records WHERE sequence = ?", (after + 1,))
        return unsent, (row[0][0] if row else None), awaited

    def pending_served(self, grant_id: int, checked_at_block: int | None = None) -> int:
        """Served records of ``grant_id`` not yet on chain (they count toward its quota); kept in
        memory, loaded from the file when it is opened. With ``checked_at_block``, also those
        anchored after that block (the chain's count at that block does not hold them yet)."""
        with self._lock:
            if checked_at_block is None:
                return self._pending_served.get(grant_id, 0)
            return self._uncounted(grant_id, checked_at_block)

    def _uncounted(self, grant_id: int, block: int) -> int:
        uncounted = self._pending_served.get(grant_id, 0)
        for anchored_in, count in reversed(self._anchored_served.get(grant_id, ())):  # newest first
            if anchored_in <= block:
                break
            uncounted += count
        return uncounted

    def get(self, sequence: int) -> OutboxRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM records WHERE sequence = ?", (sequence,)).fetchone()
        return record_from_row(row) if row else None

    def all_records(self) -> Iterator[OutboxRecord]:
        """Every record, in sequence order (for export and verification)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM records ORDER BY sequence").fetchall()
        return (record_from_row(r) for r in rows)

    def when_anchored(self, sequence: int, callback: Callable[[], None]) -> bool:
        """Have ``callback`` called (from the anchoring thread, so it must be quick) once record
        ``sequence`` is on chain; True instead, registering nothing, if it already is. A waiting
        answer also tells the batcher not to wait for a fuller batch."""
        with self._lock:
            row = self._db.execute("SELECT anchored_block FROM records WHERE sequence = ?", (sequence,)).fetchone()
            if row is not None and row[0] is not None:
                return True
            self._anchor_waiters.setdefault(sequence, []).append(callback)
            self._changed.notify_all()
        if self.on_waiter is not None:
            self.on_waiter(sequence)
        return False

    def forget_waiter(self, sequence: int, callback: Callable[[], None]) -> None:
        """Unregister a :meth:`when_anchored` callback (its answer stopped waiting)."""
        with self._lock:
            waiting = self._anchor_waiters.get(sequence, [])
            if callback in waiting:
                waiting.remove(callback)
            if not waiting:
                self._anchor_waiters.pop(sequence, None)

    def wait_anchored(self, sequence: int, timeout: float) -> bool:
        """Block until record ``sequence`` is on chain (strict mode); False on timeout."""
        anchored = threading.Event()
        if self.when_anchored(sequence, anchored.set) or anchored.wait(timeout):
            return True
        self.forget_waiter(sequence, anchored.set)
        return anchored.is_set()

    def wait_for_work(self, timeout: float) -> None:
        """Sleep until a record is written (or ``timeout``); for the batcher."""
        with self._changed:
            self._changed.wait(timeout)
