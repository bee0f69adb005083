"""The outbox file: its SQLite schema, its records, and what any process may do with the file besides
the oracle's writer (:class:`oracle.outbox.Outbox`): read records from a row (the anchoring
process), checkpoint its WAL (the anchoring side), export it read-only (auditors).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ledger.contracts.audit_log import AuditEntry, Outcome
from ledger.errors import LedgerError

__all__ = [
    "INSERT_RECORD",
    "INSERT_RECORD_WITH_NONCE",
    "MIGRATE_NONCES",
    "PRUNE_NONCES",
    "SCHEMA",
    "WalReader",
    "OutboxMismatch",
    "OutboxRecord",
    "RecordWrite",
    "copy_wal_back",
    "export_records",
    "record_from_row",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- expires_at: the signed query's deadline (unix seconds); once it has passed, the deadline check
-- refuses a replay by itself and the row is pruned (Outbox.prune_nonces). NULL: kept for good
-- (an on-chain request's id, which the chain_requests table holds anyway).
CREATE TABLE IF NOT EXISTS nonces (
    requester TEXT NOT NULL, nonce TEXT NOT NULL, sequence INTEGER NOT NULL, expires_at REAL,
    PRIMARY KEY (requester, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS records (
    sequence INTEGER PRIMARY KEY,
    grant_id INTEGER NOT NULL, requester TEXT NOT NULL, dataset_id INTEGER NOT NULL,
    dataset_version INTEGER NOT NULL, outcome INTEGER NOT NULL, reason INTEGER NOT NULL,
    checked_at_block INTEGER NOT NULL, request_hash BLOB NOT NULL, response_hash BLOB NOT NULL,
    request_salt BLOB, response_salt BLOB, created_at REAL NOT NULL,
    anchored_tx TEXT, anchored_block INTEGER
);
CREATE INDEX IF NOT EXISTS records_unanchored ON records (sequence) WHERE anchored_block IS NULL;
CREATE TABLE IF NOT EXISTS chain_requests (
    request_id INTEGER PRIMARY KEY, requester TEXT NOT NULL, sequence INTEGER NOT NULL,
    result BLOB NOT NULL, fulfilled_tx TEXT
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, block INTEGER NOT NULL);
-- The hash-chain head after the newest record, sealed with a key of the oracle's (oracle.outbox_seal):
-- one row, made when the outbox is bound, updated by the same statement as each record (the views
-- below; an UPDATE in place, where a REPLACE cost ~20 µs more per record).
CREATE TABLE IF NOT EXISTS sealed_head (
    one INTEGER PRIMARY KEY CHECK (one = 1), sequence INTEGER NOT NULL, head BLOB NOT NULL, seal BLOB NOT NULL
);
-- A record, its requester's nonce (with the query's deadline, after which it may be pruned) and the
-- sealed head in one statement (the trigger's statements are atomic with it): the answering path
-- then runs a single SQLite step under the outbox lock, not four.
-- Made afresh at every opening (an older file's views lack the seal's columns).
DROP VIEW IF EXISTS records_with_nonce;
CREATE VIEW records_with_nonce AS
    SELECT r.*, n.requester AS nonce_requester, n.nonce AS nonce, n.expires_at AS nonce_expires_at,
           s.head AS sealed_head, s.seal AS seal
    FROM records r JOIN nonces n ON n.sequence = r.sequence JOIN sealed_head s;
CREATE TRIGGER record_with_nonce INSTEAD OF INSERT ON records_with_nonce BEGIN
    INSERT INTO nonces VALUES (NEW.nonce_requester, NEW.nonce, NEW.sequence, NEW.nonce_expires_at);
    INSERT INTO records (sequence, grant_id, requester, dataset_id, dataset_version, outcome, reason, checked_at_block,
                         request_hash, response_hash, request_salt, response_salt, created_at)
    VALUES (NEW.sequence, NEW.grant_id, NEW.requester, NEW.dataset_id, NEW.dataset_version, NEW.outcome, NEW.reason,
            NEW.checked_at_block, NEW.request_hash, NEW.response_hash, NEW.request_salt, NEW.response_salt, NEW.created_at);
    UPDATE sealed_head SET sequence = NEW.sequence, head = NEW.sealed_head, seal = NEW.seal WHERE one = 1;
END;
DROP VIEW IF EXISTS records_sealed;
CREATE VIEW records_sealed AS SELECT r.*, s.head AS sealed_head, s.seal AS seal FROM records r JOIN sealed_head s;
CREATE TRIGGER record_sealed INSTEAD OF INSERT ON records_sealed BEGIN
    INSERT INTO records (sequence, grant_id, requester, dataset_id, dataset_version, outcome, reason, checked_at_block,
                         request_hash, response_hash, request_salt, response_salt, created_at)
    VALUES (NEW.sequence, NEW.grant_id, NEW.requester, NEW.dataset_id, NEW.dataset_version, NEW.outcome, NEW.reason,
            NEW.checked_at_block, NEW.request_hash, NEW.response_hash, NEW.request_salt, NEW.response_salt, NEW.created_at);
    UPDATE sealed_head SET sequence = NEW.sequence, head = NEW.sealed_head, seal = NEW.seal WHERE one = 1;
END;
"""


RECORD_COLUMNS = ("sequence, grant_id, requester, dataset_id, dataset_version, outcome, reason, checked_at_block,"
                   " request_hash, response_hash, request_salt, response_salt, created_at")
#: A record and the sealed head after it (the values of RECORD_COLUMNS, then head and seal).
INSERT_RECORD = f"INSERT INTO records_sealed ({RECORD_COLUMNS}, sealed_head, seal) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#: The same with the requester's nonce (then its requester, the nonce and the query's deadline).
INSERT_RECORD_WITH_NONCE = (f"INSERT INTO records_with_nonce ({RECORD_COLUMNS}, sealed_head, seal, nonce_requester, nonce,"
                             " nonce_expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")

#: Used nonces whose query's deadline passed before ? (at most ? of them): a replay is refused by the deadline.
PRUNE_NONCES = ("DELETE FROM nonces WHERE (requester, nonce) IN (SELECT requester, nonce FROM nonces"
                " WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?)")

#: An outbox written before nonces had ``expires_at``: the column is added (its rows keep NULL, so
#: they are never pruned); the view and trigger that insert nonces are made anew by SCHEMA.
MIGRATE_NONCES = """
ALTER TABLE nonces ADD COLUMN expires_at REAL;
DROP VIEW IF EXISTS records_with_nonce;
"""


def copy_wal_back(db: sqlite3.Connection) -> None:
    """Checkpoint the outbox's WAL from a connection of the anchoring side (after each batch, and
    every few seconds while nothing anchors).

    A PASSIVE checkpoint copies the WAL back into the database file without waiting for, or
    blocking, the writer, so it does the bulk of the copying off the answering path. It cannot by
    itself keep the WAL small: SQLite rewinds the WAL (writes from its start again) only when a write
    begins while the whole WAL is copied back, and under a steady stream of answers some are always
    written while a checkpoint runs (measured here: 10 s at 1,000 answers a second left an 80-120 MB
    WAL behind PASSIVE checkpoints every 0.1 s, growing about 15 KB per answer as long as answers
    come). The writer completes the job: every ``WRITER_CHECKPOINT_PAGES`` pages its commit runs a
    PASSIVE checkpoint of its own (SQLite's ``wal_autocheckpoint``), which copies the little the
    anchoring side has not copied yet, and since no other write can come in meanwhile, it finishes
    and the next write rewinds the WAL: it stays at about 4 MB. That costs the answer whose commit
    runs it a few milliseconds (an fsync of the WAL and of the database) once every ~270 answers;
    the earlier bound, a RESTART checkpoint from this side once the WAL passed 256 MB, held every
    write back for about 100 ms each time (the busy handler's sleeps, then cutting the WAL file back
    by 240 MB), the largest spike of the oracle's p99 latency."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class WalReader:
    """The anchoring side's connection to an outbox file (a WAL reader: it sees committed records and
    never waits for, nor blocks, the writer), opened at its first use; ``lock`` makes each of the
    anchoring side's steps whole (two threads marking the same batch count it once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        return self._db

    def read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.lock:
            return self._connection().execute(sql, params).fetchall()

    def checkpoint(self) -> None:
        with self.lock:
            copy_wal_back(self._connection())

    def close(self) -> None:
        with self.lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class OutboxMismatch(LedgerError):
    """The outbox belongs to another oracle, chain or deployment, or disagrees with the chain."""


@dataclass(frozen=True)
class OutboxRecord:
    """One access as the oracle recorded it, with the salts that open its hashes."""

    sequence: int
    entry: AuditEntry
    request_salt: bytes | None
    response_salt: bytes | None
    created_at: float
    anchored_tx: str | None = None
    anchored_block: int | None = None


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """One access to write with :meth:`Outbox.record_many` (the arguments of :meth:`Outbox.record`
    without ``keep_result``)."""

    entry: AuditEntry
    request_salt: bytes | None
    response_salt: bytes | None
    nonce: tuple[str, str] | None = None
    quota_room: int | None = None
    checked_at_block: int = 0
    nonce_expires_at: float | None = None  # the signed deadline: the nonce may be pruned after it


def record_from_row(row: tuple) -> OutboxRecord:
    """An :class:`OutboxRecord` from a ``SELECT * FROM records`` row."""
    (sequence, grant_id, requester, dataset_id, version, outcome, reason, checked, request_hash, response_hash,
     request_salt, response_salt, created_at, anchored_tx, anchored_block) = row
    entry = AuditEntry(grant_id, requester, dataset_id, version, Outcome(outcome), reason, checked,
                       bytes(request_hash), bytes(response_hash))
    return OutboxRecord(sequence, entry, request_salt and bytes(request_salt), response_salt and bytes(response_salt),
                        created_at, anchored_tx, anchored_block)


def export_records(path: Path) -> tuple[dict[str, str], list[OutboxRecord]]:
    """The outbox's identity (oracle, chain id, audit log) and every record in sequence order, read
    through a read-only connection in one snapshot, without the oracle's file lock: an auditor can
    export the log of a running oracle (WAL readers never block its writer).

    Raises :class:`OutboxMismatch` if ``path`` is not a readable outbox."""
    source = Path(path)
    if not source.is_file():
        raise OutboxMismatch(f"no outbox at {source}")
    try:
        db = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise OutboxMismatch(f"cannot open outbox {source} read-only: {exc}") from None
    try:
        db.execute("BEGIN")
        identity = dict(db.execute("SELECT key, value FROM meta").fetchall())
        rows = db.execute("SELECT * FROM records ORDER BY sequence").fetchall()
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise OutboxMismatch(f"{source} is not a readable oracle outbox: {exc}") from None
    finally:
        db.close()
    return identity, [record_from_row(r) for r in rows]
