"""Anchor the outbox on chain: batches by size and by age (or at once for a waiting strict answer),
confirmed by receipt, retried; and copy the outbox's WAL back into its file (checkpoints). The
batcher runs in the oracle's anchoring process (``oracle.anchoring``) or on a thread of the
answering process (``anchoring = "thread"``).

The contract accepts a batch only if it starts exactly one past the oracle's last anchored
sequence, so a retry after a lost receipt cannot anchor twice: the batcher reads the oracle's
state from the chain, marks what the chain already holds as anchored (after checking that the
chain's head is the head of the local records), and carries on from there.

Batches are pipelined: the next batch is sent as soon as it is due, while earlier ones still wait
to be mined (up to ``max_in_flight``, each with the next nonce, so the node mines them in order).
Sending only after the previous receipt made a record that came just after a batch went out wait
for that batch's block and then for its own: up to two block periods after it was due, against
one. If a batch in flight fails (refused, out of gas, dropped by the node), the ones after it fail
too (they do not start one past the chain's last sequence) or are harmless: the batcher forgets
them, re-reads its nonce, and anchors the next batch on its own (``AuditLogClient.anchor``, which
has the retries) before pipelining again; the contract's sequence check keeps this exactly-once.

The decision-age bound: ``AuditLog`` refuses a served record decided more than the consortium's
``maxDecisionAgeBlocks`` before the block that anchors it. The oracle checks at start-up that its
batching can meet the bound (``oracle.main``); should a record still grow too old (the chain
unreachable for longer than the bound, or the bound lowered by a vote), it cannot be anchored as it
stands, and since it may not be changed (its receipt binds it) nor skipped (sequences are contiguous),
anchoring is **held** at it: the records before it are anchored, it and every record after it stay
in the outbox (nothing is lost or altered), ``last_error`` (the oracle's ``/v1/health``) and the log
say which record and why, and anchoring resumes by itself once the consortium allows the record (a
committee vote raising ``maxDecisionAgeBlocks``, visible on chain to every auditor).

Records the chain lost after they were mined (a reorg, a node restarted from an older database) are
anchored again as they were, and a chain holding other records is refused: :mod:`oracle.chain_rollback`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from ledger.chain import RECEIPT_POLL_SECONDS, SentTx
from ledger.contracts.audit_log import AppendResult, AuditLogClient, Outcome
from ledger.errors import ChainUnavailable, ContractRevert, LedgerError, NonceGap, TransactionFailed
from ledger.keys import Signer
from ledger.rpc import RpcErrorAnswer
from oracle.chain_rollback import ChainDiverged, held_for_lost_blocks, reconcile_outbox
from oracle.outbox_file import OutboxRecord

log = logging.getLogger("govshare.oracle.batcher")

#: Seconds between two WAL checkpoints of the outbox when no batch is anchored meanwhile.
CHECKPOINT_SECONDS = 10.0

#: Batches sent and not yet mined, at most, by default (``batch_max_in_flight``; 1 sends each batch
#: after the previous one's receipt). Besu's sequenced transaction pool (the one its documentation
#: recommends for private networks) keeps 0.1 % of its 4,096 transactions per sender by default,
#: about 4; 3 leaves room for the oracle's on-chain fulfilments, sent with the same key. (Its
#: default layered pool keeps 200.)
MAX_IN_FLIGHT = 3

#: Seconds between two looks (one ``eth_call``) at the oracle's state for records the chain lost (``batch_chain_check_seconds``).
CHAIN_CHECK_SECONDS = 10.0

#: Seconds a head block or decision-age bound read from the chain is trusted for the batcher's own
#: check (the contract makes the final one); also how often a held record is looked at again.
DECISION_AGE_RECHECK_SECONDS = 5.0


@dataclass(frozen=True)
class HeldRecord:
    """The served record anchoring is held at: decided at ``decision_block``, it would be anchored
    at ``anchoring_block`` at the earliest, more than the consortium's ``max_age`` blocks later."""

    sequence: int
    decision_block: int
    anchoring_block: int
    max_age: int

    def __str__(self) -> str:
        if self.decision_block > self.anchoring_block:  # not too old: decided on blocks the chain lost
            return held_for_lost_blocks(self.sequence, self.decision_block, self.anchoring_block)
        return (f"anchoring held at record {self.sequence}: served after a decision at block {self.decision_block}, it "
                f"would be anchored at block {self.anchoring_block} at the earliest, more than the consortium's "
                f"maxDecisionAgeBlocks ({self.max_age}) later, so AuditLog refuses it; it and the records after it wait "
                f"in the outbox until a committee vote raises the bound")
#: Seconds a batch may wait unmined before its transaction is taken as stuck and replaced (same
#: nonce, higher fee where the chain has fees), by default (``batch_stuck_after_seconds``): several
#: block periods of a QBFT chain, a small part of the receipt timeout.
STUCK_AFTER_SECONDS = 15.0


@dataclass(frozen=True)
class SentBatch:
    """A batch sent and not yet confirmed: records ``first``..``last`` in transaction ``tx_hash``
    (the newest of ``versions``: the first sent and its replacements, any of which may be mined)."""

    first: int
    last: int
    tx_hash: str
    sent_at: float  # time.monotonic() of the first version
    versions: tuple[SentTx, ...] = ()
    replaced_at: float = 0.0  # time.monotonic() of the newest version (0: never replaced)

    @property
    def hashes(self) -> list[str]:
        return [v.tx_hash for v in self.versions] or [self.tx_hash]


class AnchoringSide(Protocol):
    """What the batcher needs of the outbox: :class:`oracle.outbox.Outbox` itself when the batcher
    runs in the answering process, ``oracle.anchoring.OutboxFile`` when it runs in a process of its own."""

    def backlog(self, after: int = 0) -> tuple[int, float | None, bool]: ...
    def unanchored(self, limit: int, after: int = 0) -> list[OutboxRecord]: ...
    def mark_anchored(self, first: int, last: int, tx_hash: str, block: int) -> None: ...
    def on_chain_through(self, sequence: int) -> None: ...
    def forget_anchored(self, after: int) -> None: ...
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
        max_in_flight: int = MAX_IN_FLIGHT,
        on_status: Callable[[Batcher], None] | None = None,
        decision_age_limit: Callable[[], int] | None = None,
        stuck_after: float = STUCK_AFTER_SECONDS,
        chain_check_seconds: float = CHAIN_CHECK_SECONDS,
    ) -> None:
        self.outbox = outbox
        self.audit_log = audit_log
        self.oracle = oracle
        self.max_records = max_records
        self.max_age = max_age
        self.retry_delay = retry_delay
        self.max_in_flight = max(1, max_in_flight)
        self.stuck_after = stuck_after
        self.on_status = on_status
        self.anchored_batches = 0
        self.failures = 0  # anchoring steps that failed (each retried): for the oracle's metrics
        self.replaced = 0  # transactions replaced because they stayed unmined past stuck_after
        self.lost_from_chain = 0  # records the chain lost after they were anchored, anchored again
        self.diverged: ChainDiverged | None = None  # the chain holds other records: anchoring stopped for good
        self.chain_check_seconds, self._chain_checked = chain_check_seconds, time.monotonic()
        self._on_chain: tuple[int, bytes | None] = (0, None)  # (sequence, head) of the newest record seen on chain
        self.last_error: str | None = None
        self._in_flight: deque[SentBatch] = deque()
        self._send_alone = False  # after a failure in flight: the next batch goes out on its own
        self._receipts_read = 0.0
        # the decision-age bound (``decision_age_limit`` reads the consortium's maxDecisionAgeBlocks)
        self.decision_age_limit = decision_age_limit
        self.held: HeldRecord | None = None
        self._max_age: int | None = None
        self._head_seen: int | None = None
        self._age_checked = float("-inf")  # when head and bound were last read from the chain
        self._step_lock = threading.RLock()
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
        while self.outbox.pending_count() and time.monotonic() < deadline and self.diverged is None:
            try:
                self.anchor_once(force=True)
            except LedgerError as exc:
                log.warning("could not anchor the outbox before stopping: %s", exc)
                break
            if self.held is not None:
                log.warning("could not anchor the outbox before stopping: %s", self.held)
                break

    @property
    def in_flight(self) -> tuple[SentBatch, ...]:
        """The batches sent and not yet confirmed, oldest first."""
        return tuple(self._in_flight)

    def run(self) -> None:
        """Anchor batches as they fall due until :meth:`request_stop`; failures are retried."""
        checkpointed = time.monotonic()
        while not self._stop.is_set():
            if self.diverged is not None:  # nothing is sent again; what the answering process says is still heard
                self.outbox.wait_for_work(1.0)
                self._stop.wait(0.5)
                continue
            try:
                if time.monotonic() - checkpointed > CHECKPOINT_SECONDS:
                    self.outbox.checkpoint()  # also while nothing anchors (a chain that is down)
                    checkpointed = time.monotonic()
                if time.monotonic() - self._chain_checked >= self.chain_check_seconds:
                    self.check_chain()
                if not self.step():
                    idle = min(self.max_age, 0.5) or 0.05
                    self.outbox.wait_for_work(RECEIPT_POLL_SECONDS if self._in_flight else idle)
                continue
            except ChainDiverged as exc:
                self._diverged(exc)
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
            self.failures += 1
            self._age_checked = float("-inf")  # a refusal as too old, say: judge the next batch on fresh reads
            self._report()
            self._stop.wait(self.retry_delay)

    def _report(self) -> None:
        if self.on_status is not None:
            self.on_status(self)

    def _diverged(self, exc: ChainDiverged) -> None:  # the chain holds records that are not the outbox's
        if self.diverged is None:
            log.critical("anchoring stopped for good: %s", exc)
        self.diverged, self.last_error = exc, f"anchoring stopped: {exc}"
        self._report()

    def step(self) -> bool:
        """One pass of the pipeline: confirm the batches in flight that are mined (their receipts
        read at most every ``RECEIPT_POLL_SECONDS``), then send the next batch if one is due and
        fewer than ``max_in_flight`` are in flight; True if anything was confirmed or sent."""

        def one_pass() -> bool:
            progressed = False
            if self._in_flight and time.monotonic() - self._receipts_read >= RECEIPT_POLL_SECONDS:
                progressed = self._confirm_mined()
            if len(self._in_flight) < self.max_in_flight:
                progressed = self._send_due() or progressed
            return progressed

        return self._reconciling(one_pass)

    def anchor_once(self, *, force: bool = False) -> bool:
        """Anchor one batch if one is due (full, or its oldest record is ``max_age`` old, or
        ``force``) and wait until it is mined, after the batches in flight before it; True if a
        batch went on chain."""

        def anchor() -> bool:
            self._drain()
            batch = self._due_batch(force=force)
            if batch:
                self._anchor_alone(batch)
            return bool(batch)

        return self._reconciling(anchor)

    def _reconciling(self, work: Callable[[], bool]) -> bool:
        """``work`` under the step lock (the thread's :meth:`run` and a caller's :meth:`anchor_once`,
        in tests or at shutdown, share the pipeline); a batch refused because it does not start one
        past the chain's last sequence reconciles with the chain instead (False)."""
        with self._step_lock:
            if self.diverged is not None:
                raise self.diverged
            try:
                return work()
            except ContractRevert as exc:
                if exc.name != "AuditLogSequenceMismatch":
                    raise
                self.reconcile()
                return False
            except NonceGap as exc:  # sent on its own, behind a nonce the chain no longer reaches: a rollback?
                self._reconcile_after(exc)
                return False

    def _due_batch(self, *, force: bool = False) -> list[OutboxRecord]:
        """The next batch after those in flight if it is due (full, old enough, awaited by a strict
        answer, or ``force``); empty if none is."""
        after = self._in_flight[-1].last if self._in_flight else 0
        count, oldest, awaited = self.outbox.backlog(after)
        if count == 0 or oldest is None:
            return []
        if not (force or awaited or count >= self.max_records or time.time() - oldest >= self.max_age):
            return []
        return self._within_decision_age(self.outbox.unanchored(self.max_records, after))

    def _within_decision_age(self, batch: list[OutboxRecord]) -> list[OutboxRecord]:
        """``batch`` up to its first served record the contract would refuse as too old when anchored
        at the next block (judged on the last head and bound seen, read again before holding); empty
        if that is the first record: anchoring is then held (see the module's docstring)."""
        if self.decision_age_limit is None or not batch:
            return batch
        if self.held is not None and self.held.sequence == batch[0].sequence:
            if time.monotonic() - self._age_checked < DECISION_AGE_RECHECK_SECONDS:
                return []
            self._age_checked = float("-inf")  # look again, on fresh reads
        fresh = time.monotonic() - self._age_checked >= DECISION_AGE_RECHECK_SECONDS
        if fresh:
            self._read_decision_age()
        cut = self._first_too_old(batch)
        if cut is not None and not fresh:  # judged on older reads (a bound raised since?): read again
            self._read_decision_age()
            cut = self._first_too_old(batch)
        if cut is None:
            if self.held is not None:
                log.warning("anchoring resumes at record %d: the consortium's bound now allows it", self.held.sequence)
                self.held = None
            return batch
        if cut > 0:
            return batch[:cut]
        record = batch[0]
        assert self._head_seen is not None and self._max_age is not None
        held = HeldRecord(record.sequence, record.entry.checked_at_block, self._head_seen + 1, self._max_age)
        first_time = self.held is None or self.held.sequence != held.sequence
        self.held, self.last_error = held, str(held)
        if first_time:  # said once per record held, not at every look
            log.error("%s", held)
            self._report()
        return []

    def _first_too_old(self, batch: list[OutboxRecord]) -> int | None:
        assert self._head_seen is not None and self._max_age is not None
        oldest = self._head_seen + 1 - self._max_age
        for i, record in enumerate(batch):
            if record.entry.outcome is Outcome.SERVED and not oldest <= record.entry.checked_at_block <= self._head_seen + 1:
                return i
        return None

    def _read_decision_age(self) -> None:
        assert self.decision_age_limit is not None
        self._max_age = self.decision_age_limit()
        self._head_seen = max(self._head_seen or 0, self.audit_log.chain.block_number())
        self._age_checked = time.monotonic()

    def _send_due(self) -> bool:
        batch = self._due_batch()
        if not batch:
            return False
        if not (self._send_alone or self.max_in_flight == 1):
            try:
                sent = self.audit_log.send_anchor(self.oracle, batch[0].sequence, [r.entry for r in batch])
            except RpcErrorAnswer:  # e.g. a gas bound the node will not take: anchor() knows what to do
                pass
            else:
                self._in_flight.append(SentBatch(batch[0].sequence, batch[-1].sequence, sent.tx_hash, time.monotonic(),
                                                 (sent,)))
                return True
        self._drain()
        self._anchor_alone(batch)
        self._send_alone = False
        return True

    def _anchor_alone(self, batch: list[OutboxRecord]) -> None:
        """Send ``batch`` and wait for it (nothing may be in flight)."""
        result = self.audit_log.anchor(self.oracle, batch[0].sequence, [r.entry for r in batch], replace_after=self.stuck_after)
        self._confirmed(batch[0].sequence, batch[-1].sequence, result)

    def _confirm_mined(self) -> bool:
        """Confirm, oldest first, the batches in flight whose transactions are mined; True if any
        was. A chain that cannot be reached leaves them in flight (asked again on the next pass).
        Any other failure forgets them all (see the module's docstring) and reconciles with the
        chain: if the chain holds the failed batch's records (another sender with the oracle's key
        anchored them first), that is the end of it; otherwise the failure is raised."""
        self._receipts_read = time.monotonic()
        confirmed = False
        while self._in_flight:
            sent = self._in_flight[0]
            try:
                result = self.audit_log.anchored_any(sent.hashes)
                if result is None and time.monotonic() - sent.sent_at > self.audit_log.chain.receipt_timeout:
                    raise self.audit_log.chain.not_mined(sent.tx_hash, self.audit_log.chain.receipt_timeout)
                if result is None and time.monotonic() - (sent.replaced_at or sent.sent_at) > self.stuck_after:
                    if sent.versions and (gap := self.audit_log.chain.nonce_gap(sent.versions[0])) is not None:
                        raise gap
                    self._replace_in_flight()
                    break
            except (ChainUnavailable, ChainDiverged):
                raise
            except NonceGap as exc:  # never to be mined: the chain rolled back past the nonces before it
                self._reconcile_after(exc)
                return True
            except LedgerError as exc:
                self._forget_in_flight()
                if self.reconcile() >= sent.last:
                    log.warning("batch %d..%d failed but its records are on chain already: %s", sent.first, sent.last, exc)
                    return True
                raise
            if result is None:
                break
            self._in_flight.popleft()
            self._confirmed(sent.first, sent.last, result)
            confirmed = True
        return confirmed

    def _replace_in_flight(self) -> None:
        """The oldest batch in flight stayed unmined past ``stuck_after``: send every batch in flight
        again in its own place, oldest first (same nonce, higher fee where the chain has fees). The
        later ones wait behind the first anyway, and ganache strands them with it (see
        :meth:`ledger.chain.Chain.replace`). Whichever version is mined confirms its batch; the
        contract's sequence check keeps each record anchored once."""
        now = time.monotonic()
        for i, sent in enumerate(list(self._in_flight)):
            if not sent.versions:
                continue
            replacement = self.audit_log.chain.replace(self.oracle, sent.versions[-1])
            versions = sent.versions if replacement.tx_hash in sent.hashes else (*sent.versions, replacement)
            self._in_flight[i] = SentBatch(sent.first, sent.last, replacement.tx_hash, sent.sent_at, versions, now)
            self.replaced += 1
            log.warning("batch %d..%d (transaction %s, nonce %d) not mined after %.1f s: sent again as %s",
                        sent.first, sent.last, sent.versions[-1].tx_hash, replacement.nonce,
                        now - (sent.replaced_at or sent.sent_at), replacement.tx_hash)

    def _drain(self) -> None:
        """Wait until every batch in flight is confirmed (or has failed: raised)."""
        while self._in_flight:
            if not self._confirm_mined() and self._in_flight:
                time.sleep(RECEIPT_POLL_SECONDS)

    def _reconcile_after(self, gap: NonceGap) -> None:
        log.warning("%s; reconciling with the chain", gap)
        self._forget_in_flight()
        self.reconcile()

    def _forget_in_flight(self) -> None:
        """After a failure in flight: the batches after it are not confirmed (they fail or, if they
        were valid after all, the next reconciliation marks them), the nonce is re-read from the
        node, and the next batch goes out on its own."""
        self._in_flight.clear()
        self.audit_log.chain.reset_nonce(self.oracle.address)
        self._send_alone = True

    def _confirmed(self, first: int, last: int, result: AppendResult) -> None:
        self.outbox.mark_anchored(first, last, result.tx_hash, result.block_number)
        self._on_chain = (last, result.head)  # batches are confirmed in sequence order
        if self._head_seen is not None:
            self._head_seen = max(self._head_seen, result.block_number)
        self.outbox.checkpoint()  # the bulk of the copying, off the answering path
        self.anchored_batches += 1
        self.last_error = None
        self._report()

    def check_chain(self) -> bool:
        """Reconcile if the chain holds fewer records than seen mined, or another head at the newest; True if it did."""
        with self._step_lock:
            self._chain_checked = time.monotonic()
            state = self.audit_log.oracle_state(self.oracle.address)
            sequence, head = self._on_chain
            if state.last_sequence > sequence or (state.last_sequence == sequence and head in (None, state.head)):
                return False
            self.reconcile()
            return True

    def reconcile(self) -> int:
        """Bring the outbox in line with the chain's state for this oracle (what the chain holds marked
        anchored, what it lost anchored again, another history refused: :func:`oracle.chain_rollback.reconcile_outbox`);
        returns the chain's last sequence."""
        state = self.audit_log.oracle_state(self.oracle.address)
        try:
            lost = reconcile_outbox(self.outbox, self.oracle.address, state, self._on_chain[0])
        except ChainDiverged as exc:
            self._diverged(exc)
            raise
        self._on_chain, self._chain_checked = (state.last_sequence, state.head), time.monotonic()
        if lost is not None:
            log.warning("%s", lost)
            self.lost_from_chain += lost.count
            self._head_seen, self._age_checked = None, float("-inf")  # the head went back: judge ages on a fresh read
            self._forget_in_flight()  # sent after the lost records, with nonces the chain no longer reaches
            self._report()
        return state.last_sequence
