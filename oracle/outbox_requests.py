"""The on-chain request follower's state in the outbox file: the last block it has processed (a
cursor per follower) and each answered request's encrypted result until its fulfilment is on chain.

The answer itself is written with its audit record, in the record's transaction
(:meth:`oracle.outbox.Outbox.record` with ``keep_result``); this is what the follower and
``GET /v1/results/{requestId}`` read and mark afterwards, on the outbox's connection and under its lock.
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["ChainRequests"]


class ChainRequests:
    """The ``cursors`` and ``chain_requests`` tables of an outbox (``Outbox.chain_requests``)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def cursor(self, name: str) -> int | None:
        """The last block a follower has fully processed."""
        with self._lock:
            row = self._db.execute("SELECT block FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, name: str, block: int) -> None:
        with self._lock:
            self._db.execute("INSERT INTO cursors VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET block = excluded.block",
                             (name, block))

    def mark_fulfilled(self, request_id: int, tx_hash: str) -> None:
        with self._lock:
            self._db.execute("UPDATE chain_requests SET fulfilled_tx = ? WHERE request_id = ?", (tx_hash, request_id))

    def result(self, request_id: int) -> tuple[str, int, bytes, str | None] | None:
        """(requester, sequence, encrypted result, fulfilment tx) of an on-chain request, if answered."""
        with self._lock:
            row = self._db.execute(
                "SELECT requester, sequence, result, fulfilled_tx FROM chain_requests WHERE request_id = ?", (request_id,)
            ).fetchone()
        return None if row is None else (row[0], int(row[1]), bytes(row[2]), row[3])

    def unfulfilled(self) -> list[tuple[int, int]]:
        """(request id, sequence) of answered on-chain requests not yet marked fulfilled on chain."""
        with self._lock:
            rows = self._db.execute("SELECT request_id, sequence FROM chain_requests WHERE fulfilled_tx IS NULL").fetchall()
        return [(int(a), int(b)) for a, b in rows]
