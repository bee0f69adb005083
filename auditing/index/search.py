"""Reading the index: searches over the records, daily counts, grants, departments, datasets."""

from __future__ import annotations

import json
from typing import Any

from eth_utils import to_checksum_address

from auditing.index.models import (
    GRANT_STATES,
    GRANT_STATUS_NAMES,
    MAX_PAGE,
    ROLE_NAMES,
    AuditQueryError,
    DailyCount,
    DatasetSummary,
    DatasetVersionSummary,
    DepartmentSummary,
    GrantEvent,
    GrantSummary,
    IndexedRecord,
    RecordPage,
)
from auditing.index.store import LOG_INDEX_BITS, U64, IndexStore, position, s64, u64, utc_day
from ledger.contracts.audit_log import Outcome
from ledger.contracts.grants import GrantStatus


class IndexSearch(IndexStore):
    """The reads of the index (each under the connection's lock)."""

    # ------------------------------------------------------------------ search

    def department_id(self, value: int | str | None, what: str = "department") -> int | None:
        """A department given by id or by code (any case) as the index knows it; None for no value.
        An unknown code raises :class:`AuditQueryError` naming ``what``."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        row = self._db.execute("SELECT id FROM departments WHERE code = ?", (text,)).fetchone()
        if row is None:
            row = self._db.execute("SELECT id FROM departments WHERE lower(code) = lower(?)", (text,)).fetchone()
        if row is None:
            raise AuditQueryError(f"{what}: no department with code {text!r} in the index")
        return int(row[0])

    def search(
        self,
        *,
        dataset_id: int | None = None,
        requester_dept: int | str | None = None,
        provider_dept: int | str | None = None,
        requester: str | None = None,
        oracle: str | None = None,
        grant_id: int | None = None,
        outcome: Outcome | str | int | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        offset: int | None = None,
    ) -> RecordPage:
        """Records matching every filter given, newest first. Departments by id or code; ``outcome``
        by name (served, denied, source_failure) or value; ``since``/``until`` are unix seconds of the
        anchoring block (inclusive, exclusive). Keyset pagination with ``cursor`` (from the previous
        page) or offset pagination with ``offset``; ``limit`` 1..1000."""
        if not 1 <= int(limit) <= MAX_PAGE:
            raise AuditQueryError(f"limit must be 1..{MAX_PAGE}, got {limit}")
        if cursor is not None and offset is not None:
            raise AuditQueryError("use either cursor or offset, not both")
        if offset is not None and int(offset) < 0:
            raise AuditQueryError("offset must not be negative")
        with self._lock:
            where, params = self._filters(dataset_id, requester_dept, provider_dept, requester, oracle, grant_id,
                                          outcome, since, until)
            clause = " WHERE " + " AND ".join(where) if where else ""
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM records{clause}", params).fetchone()
            page_where, page_params = list(where), list(params)
            if cursor is not None:
                page_where.append("pos < ?")
                page_params.append(_parse_cursor(cursor))
            page_clause = " WHERE " + " AND ".join(page_where) if page_where else ""
            sql = f"SELECT * FROM records{page_clause} ORDER BY pos DESC LIMIT ?"
            page_params.append(int(limit) + 1)
            if offset is not None:
                sql += " OFFSET ?"
                page_params.append(int(offset))
            rows = self._db.execute(sql, page_params).fetchall()
        records = [_indexed(row) for row in rows[: int(limit)]]
        next_cursor = records[-1].cursor if len(rows) > int(limit) and records else None
        return RecordPage(records, int(total), next_cursor)

    def _filters(self, dataset_id: Any, requester_dept: Any, provider_dept: Any, requester: Any, oracle: Any,
                 grant_id: Any, outcome: Any, since: Any, until: Any) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []

        def add(sql: str, value: Any) -> None:
            where.append(sql)
            params.append(value)

        if dataset_id is not None:
            add("dataset_id = ?", s64(_as_uint(dataset_id, "dataset_id", 64)))
        dept = self.department_id(requester_dept, "requester_dept")
        if dept is not None:
            add("requester_dept = ?", dept)
        dept = self.department_id(provider_dept, "provider_dept")
        if dept is not None:
            add("oracle_dept = ?", dept)
        if requester is not None:
            add("requester = ?", _address(requester, "requester"))
        if oracle is not None:
            add("oracle = ?", _address(oracle, "oracle"))
        if grant_id is not None:
            add("grant_id = ?", s64(_as_uint(grant_id, "grant_id", 64)))
        if outcome is not None:
            add("outcome = ?", int(parse_outcome(outcome)))
        if since is not None:
            add("block_time >= ?", int(since))
        if until is not None:
            add("block_time < ?", int(until))
        return where, params

    def record(self, record_id: int | str) -> IndexedRecord | None:
        """One record by id (an int or its 0x-hex form)."""
        rid = _as_uint(record_id, "record_id", 224)
        oracle = self.checksum(f"{rid >> 64:040x}")
        with self._lock:
            row = self._db.execute("SELECT * FROM records WHERE oracle = ? AND sequence = ? ORDER BY pos LIMIT 1",
                                   (oracle, s64(rid & (U64 - 1)))).fetchone()
        return None if row is None else _indexed(row)

    def daily_counts(self, *, by: str = "requester", since: int | None = None, until: int | None = None) -> list[DailyCount]:
        """Accesses per UTC day per department, served vs denied vs source failure; ``by`` is
        ``requester`` (who asked) or ``provider`` (whose data). ``since``/``until``: unix seconds,
        applied by whole UTC day. Oldest day first."""
        if by not in ("requester", "provider"):
            raise AuditQueryError(f"by must be 'requester' or 'provider', got {by!r}")
        sql = "SELECT day, dept_id, outcome, count FROM daily WHERE side = ?"
        params: list[Any] = [by]
        if since is not None:
            sql += " AND day >= ?"
            params.append(utc_day(int(since)))
        if until is not None:
            sql += " AND day < ?"
            params.append(utc_day(int(until) - 1) + "~")  # the day holding until-1, included
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
            codes = dict(self._db.execute("SELECT id, code FROM departments").fetchall())
        counts: dict[tuple[str, int], list[int]] = {}
        for day, dept, outcome, count in rows:
            counts.setdefault((day, dept), [0, 0, 0])[min(int(outcome), 2)] += int(count)
        return [DailyCount(day, dept, codes.get(dept, "" if dept else "(none)"), *values)
                for (day, dept), values in sorted(counts.items())]

    # ------------------------------------------------------------------ grants, departments, datasets

    def grants(
        self,
        *,
        dataset_id: int | None = None,
        requester_dept: int | str | None = None,
        owner_dept: int | str | None = None,
        status: str | None = None,
    ) -> list[GrantSummary]:
        """Grants as of the cursor (see :class:`GrantSummary`), by id; filters combine."""
        if status is not None and status not in GRANT_STATES:
            raise AuditQueryError(f"status must be one of {', '.join(GRANT_STATES)}, got {status!r}")
        with self._lock:
            where, params = [], []
            if dataset_id is not None:
                where.append("dataset_id = ?")
                params.append(s64(_as_uint(dataset_id, "dataset_id", 64)))
            for column, value in (("requester_dept", requester_dept), ("owner_dept", owner_dept)):
                dept = self.department_id(value, column)
                if dept is not None:
                    where.append(f"{column} = ?")
                    params.append(dept)
            clause = " WHERE " + " AND ".join(where) if where else ""
            rows = self._db.execute(f"SELECT * FROM grants{clause} ORDER BY id", params).fetchall()
            now = self._cursor_time()
        out = [_grant_summary(row, now) for row in rows]
        return [g for g in out if status is None or g.status == status]

    def grant(self, grant_id: int) -> GrantSummary | None:
        """One grant as of the cursor, if the index knows it."""
        with self._lock:
            row = self._db.execute("SELECT * FROM grants WHERE id = ?", (s64(_as_uint(grant_id, "grant_id", 64)),)).fetchone()
            now = self._cursor_time()
        return None if row is None else _grant_summary(row, now)

    def _cursor_time(self) -> int | None:
        row = self._db.execute("SELECT b.timestamp FROM meta m JOIN blocks b ON b.number = CAST(m.value AS INTEGER)"
                               " WHERE m.key = 'cursor'").fetchone()
        return None if row is None else int(row[0])

    def grant_history(self, grant_id: int | None = None) -> list[GrantEvent]:
        """Every AccessGrants event (of one grant, if given), in chain order."""
        sql = ("SELECT g.grant_id, g.kind, g.block_number, g.log_index, g.tx_hash, COALESCE(b.timestamp, 0), g.actor, g.data"
               " FROM grant_events g LEFT JOIN blocks b ON b.number = g.block_number")
        params: list[Any] = []
        if grant_id is not None:
            sql += " WHERE g.grant_id = ?"
            params.append(s64(_as_uint(grant_id, "grant_id", 64)))
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY g.pos", params).fetchall()
        return [GrantEvent(u64(g), kind, block, li, tx, ts, actor, json.loads(data))
                for g, kind, block, li, tx, ts, actor, data in rows]

    def departments(self) -> list[DepartmentSummary]:
        """Every department ever admitted, with its current accounts and roles."""
        with self._lock:
            rows = self._db.execute("SELECT id, code, name, audit_office, active, admitted_block, removed_block"
                                    " FROM departments ORDER BY id").fetchall()
            accounts = self._db.execute("SELECT account, dept_id, roles FROM accounts WHERE dept_id != 0"
                                        " ORDER BY account").fetchall()
        by_dept: dict[int, dict[str, list[str]]] = {}
        for account, dept, roles in accounts:
            by_dept.setdefault(dept, {})[account] = [name for bit, name in ROLE_NAMES.items() if roles & bit]
        return [DepartmentSummary(d, code, name, bool(audit), bool(active), admitted, removed, by_dept.get(d, {}))
                for d, code, name, audit, active, admitted, removed in rows]

    def datasets(self) -> list[DatasetSummary]:
        """Every dataset in the catalog with its published versions."""
        with self._lock:
            rows = self._db.execute("SELECT id, owner_dept, name, fields, classification, retired FROM datasets"
                                    " ORDER BY id").fetchall()
            versions = self._db.execute(
                "SELECT v.dataset_id, v.version, v.content_hash, v.merkle_root, v.record_count, v.block_number,"
                " COALESCE(b.timestamp, 0) FROM dataset_versions v LEFT JOIN blocks b ON b.number = v.block_number"
                " ORDER BY v.dataset_id, v.version").fetchall()
        by_dataset: dict[int, list[DatasetVersionSummary]] = {}
        for d, version, content, root, count, block, ts in versions:
            by_dataset.setdefault(u64(d), []).append(DatasetVersionSummary(version, bytes(content), bytes(root), count, block, ts))
        return [DatasetSummary(u64(d), owner, name, tuple(json.loads(fields)), classification, bool(retired),
                               by_dataset.get(u64(d), []))
                for d, owner, name, fields, classification, retired in rows]

    def dataset_version(self, dataset_id: int, version: int) -> DatasetVersionSummary | None:
        """A published version's commitments, if the index holds it."""
        with self._lock:
            row = self._db.execute(
                "SELECT v.version, v.content_hash, v.merkle_root, v.record_count, v.block_number, COALESCE(b.timestamp, 0)"
                " FROM dataset_versions v LEFT JOIN blocks b ON b.number = v.block_number"
                " WHERE v.dataset_id = ? AND v.version = ?", (s64(int(dataset_id)), int(version))).fetchone()
        return None if row is None else DatasetVersionSummary(row[0], bytes(row[1]), bytes(row[2]), *row[3:])

# --------------------------------------------------------------------------- helpers


def parse_outcome(value: Outcome | str | int) -> Outcome:
    """An outcome from its name (served, denied, source_failure, any case) or value."""
    if isinstance(value, Outcome):
        return value
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return Outcome(value)
        text = str(value).strip()
        return Outcome(int(text)) if text.isdigit() else Outcome[text.upper().replace("-", "_")]
    except (KeyError, ValueError):
        raise AuditQueryError(f"outcome must be served, denied or source_failure, got {value!r}") from None


def _as_uint(value: int | str, what: str, bits: int) -> int:
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip(), 0)
    except ValueError:
        raise AuditQueryError(f"{what} must be an integer (decimal or 0x-hex), got {value!r}") from None
    if not 0 <= number < 1 << bits:
        raise AuditQueryError(f"{what} out of range: {value!r}")
    return number


def _address(value: str, what: str) -> str:
    try:
        return to_checksum_address(str(value).strip())
    except ValueError:
        raise AuditQueryError(f"{what} is not an address: {value!r}") from None


def _parse_cursor(cursor: str) -> int:
    try:
        block, log_index = (int(part) for part in str(cursor).split(":"))
    except ValueError:
        raise AuditQueryError(f"not a cursor from a previous page: {cursor!r}") from None
    if block < 0 or not 0 <= log_index < 1 << LOG_INDEX_BITS:
        raise AuditQueryError(f"not a cursor from a previous page: {cursor!r}")
    return position(block, log_index)


def _indexed(row: tuple) -> IndexedRecord:
    (_, oracle, sequence, oracle_dept, requester, requester_dept, dataset_id, version, grant_id, field_mask, outcome,
     reason, checked, request_hash, response_hash, block, block_time, tx_hash, log_index) = row
    sequence = u64(sequence)
    return IndexedRecord(
        record_id=int(oracle, 16) << 64 | sequence, oracle=oracle, sequence=sequence, oracle_dept=oracle_dept,
        requester=requester, requester_dept=requester_dept, dataset_id=u64(dataset_id), dataset_version=version,
        grant_id=u64(grant_id), field_mask=None if field_mask is None else int(field_mask, 16),
        outcome=Outcome(outcome), reason=reason, checked_at_block=u64(checked), request_hash=bytes(request_hash),
        response_hash=bytes(response_hash), block_number=block, tx_hash=tx_hash, log_index=log_index,
        block_time=block_time,
    )


def _grant_summary(row: tuple, now: int | None) -> GrantSummary:
    (gid, dataset_id, requester_dept, owner_dept, pinned, status, fields, unmasked, duration, quota, _used_on_chain,
     served, expires_at, purpose, requested_block, activated_block, closed_block) = row
    name = GRANT_STATUS_NAMES.get(GrantStatus(status), "unknown")
    if status == GrantStatus.ACTIVE and now is not None and now >= expires_at:
        name = "expired"
    return GrantSummary(u64(gid), u64(dataset_id), requester_dept, owner_dept, pinned, name, int(fields, 16),
                        int(unmasked, 16), duration, quota, served, expires_at, purpose, requested_block,
                        activated_block, closed_block)

