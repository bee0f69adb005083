"""The oracle's anchoring process: the batcher in a process of its own (``anchoring = "process"``).

Why: a batch costs milliseconds of Python (reading it from the outbox, packing, signing, reading the
receipt, marking it). On a thread of the answering process that time is taken from the event loop
that answers queries, under one GIL, and shows as spikes in the answers' latency every time a batch
goes out (bench/README.md). In a process of its own it runs beside the loop.

How the two processes share the work:

* the answering process stays the outbox's only writer. It starts ``python -m oracle.anchoring FD``
  with one end of a socket pair and sends it, as the first message, what it needs: the oracle's key
  (never on a command line, in the environment or in a log), the deployment, the compiled ABIs,
  the chain's URL, the outbox's path and the batch settings;
* the anchoring process reads the outbox file (a WAL reader; it also runs the checkpoints), anchors
  batches with the same :class:`oracle.batcher.Batcher`, and says what it anchored; the answering
  process marks those records (:meth:`oracle.outbox.Outbox.mark_anchored`: the quota count, the
  backlog, the strict answers waiting for them) and keeps the batcher's last error for ``/v1/health``;
* the answering process says when a strict answer starts waiting for a record (anchor at once),
  and when to stop (anchoring what is pending first, or not).

If the anchoring process dies, the answering process starts another (it reconciles with the chain
before anchoring). If the answering process dies, the anchoring process sees the socket close and
exits after the step it is in; the next oracle reconciles with whatever reached the chain (the
contract's sequence check makes anchoring exactly-once either way).
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterator

from eth_account import Account

from ledger.chain import (
    DEFAULT_RECEIPT_TIMEOUT_SECONDS,
    DEFAULT_RPC_TIMEOUT_SECONDS,
    Chain,
)
from ledger.compiler import CompilationResult
from ledger.deployment import Consortium, Deployment
from ledger.errors import ChainUnavailable, LedgerError
from ledger.keys import Signer
from ledger.tls import ClientTls
from oracle.batcher import CHAIN_CHECK_SECONDS, MAX_IN_FLIGHT, STUCK_AFTER_SECONDS, Batcher
from oracle.chain_rollback import ChainDiverged
from oracle.outbox import Outbox
from oracle.outbox_file import OutboxRecord, copy_wal_back, record_from_row

__all__ = ["AnchoringProcess", "AnchoringSettings", "OutboxFile", "run_anchoring"]

log = logging.getLogger("govshare.oracle.anchoring")

#: Seconds between two looks at the outbox file while no batch is due (a full batch or a record
#: past its age is noticed within this; a strict answer's wait is told at once).
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class AnchoringSettings:
    """What the anchoring process needs besides the key."""

    rpc_url: str
    deployment_json: str
    compilation: CompilationResult
    outbox: Path
    max_records: int
    max_age: float
    max_in_flight: int = MAX_IN_FLIGHT
    retry_delay: float = 1.0
    rpc_tls: ClientTls | None = None  # the CAs trusted for an https rpc_url, the client certificate presented
    rpc_timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS
    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT_SECONDS
    stuck_after: float = STUCK_AFTER_SECONDS
    chain_check_seconds: float = CHAIN_CHECK_SECONDS


# ------------------------------------------------------------------------------ the answering side


class AnchoringProcess:
    """The answering process's handle on its anchoring process: the same surface as a batcher
    thread to the rest of the oracle (``last_error``, ``anchored_batches``, ``failures``, ``lost_from_chain``, :meth:`stop`).
    The counts go on across anchoring processes (a new one starts counting from zero)."""

    def __init__(self, outbox: Outbox, signer: Signer, settings: AnchoringSettings, *,
                 restart_delay: float = 1.0, start_timeout: float = 120.0) -> None:
        self.outbox = outbox
        self.settings = settings
        self.restart_delay = restart_delay
        self.start_timeout = start_timeout
        self.last_error: str | None = None
        self.anchored_batches = 0
        self.failures = 0
        self.lost_from_chain = 0
        self._counted_before = (0, 0, 0)  # (batches, failures, records lost) of the anchoring processes before this one
        self.process: subprocess.Popen[bytes] | None = None
        self.__key = bytes(signer.account.key)
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._awaited = 0  # the highest sequence a strict answer has waited for
        self._ready = threading.Event()
        self._stopping = False
        self._flush_on_stop = True
        self._thread = threading.Thread(target=self._supervise, name="govshare-anchoring", daemon=True)

    def start(self) -> AnchoringProcess:
        """Start the anchoring process and wait until it has reconciled with the chain."""
        self.outbox.on_waiter = self.notify_waiter
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise LedgerError(f"the anchoring process did not start within {self.start_timeout} s: {self.last_error}")
        return self

    def notify_waiter(self, sequence: int) -> None:
        """A strict answer waits for record ``sequence``: the anchoring process anchors at once."""
        self._awaited = max(self._awaited, sequence)
        self._send(("awaited", sequence))

    def stop(self, *, flush: bool = True, timeout: float = 30.0) -> None:
        """Stop the anchoring process; with ``flush`` it anchors what is pending first."""
        self._stopping, self._flush_on_stop = True, flush
        self.outbox.on_waiter = None
        self._send(("stop", flush))
        self._thread.join(timeout)
        if self.process is not None and self.process.poll() is None:
            log.warning("the anchoring process did not stop within %.0f s; killing it", timeout)
            self.process.kill()
            self.process.wait()
            self._thread.join(5)

    # ---------------------------------------------------------------- the supervising thread

    def _supervise(self) -> None:
        """Start the anchoring process, apply what it reports, and start another if it dies."""
        while not self._stopping:
            try:
                self._spawn()
            except OSError as exc:
                self.last_error = f"cannot start the anchoring process: {exc}"
                self.failures += 1
                log.error("%s", self.last_error)
            else:
                self._listen()
                code = self.process.wait() if self.process is not None else None
                if self._stopping:
                    break
                self.last_error = f"the anchoring process exited (code {code}); starting another"
                self.failures += 1
                log.error("%s", self.last_error)
            time.sleep(self.restart_delay)

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen([sys.executable, "-m", "oracle.anchoring", str(theirs.fileno())],
                                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        conn = Connection(ours.detach())
        self._counted_before = (self.anchored_batches, self.failures, self.lost_from_chain)
        conn.send(("start", self.__key, self.settings))
        with self._send_lock:
            self._conn = conn
        if self._awaited:
            self._send(("awaited", self._awaited))
        if self._stopping:  # asked to stop while this one was starting
            self._send(("stop", self._flush_on_stop))

    def _listen(self) -> None:
        conn = self._conn
        if conn is None:
            return
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "anchored":
                _, first, last, tx_hash, block = message
                try:
                    self.outbox.mark_anchored(first, last, tx_hash, block)
                except (sqlite3.Error, LedgerError) as exc:  # on chain all the same: the next reconciliation marks them
                    log.error("could not mark records %d..%d as anchored: %s", first, last, exc)
            elif kind == "lost":  # the chain lost the records past this sequence: they are anchored again
                try:
                    self.outbox.forget_anchored(message[1])
                except sqlite3.Error as exc:  # still marked: the answering side's backlog and quota count them as on chain
                    log.error("could not un-mark the records past %d, lost from the chain: %s", message[1], exc)
            elif kind == "status":
                batches, failures, lost = self._counted_before
                self.last_error, self.anchored_batches, self.failures, self.lost_from_chain = (
                    message[1], batches + message[2], failures + message[3], lost + message[4])
            elif kind == "ready":
                self._ready.set()
        with self._send_lock:
            self._conn = None
        conn.close()

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            if self._conn is None:
                return  # between two anchoring processes: the next one is told what matters at its start
            try:
                self._conn.send(message)
            except OSError:
                pass  # it is gone; the supervising thread starts another


# ------------------------------------------------------------------------------ the anchoring side


class OutboxFile:
    """The anchoring process's side of the outbox (:class:`oracle.batcher.AnchoringSide`): reads the
    file, and tells the answering process what reached the chain instead of writing it."""

    def __init__(self, path: Path, conn: Connection) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._conn = conn
        self._on_chain = 0  # every record up to this sequence is on chain
        self._awaited = 0
        self.batcher: Batcher | None = None
        self.flush_requested = False
        self.stop_requested = False
        self.parent_gone = False

    def backlog(self, after: int = 0) -> tuple[int, float | None, bool]:
        start = max(self._on_chain, after)
        (top,) = self._db.execute("SELECT COALESCE(MAX(sequence), 0) FROM records").fetchone()
        count = max(0, top - start)
        oldest = None
        if count:
            row = self._db.execute("SELECT created_at FROM records WHERE sequence = ?", (start + 1,)).fetchone()
            oldest = row[0] if row else None
        return count, oldest, self._awaited > start

    def unanchored(self, limit: int, after: int = 0) -> list[OutboxRecord]:
        rows = self._db.execute("SELECT * FROM records WHERE sequence > ? ORDER BY sequence LIMIT ?",
                                (max(self._on_chain, after), limit)).fetchall()
        return [record_from_row(r) for r in rows]

    def mark_anchored(self, first: int, last: int, tx_hash: str, block: int) -> None:
        self._on_chain = max(self._on_chain, last)
        try:
            self._conn.send(("anchored", first, last, tx_hash, block))
        except OSError:  # the answering process is gone: stop; the next oracle reconciles with the chain
            self._parent_gone()

    def on_chain_through(self, sequence: int) -> None:
        self._on_chain = max(self._on_chain, sequence)

    def forget_anchored(self, after: int) -> None:
        """The chain lost the records past ``after``: anchor them again, and have the answering process un-mark them."""
        self._on_chain = min(self._on_chain, after)
        self._conn.send(("lost", after))

    def all_records(self) -> Iterator[OutboxRecord]:
        return (record_from_row(r) for r in self._db.execute("SELECT * FROM records ORDER BY sequence").fetchall())

    def pending_count(self) -> int:
        return self.backlog()[0]

    def checkpoint(self) -> None:
        copy_wal_back(self._db)

    def wait_for_work(self, timeout: float) -> None:
        """Read what the answering process says for up to ``POLL_SECONDS`` (so that the batcher looks
        at the file again soon), returning at once when it says something."""
        try:
            if self._conn.poll(min(timeout, POLL_SECONDS)):
                self.receive()
        except (EOFError, OSError):
            self._parent_gone()

    def receive(self) -> None:
        """Act on every message waiting."""
        try:
            while self._conn.poll():
                message = self._conn.recv()
                if message[0] == "awaited":
                    self._awaited = max(self._awaited, message[1])
                elif message[0] == "stop":
                    self.flush_requested, self.stop_requested = bool(message[1]), True
                    self._stop()
        except (EOFError, OSError):
            self._parent_gone()

    def report(self, batcher: Batcher) -> None:
        """The batcher's status, for the answering process's ``/v1/health``; and what the answering
        process said meanwhile (while the chain is down the batcher never waits for work, and a
        stop must still be heard)."""
        try:
            self._conn.send(("status", batcher.last_error, batcher.anchored_batches, batcher.failures,
                             batcher.lost_from_chain))
        except OSError:
            self._parent_gone()
            return
        self.receive()

    def report_error(self, error: str, failures: int) -> None:
        """An error before there is a batcher (the chain down at start), for ``/v1/health``."""
        try:
            self._conn.send(("status", error, 0, failures, 0))
        except OSError:
            self._parent_gone()

    def _parent_gone(self) -> None:
        self.parent_gone = True
        self._stop()

    def _stop(self) -> None:
        if self.batcher is not None:
            self.batcher.request_stop()


def run_anchoring(conn: Connection) -> int:
    """The anchoring process: receive the settings and the key, reconcile, anchor until told to stop."""
    kind, key, settings = conn.recv()
    if kind != "start":
        return 2
    signer = Signer(Account.from_key(key))
    del key
    chain = Chain(settings.rpc_url, tls=settings.rpc_tls, timeout=settings.rpc_timeout,
                  receipt_timeout=settings.receipt_timeout)
    outbox = OutboxFile(settings.outbox, conn)
    consortium = _connect(chain, Deployment.from_json(settings.deployment_json), settings, outbox)
    if consortium is None:
        return 0
    batcher = Batcher(outbox, consortium.audit_log, signer, max_records=settings.max_records, max_age=settings.max_age,
                      retry_delay=settings.retry_delay, max_in_flight=settings.max_in_flight, on_status=outbox.report,
                      decision_age_limit=consortium.registry.max_decision_age_blocks, stuck_after=settings.stuck_after,
                      chain_check_seconds=settings.chain_check_seconds)
    outbox.batcher = batcher
    while True:  # nothing is anchored before the chain's state is known (it may be down at first)
        try:
            batcher.reconcile()
            break
        except ChainDiverged:  # reported; the batcher then sends nothing (the answering process refuses it at start too)
            break
        except LedgerError as exc:
            batcher.last_error = f"cannot reconcile with the chain: {exc}"
            batcher.failures += 1
            outbox.report(batcher)
            outbox.wait_for_work(settings.retry_delay)
            if outbox.parent_gone or batcher.stopping:
                return 0
            time.sleep(settings.retry_delay)
    conn.send(("ready",))
    batcher.run()
    if outbox.flush_requested and not outbox.parent_gone:
        batcher.flush()
    return 0


def _connect(chain: Chain, deployment: Deployment, settings: AnchoringSettings, outbox: OutboxFile) -> Consortium | None:
    """The consortium's clients, once the node answers (``Consortium`` asks it its chain id): a process
    started while the chain is down waits for it, saying so, as it waits to reconcile. None if told
    to stop, or if the answering process is gone, meanwhile."""
    failures = 0
    while True:
        try:
            return Consortium(chain, deployment, settings.compilation)
        except ChainUnavailable as exc:
            failures += 1
            outbox.report_error(f"cannot reach the chain: {exc}", failures)
            outbox.wait_for_work(settings.retry_delay)
            if outbox.parent_gone or outbox.stop_requested:
                return None
            time.sleep(settings.retry_delay)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    conn = Connection(int(args[0]))
    try:
        return run_anchoring(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())

