"""The index file: its SQLite schema, how chain values are stored, and what every part of the index
shares (the connection and its lock, the deployment it is bound to, the sync cursor, raw reads)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from eth_utils import to_checksum_address

from auditing.index.models import INDEX_FORMAT, AuditIndexError, IndexStatus

U64 = 1 << 64
LOG_INDEX_BITS = 24  # pos = block << 24 | log index: chain order as one integer

# --------------------------------------------------------------------------- schema

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, hash TEXT);
CREATE TABLE IF NOT EXISTS records (
    pos INTEGER PRIMARY KEY,
    oracle TEXT NOT NULL, sequence INTEGER NOT NULL, oracle_dept INTEGER NOT NULL,
    requester TEXT NOT NULL, requester_dept INTEGER NOT NULL,
    dataset_id INTEGER NOT NULL, dataset_version INTEGER NOT NULL, grant_id INTEGER NOT NULL,
    field_mask TEXT, outcome INTEGER NOT NULL, reason INTEGER NOT NULL, checked_at_block INTEGER NOT NULL,
    request_hash BLOB NOT NULL, response_hash BLOB NOT NULL,
    block_number INTEGER NOT NULL, block_time INTEGER NOT NULL, tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_oracle ON records (oracle, sequence);
CREATE INDEX IF NOT EXISTS records_by_dataset ON records (dataset_id, pos);
CREATE INDEX IF NOT EXISTS records_by_requester_dept ON records (requester_dept, pos);
CREATE INDEX IF NOT EXISTS records_by_provider_dept ON records (oracle_dept, pos);
CREATE INDEX IF NOT EXISTS records_by_requester ON records (requester, pos);
CREATE INDEX IF NOT EXISTS records_by_grant ON records (grant_id, pos);
CREATE INDEX IF NOT EXISTS records_by_outcome ON records (outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_dataset_outcome ON records (dataset_id, outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_requester_dept_outcome ON records (requester_dept, outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_provider_dept_outcome ON records (oracle_dept, outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_time ON records (block_time);
CREATE TABLE IF NOT EXISTS batches (
    pos INTEGER PRIMARY KEY, oracle TEXT NOT NULL, dept_id INTEGER NOT NULL, first_sequence INTEGER NOT NULL,
    count INTEGER NOT NULL, head BLOB NOT NULL, block_number INTEGER NOT NULL, tx_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grant_events (
    pos INTEGER PRIMARY KEY, grant_id INTEGER NOT NULL, kind TEXT NOT NULL, block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, actor TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS grant_events_by_grant ON grant_events (grant_id, pos);
CREATE TABLE IF NOT EXISTS grants (
    id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL, requester_dept INTEGER NOT NULL, owner_dept INTEGER NOT NULL,
    pinned_version INTEGER NOT NULL, status INTEGER NOT NULL, fields TEXT NOT NULL, unmasked_fields TEXT NOT NULL,
    duration INTEGER NOT NULL, quota INTEGER NOT NULL, used_on_chain INTEGER NOT NULL, served INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, purpose TEXT NOT NULL, requested_block INTEGER NOT NULL,
    activated_block INTEGER, closed_block INTEGER
);
CREATE TABLE IF NOT EXISTS registry_events (
    pos INTEGER PRIMARY KEY, kind TEXT NOT NULL, dept_id INTEGER NOT NULL, account TEXT, role INTEGER NOT NULL,
    block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS departments (
    id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, audit_office INTEGER NOT NULL,
    active INTEGER NOT NULL, admitted_block INTEGER NOT NULL, removed_block INTEGER, oracle_url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (account TEXT PRIMARY KEY, dept_id INTEGER NOT NULL, roles INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY, owner_dept INTEGER NOT NULL, name TEXT NOT NULL, fields TEXT NOT NULL,
    schema_hash BLOB NOT NULL, classification INTEGER NOT NULL, update_frequency INTEGER NOT NULL,
    retired INTEGER NOT NULL, registered_pos INTEGER NOT NULL, retired_pos INTEGER
);
CREATE TABLE IF NOT EXISTS dataset_versions (
    dataset_id INTEGER NOT NULL, version INTEGER NOT NULL, content_hash BLOB NOT NULL, merkle_root BLOB NOT NULL,
    record_count INTEGER NOT NULL, pos INTEGER NOT NULL, block_number INTEGER NOT NULL, tx_hash TEXT NOT NULL,
    PRIMARY KEY (dataset_id, version)
);
CREATE TABLE IF NOT EXISTS daily (
    day TEXT NOT NULL, side TEXT NOT NULL, dept_id INTEGER NOT NULL, outcome INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (day, side, dept_id, outcome)
) WITHOUT ROWID;
"""


def position(block: int, log_index: int) -> int:
    """Chain order as one integer: ``block << 24 | log_index``."""
    return block << LOG_INDEX_BITS | log_index


def s64(value: int) -> int:
    """A uint64 as SQLite's signed 64-bit integer (values >= 2**63 wrap; read back with ``_u64``)."""
    return value - U64 if value >= 1 << 63 else value


def u64(value: int) -> int:
    return value + U64 if value < 0 else value


_LAST_DAY = 253_402_214_400  # 9999-12-31, the last day datetime can name


def utc_day(timestamp: int) -> str:
    """The UTC day of a timestamp (clamped to 1970-01-01..9999-12-31: a chain's clock is not checked)."""
    return datetime.fromtimestamp(min(max(int(timestamp), 0), _LAST_DAY), UTC).strftime("%Y-%m-%d")


def last_position(cursor: int | None) -> int:
    """The last chain position a verification covers: the end of the index's cursor block."""
    return -1 if cursor is None else position(cursor + 1, 0) - 1


def end_of_block(block: int) -> int:
    """The last position of ``block``: state "at block B" includes every transaction of B."""
    return position(block + 1, 0) - 1


class IndexStore:
    """The index file and what its readers and its syncing writer share. Thread-safe: one
    connection guarded by a lock; other processes may read (or sync) the same file concurrently."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            stored = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise AuditIndexError(f"{self.path} is not a usable audit index: {exc}") from None
        if stored is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(INDEX_FORMAT),))
        elif stored[0] != str(INDEX_FORMAT):
            raise AuditIndexError(f"{self.path} is an audit index of format {stored[0]}, this govshare reads {INDEX_FORMAT}")
        self._lock = threading.RLock()
        self._checksums: dict[str, str] = {}

    def close(self) -> None:
        """Close the file (the index is usable again by opening a new ``AuditIndex``)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ meta

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def status(self) -> IndexStatus:
        """Which deployment the index holds, how far it is synced, and how much it holds."""
        with self._lock:
            meta = self.meta()
            (records,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
            (oracles,) = self._db.execute("SELECT COUNT(DISTINCT oracle) FROM records").fetchone()
            (grants,) = self._db.execute("SELECT COUNT(*) FROM grants").fetchone()
            cursor = int(meta["cursor"]) if "cursor" in meta else None
            cursor_time = self.block_time(cursor) if cursor is not None else None
        return IndexStatus(
            chain_id=int(meta["chain_id"]) if "chain_id" in meta else None,
            addresses=json.loads(meta.get("addresses", "{}")),
            deployment_block=int(meta["deployment_block"]) if "deployment_block" in meta else None,
            cursor=cursor,
            cursor_time=cursor_time,
            records=int(records),
            oracles=int(oracles),
            grants=int(grants),
        )

    @property
    def cursor(self) -> int | None:
        """The last block fully indexed (None: never synced)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
        return None if row is None else int(row[0])

    def block_time(self, block: int) -> int | None:
        """The timestamp of ``block`` if the index holds it."""
        with self._lock:
            row = self._db.execute("SELECT timestamp FROM blocks WHERE number = ?", (block,)).fetchone()
        return None if row is None else int(row[0])

    def checksum(self, hex40: str) -> str:
        """The checksummed form of a 40-digit hex address (cached: the same few accounts recur)."""
        address = self._checksums.get(hex40)
        if address is None:
            address = self._checksums[hex40] = to_checksum_address("0x" + hex40)
        return address

    # ------------------------------------------------------------------ raw reads for the verifier

    def verification_rows(self, up_to_block: int | None = None) -> Iterator[tuple]:
        """Every record (anchored up to ``up_to_block``, if given) in chain order as ``(oracle, sequence,
        oracle_dept, requester, dataset_id, dataset_version, grant_id, outcome, reason, checked_at_block,
        request_hash, response_hash, block_number, log_index, tx_hash, block_time)``; u64 columns as
        stored (see ``_u64``). A file index is streamed through a connection of its own."""
        last = U64 << 24 if up_to_block is None else position(up_to_block + 1, 0) - 1
        sql = ("SELECT oracle, sequence, oracle_dept, requester, dataset_id, dataset_version, grant_id, outcome, reason,"
               " checked_at_block, request_hash, response_hash, block_number, log_index, tx_hash, block_time"
               f" FROM records WHERE pos <= {int(last)} ORDER BY pos")
        if self.path == ":memory:":
            with self._lock:
                return iter(self._db.execute(sql).fetchall())
        return stream_rows(self.path, sql)

    def raw(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """A read-only query over the index's tables (for the verifier and reports)."""
        with self._lock:
            return self._db.execute(sql, list(params)).fetchall()


def stream_rows(path: str, sql: str) -> Iterator[tuple]:
    """Rows of ``sql`` read through a connection of their own (the index stays usable meanwhile)."""
    db = sqlite3.connect(path, timeout=30.0)
    try:
        db.execute("BEGIN")  # one snapshot for the whole read
        cursor = db.execute(sql)
        while True:
            rows = cursor.fetchmany(5_000)
            if not rows:
                break
            yield from rows
        db.execute("COMMIT")
    finally:
        db.close()

