"""Anchor the outbox on chain: batches by size and by age (or at once for a waiting strict answer),
confirmed by receipt, retried; and copy the outbox's WAL back into its file (checkpoints). The
batcher runs in the oracle's anchoring process (``oracle.anchoring``) or on a thread of the
answering process (``anchoring = "thread"``).

The contract accepts a batch only if it starts exactly one past the oracle's last anchored
sequence, so a retry after a lost receipt cannot anchor twice: the batcher reads the oracle's
state from the chain, marks what the chain already holds as anchored (after checking that the
chain's head is the head of the local records), and carries on from there.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterator, Protocol

from ledger.audit_log import AuditLogClient, recompute_head
from ledger.errors import ChainUnavailable, ContractRevert, LedgerError, TransactionFailed
from ledger.keys import Signer
from oracle.outbox import OutboxMismatch, OutboxRecord

log = logging.getLogger("govshare.oracle.batcher")

#: Seconds between two WAL checkpoints of the outbox when no batch is anchored meanwhile.
CHECKPOINT_SECONDS = 10.0


class AnchoringSide(Protocol):
    """What the batcher needs of the outbox: :class:`oracle.outbox.Outbox` itself when the batcher
    runs in the answering process, ``oracle.anchoring.OutboxFile`` when it runs in a process of its own."""

    def backlog(self) -> tuple[int, float | None, bool]: ...
    def unanchored(self, limit: int) -> list[OutboxRecord]: ...
    def mark_anchored(self, first: int, last: int, tx_hash: str, block: int) -> None: ...
    def on_chain_through(self, sequence: int) -> None: ...
    def all_records(self) -> Iterator[OutboxRecord]: ...
    def pending_count(self) -> int: ...
    def checkpoint(self) -> None: ...
    def wait_for_work(self, timeout: float) -> None: ...


class Batcher:
    """Anchors one oracle's outbox: on a thread of its own (:meth:`start`), or on the caller's
    (:meth:`run`, in the anchoring process); ``anchor_once`` is also callable directly (tests,
    shutdown). ``on_status`` is called after every batch and every failure (with ``last_error``)."""

    def __init__(
        self,
        outbox: AnchoringSide,
        audit_log: AuditLogClient,
        oracle: Signer,
        *,
        max_records: int = 100,
        max_age: float = 2.0,
        retry_delay: float = 1.0,
        on_status: Callable[[Batcher], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.audit_log = audit_log
        self.oracle = oracle
        self.max_records = max_records
        self.max_age = max_age
        self.retry_delay = retry_delay
        self.on_status = on_status
        self.anchored_batches = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="govshare-batcher", daemon=True)

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def stop(self, *, flush: bool = True, timeout: float = 30.0) -> None:
        """Stop the thread; with ``flush``, anchor what is pending first (best effort)."""
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        if flush:
            self.flush(timeout)

    def request_stop(self) -> None:
        """Make :meth:`run` return after the step it is in."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def flush(self, timeout: float = 30.0) -> None:
        """Anchor what is pending now, batch after batch (best effort: a failure ends it, logged)."""
        deadline = time.monotonic() + timeout
        while self.outbox.pending_count() and time.monotonic() < deadline:
            try:
                self.anchor_once(force=True)
            except LedgerError as exc:
                log.warning("could not anchor the outbox before stopping: %s", exc)
                break

    def run(self) -> None:
        """Anchor batches as they fall due until :meth:`request_stop`; failures are retried."""
        checkpointed = time.monotonic()
        while not self._stop.is_set():
            try:
                if time.monotonic() - checkpointed > CHECKPOINT_SECONDS:
                    self.outbox.checkpoint()  # also while nothing anchors (a chain that is down)
                    checkpointed = time.monotonic()
                if not self.anchor_once():
                    self.outbox.wait_for_work(min(self.max_age, 0.5) or 0.05)
                continue
            except (ChainUnavailable, TransactionFailed) as exc:
                self.last_error = str(exc)
                log.warning("anchoring failed, retrying in %.1fs: %s", self.retry_delay, exc)
            except LedgerError as exc:  # a refusal the batcher cannot resolve: keep the records, say so
                self.last_error = str(exc)
                log.error("anchoring refused: %s", exc)
            except Exception as exc:  # never let the loop die: the records would wait until a restart
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("anchoring failed unexpectedly, retrying in %.1fs", self.retry_delay)
            self._report()
            self._stop.wait(self.retry_delay)

    def _report(self) -> None:
        if self.on_status is not None:
            self.on_status(self)

    def anchor_once(self, *, force: bool = False) -> bool:
        """Anchor one batch if one is due (full, or its oldest record is ``max_age`` old, or
        ``force``); True if a batch went on chain."""
        count, oldest, awaited = self.outbox.backlog()
        if count == 0 or oldest is None:
            return False
        if not (force or awaited or count >= self.max_records or time.time() - oldest >= self.max_age):
            return False
        batch = self.outbox.unanchored(self.max_records)
        if not batch:
            return False
        try:
            result = self.audit_log.anchor(self.oracle, batch[0].sequence, [r.entry for r in batch])
        except ContractRevert as exc:
            if exc.name != "AuditLogSequenceMismatch":
                raise
            self.reconcile()
            return False
        self.outbox.mark_anchored(batch[0].sequence, batch[-1].sequence, result.tx_hash, result.block_number)
        self.outbox.checkpoint()  # the bulk of the copying, off the answering path
        self.anchored_batches += 1
        self.last_error = None
        self._report()
        return True

    def reconcile(self) -> int:
        """Mark as anchored what the chain already holds (a batch whose receipt was lost, or one
        anchored before a crash); returns the chain's last sequence. The chain's head must be the
        head of the local records up to that sequence, or the outbox is not this chain's."""
        state = self.audit_log.oracle_state(self.oracle.address)
        local = [r for r in self.outbox.all_records() if r.sequence <= state.last_sequence]
        if local and local[0].sequence == 1 and len(local) == state.last_sequence:
            head = recompute_head(self.oracle.address, [r.entry for r in local])
            if head != state.head:
                raise OutboxMismatch(
                    f"chain head 0x{state.head.hex()} is not the head of the local records 1..{state.last_sequence}"
                )
        unmarked = [r for r in local if r.anchored_block is None]
        if unmarked:
            self.outbox.mark_anchored(unmarked[0].sequence, unmarked[-1].sequence, "(reconciled)", 0)
        self.outbox.on_chain_through(state.last_sequence)
        return state.last_sequence
