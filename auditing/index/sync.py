"""Feeding the index from chain events: ``sync`` reads the four contracts' events in bounded block
ranges and commits each range with the cursor; the two events that come by the thousand are
decoded by hand from the raw logs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes

from auditing.index.models import (
    BLOCK_BATCH,
    DEFAULT_SYNC_STEP,
    ROLE_BITS,
    AuditIndexError,
    AuditQueryError,
    SyncResult,
)
from auditing.index.store import U64, IndexStore, position, s64, u64, utc_day
from ledger.contracts.audit_log import Outcome
from ledger.contracts.grants import GrantStatus
from ledger.events import block_ranges
from ledger.rpc import RpcErrorAnswer

#: The contract each indexed event must come from.
_EVENT_SOURCES = {
    "ConsortiumRegistry": ("DepartmentAdmitted", "DepartmentRemoved", "AccountBound", "AccountUnbound",
                           "RoleGranted", "RoleRevoked", "OracleUrlChanged", "MaxDecisionAgeChanged"),
    "DataCatalog": ("DatasetRegistered", "DatasetVersionPublished", "DatasetRetired"),
    "AccessGrants": ("GrantRequested", "GrantApproved", "GrantCoApproved", "GrantActivated", "GrantRejected",
                     "GrantRevoked", "GrantCancelled", "GrantUsed"),
    "AuditLog": ("AuditRecordAppended", "AuditBatchAppended"),
}
_GRANT_KINDS = {
    "GrantRequested": "requested", "GrantApproved": "approved", "GrantCoApproved": "co_approved",
    "GrantActivated": "activated", "GrantRejected": "rejected", "GrantRevoked": "revoked",
    "GrantCancelled": "cancelled",
}


# --------------------------------------------------------------------------- sync state


@dataclass
class _Grant:
    id: int
    dataset_id: int
    requester_dept: int
    owner_dept: int
    pinned_version: int
    status: int
    fields: int
    unmasked_fields: int
    duration: int
    quota: int
    used_on_chain: int
    served: int
    expires_at: int
    purpose: str
    requested_block: int
    activated_block: int | None = None
    closed_block: int | None = None

    def row(self) -> tuple:
        return (self.id, self.dataset_id, self.requester_dept, self.owner_dept, self.pinned_version, self.status,
                hex(self.fields), hex(self.unmasked_fields), self.duration, self.quota, self.used_on_chain, self.served,
                self.expires_at, self.purpose, self.requested_block, self.activated_block, self.closed_block)


@dataclass
class _SyncState:
    """The current state the events of a range are applied to (loaded per ``sync`` call)."""

    accounts: dict[str, list[int]]  # account -> [dept, roles]
    departments: dict[int, list[Any]]  # id -> [code, name, audit_office, active, admitted, removed, url]
    grants: dict[int, _Grant]
    datasets: dict[int, list[Any]]  # id -> [owner, name, fields json, schema hash, class, freq, retired, pos, retired pos]
    dirty_accounts: set[str] = field(default_factory=set)
    dirty_departments: set[int] = field(default_factory=set)
    dirty_grants: set[int] = field(default_factory=set)
    dirty_datasets: set[int] = field(default_factory=set)


@dataclass
class _RangeWrites:
    records: list[list[Any]] = field(default_factory=list)
    batches: list[tuple] = field(default_factory=list)
    grant_events: list[tuple] = field(default_factory=list)
    registry_events: list[tuple] = field(default_factory=list)
    versions: list[tuple] = field(default_factory=list)
    catalog_events: int = 0


class IndexSync(IndexStore):
    """The syncing writer of the index (see :meth:`sync`)."""

    # ------------------------------------------------------------------ sync

    def sync(
        self,
        consortium: Any,
        *,
        to_block: int | None = None,
        step: int = DEFAULT_SYNC_STEP,
        on_range: Callable[[int, int], None] | None = None,
    ) -> SyncResult:
        """Index every event of the deployment from the cursor (or the deployment block) to
        ``to_block`` (default: latest), ``step`` blocks per ``eth_getLogs`` and per committed SQLite
        transaction, so that a crash loses at most the range in flight and the next call resumes.
        ``on_range(first, last)`` is called after each committed range.

        Raises :class:`AuditIndexError` if the index belongs to another deployment or the chain no
        longer has the block the cursor names; ``ChainUnavailable`` if the node cannot be reached
        (what was committed stays)."""
        if step < 1:
            raise AuditQueryError("step must be at least 1")
        started = time.perf_counter()
        chain = consortium.chain
        deployment = consortium.deployment
        addresses = {name: deployment.addresses[name] for name in _EVENT_SOURCES}
        with self._lock:
            self._bind(chain.chain_id, addresses, deployment.deployment_block)
            cursor = self.cursor
            if cursor is not None:
                self._check_cursor_block(chain, cursor)
        head = chain.block_number()
        last = head if to_block is None else min(int(to_block), head)
        first = deployment.deployment_block if cursor is None else cursor + 1
        totals = {"ranges": 0, "records": 0, "grant_events": 0, "registry_events": 0, "catalog_events": 0}
        if first <= last:
            decoder = consortium.events
            topics = ["0x" + decoder.topic(name).hex() for names in _EVENT_SOURCES.values() for name in names]
            sources = {name: to_checksum_address(addresses[contract])
                       for contract, names in _EVENT_SOURCES.items() for name in names}
            record_topic = "0x" + decoder.topic("AuditRecordAppended").hex()
            with self._lock:
                state = self._load_state()
            previous = cursor
            for a, b in block_ranges(first, last, step):
                logs = _rpc(chain, "eth_getLogs", [{"address": list(addresses.values()), "fromBlock": hex(a),
                                                    "toBlock": hex(b), "topics": [topics]}])
                writes = _RangeWrites()
                with self._lock:
                    self._apply(chain, state, logs, decoder, sources, record_topic, writes, previous, b)
                previous = b
                for key in ("records", "grant_events", "registry_events"):
                    totals[key] += len(getattr(writes, key))
                totals["catalog_events"] += writes.catalog_events
                totals["ranges"] += 1
                if on_range is not None:
                    on_range(a, b)
        final = self.cursor
        return SyncResult(first, final if final is not None else last, seconds=time.perf_counter() - started, **totals)

    def _bind(self, chain_id: int, addresses: dict[str, str], deployment_block: int) -> None:
        meta = self.meta()
        wanted = {"chain_id": str(chain_id), "addresses": json.dumps(addresses, sort_keys=True),
                  "deployment_block": str(deployment_block)}
        if "chain_id" not in meta:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(wanted.items()))
            self._db.execute("COMMIT")
            return
        if any(meta.get(k) != v for k, v in wanted.items()):
            raise AuditIndexError(
                f"{self.path} indexes chain {meta.get('chain_id')} deployment {meta.get('addresses')}, "
                f"not chain {chain_id} deployment {wanted['addresses']}; use another index file"
            )

    def _check_cursor_block(self, chain: Any, cursor: int) -> None:
        row = self._db.execute("SELECT hash FROM blocks WHERE number = ?", (cursor,)).fetchone()
        if row is None or row[0] is None:
            return
        block = _rpc(chain, "eth_getBlockByNumber", [hex(cursor), False])
        if block is None or block["hash"] != row[0]:
            raise AuditIndexError(
                f"the chain no longer has block {cursor} as indexed (a reorganised or reset chain); "
                f"rebuild the index {self.path}"
            )

    def _load_state(self) -> _SyncState:
        db = self._db
        accounts = {a: [d, r] for a, d, r in db.execute("SELECT account, dept_id, roles FROM accounts")}
        departments = {row[0]: list(row[1:]) for row in db.execute(
            "SELECT id, code, name, audit_office, active, admitted_block, removed_block, oracle_url FROM departments")}
        grants = {}
        for row in db.execute("SELECT * FROM grants"):
            values = list(row)
            values[0], values[1] = u64(values[0]), u64(values[1])
            values[6], values[7] = int(values[6], 16), int(values[7], 16)
            grants[row[0]] = _Grant(*values)
        datasets = {u64(row[0]): list(row[1:]) for row in db.execute(
            "SELECT id, owner_dept, name, fields, schema_hash, classification, update_frequency, retired,"
            " registered_pos, retired_pos FROM datasets")}
        return _SyncState(accounts, departments, grants, datasets)

    def _apply(self, chain: Any, state: _SyncState, logs: list[dict], decoder: Any, sources: dict[str, str],
               record_topic: str, writes: _RangeWrites, previous: int | None, last_block: int) -> None:
        """Apply one range's logs to ``state`` and commit them with the cursor ``last_block``.

        The two events that come by the thousand (``AuditRecordAppended``, and ``GrantUsed`` once per
        run of served records of one grant) are decoded by hand from the raw log; the rest through
        the ABI decoder."""
        logs = sorted(logs, key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
        pending: list[list[Any]] = []  # records of the current transaction, waiting for their batch event
        pending_tx = None
        audit_log = sources["AuditRecordAppended"].lower()
        grants_contract = sources["GrantUsed"].lower()
        used_topic = "0x" + decoder.topic("GrantUsed").hex()
        for log in logs:
            block, log_index = int(log["blockNumber"], 16), int(log["logIndex"], 16)
            tx_hash = log["transactionHash"]
            if tx_hash != pending_tx:
                writes.records.extend(pending)
                pending, pending_tx = [], tx_hash
            topics = log["topics"]
            if topics[0] == record_topic:
                if log["address"].lower() == audit_log:
                    pending.append(self._record_row(state, log, block, log_index, tx_hash))
                continue
            if topics[0] == used_topic:  # GrantUsed(grantId indexed, count, used, quota): the contract's quota count
                grant = state.grants.get(int(topics[1], 16)) if log["address"].lower() == grants_contract else None
                if grant is not None:
                    grant.used_on_chain = int(log["data"][66:130], 16)
                    state.dirty_grants.add(grant.id)
                continue
            event = decoder.decode({"topics": [HexBytes(t) for t in topics], "data": HexBytes(log["data"]),
                                    "address": log["address"], "blockNumber": block, "logIndex": log_index,
                                    "transactionHash": HexBytes(tx_hash)})
            if event is None or sources.get(event.name) != event.address:
                continue
            pos = position(block, log_index)
            if event.name == "AuditBatchAppended":
                a = event.args
                oracle, dept = a["oracle"], int(a["deptId"])
                first_seq, count = int(a["firstSequence"]), int(a["count"])
                for row in pending:
                    if row[1] == oracle and first_seq <= u64(row[2]) < first_seq + count:
                        row[3] = dept
                writes.batches.append((pos, oracle, dept, s64(first_seq), count, bytes(a["head"]), block, tx_hash))
            elif event.name in _GRANT_KINDS:
                self._grant_event(state, event, pos, writes)
            elif event.name in _EVENT_SOURCES["DataCatalog"]:
                self._catalog_event(state, event, pos, writes)
            else:
                self._registry_event(state, event, pos, writes)
        writes.records.extend(pending)
        self._commit(chain, state, writes, previous, last_block)

    def _record_row(self, state: _SyncState, log: dict, block: int, log_index: int, tx_hash: str) -> list[Any]:
        topics, data = log["topics"], log["data"]
        rid = int(data[2:66], 16)
        meta = int(data[66:130], 16)
        oracle = self.checksum(f"{rid >> 64:040x}")
        requester = self.checksum(topics[2][26:])
        grant_id = int(topics[3], 16)
        grant = state.grants.get(grant_id)
        account = state.accounts.get(requester)
        outcome = (meta >> 96) & 0xFF
        if grant is not None and outcome == Outcome.SERVED:
            grant.served += 1
            state.dirty_grants.add(grant_id)
        oracle_account = state.accounts.get(oracle)
        return [
            position(block, log_index), oracle, s64(rid & (U64 - 1)),
            oracle_account[0] if oracle_account else 0,  # replaced by the batch's department
            requester, account[0] if account else 0,
            s64(int(topics[1], 16)), (meta >> 64) & 0xFFFFFFFF, s64(grant_id),
            hex(grant.fields) if grant is not None else None,
            outcome, (meta >> 104) & 0xFF, s64(meta & (U64 - 1)),
            bytes.fromhex(data[130:194]), bytes.fromhex(data[194:258]),
            block, 0, tx_hash, log_index,
        ]

    def _grant_event(self, state: _SyncState, event: Any, pos: int, writes: _RangeWrites) -> None:
        a = event.args
        grant_id = int(a["grantId"])
        kind = _GRANT_KINDS[event.name]
        actor = a.get("approver") or a.get("auditor") or a.get("by")
        data: dict[str, Any] = {}
        grant = state.grants.get(grant_id)
        if event.name == "GrantRequested":
            dataset = state.datasets.get(int(a["datasetId"]))
            grant = state.grants[grant_id] = _Grant(
                grant_id, int(a["datasetId"]), int(a["requesterDept"]), dataset[0] if dataset else 0,
                int(a["pinnedVersion"]), GrantStatus.REQUESTED, int(a["fields"]), int(a["unmaskedFields"]),
                int(a["duration"]), int(a["quota"]), 0, 0, 0, a["purpose"], event.block_number)
            data = {"dataset_id": grant.dataset_id, "requester_dept": grant.requester_dept, "fields": hex(grant.fields),
                    "unmasked_fields": hex(grant.unmasked_fields), "purpose": grant.purpose, "duration": grant.duration,
                    "quota": grant.quota, "pinned_version": grant.pinned_version}
        elif grant is None:
            data = {"unknown_grant": True}
        elif event.name == "GrantApproved":
            grant.fields, grant.unmasked_fields = int(a["fields"]), int(a["unmaskedFields"])
            grant.duration, grant.quota = int(a["duration"]), int(a["quota"])
            grant.status = GrantStatus.AWAITING_CO_APPROVAL  # GrantActivated follows in the same transaction unless secret
            data = {"fields": hex(grant.fields), "unmasked_fields": hex(grant.unmasked_fields),
                    "duration": grant.duration, "quota": grant.quota}
        elif event.name == "GrantActivated":
            grant.status, grant.expires_at, grant.activated_block = GrantStatus.ACTIVE, int(a["expiresAt"]), event.block_number
            data = {"expires_at": grant.expires_at}
        elif event.name in ("GrantRejected", "GrantRevoked", "GrantCancelled"):
            grant.status = {"GrantRejected": GrantStatus.REJECTED, "GrantRevoked": GrantStatus.REVOKED,
                            "GrantCancelled": GrantStatus.CANCELLED}[event.name]
            grant.closed_block = event.block_number
            if "reason" in a:
                data = {"reason": a["reason"]}
        if grant is not None:
            state.dirty_grants.add(grant_id)
        writes.grant_events.append((pos, s64(grant_id), kind, event.block_number, event.log_index, event.tx_hash, actor,
                                    json.dumps(data, sort_keys=True)))

    def _catalog_event(self, state: _SyncState, event: Any, pos: int, writes: _RangeWrites) -> None:
        a = event.args
        dataset_id = int(a["datasetId"])
        writes.catalog_events += 1
        if event.name == "DatasetRegistered":
            state.datasets[dataset_id] = [int(a["ownerDept"]), a["name"], json.dumps(list(a["fields"])),
                                          bytes(a["schemaHash"]), int(a["classification"]), int(a["updateFrequency"]),
                                          0, pos, None]
        elif event.name == "DatasetRetired" and dataset_id in state.datasets:
            state.datasets[dataset_id][6] = 1
            state.datasets[dataset_id][8] = pos
        elif event.name == "DatasetVersionPublished":
            writes.versions.append((s64(dataset_id), int(a["version"]), bytes(a["contentHash"]), bytes(a["merkleRoot"]),
                                    int(a["recordCount"]), pos, event.block_number, event.tx_hash))
        state.dirty_datasets.add(dataset_id)

    def _registry_event(self, state: _SyncState, event: Any, pos: int, writes: _RangeWrites) -> None:
        a = event.args
        dept_id = int(a.get("deptId", 0))
        account = a.get("account")
        role = 0
        data: dict[str, Any] = {}
        if event.name == "DepartmentAdmitted":
            code = bytes(a["code"]).rstrip(b"\x00").decode("utf-8", "replace")
            state.departments[dept_id] = [code, a["name"], int(bool(a["auditOffice"])), 1, event.block_number, None, ""]
            state.dirty_departments.add(dept_id)
            data = {"code": code, "name": a["name"], "audit_office": bool(a["auditOffice"])}
        elif event.name == "DepartmentRemoved" and dept_id in state.departments:
            state.departments[dept_id][3] = 0
            state.departments[dept_id][5] = event.block_number
            state.dirty_departments.add(dept_id)
        elif event.name == "OracleUrlChanged" and dept_id in state.departments:
            state.departments[dept_id][6] = a["url"]
            state.dirty_departments.add(dept_id)
            data = {"url": a["url"]}
        elif event.name == "MaxDecisionAgeChanged":  # the consortium's bound, replayed by the verifier
            data = {"previous": int(a["previous"]), "current": int(a["current"])}
        elif event.name == "AccountBound":
            state.accounts.setdefault(account, [0, 0])[0] = dept_id
            state.dirty_accounts.add(account)
        elif event.name == "AccountUnbound":
            entry = state.accounts.setdefault(account, [0, 0])
            entry[0] = 0
            state.dirty_accounts.add(account)
        elif event.name in ("RoleGranted", "RoleRevoked"):
            role = ROLE_BITS.get(bytes(a["role"]), 0)
            entry = state.accounts.setdefault(account, [0, 0])
            entry[1] = entry[1] | role if event.name == "RoleGranted" else entry[1] & ~role
            dept_id = entry[0]
            state.dirty_accounts.add(account)
            data = {"sender": a.get("sender")}
        writes.registry_events.append((pos, event.name, dept_id, account, role, event.block_number, event.log_index,
                                       event.tx_hash, json.dumps(data, sort_keys=True)))

    def _commit(self, chain: Any, state: _SyncState, writes: _RangeWrites, previous: int | None, last_block: int) -> None:
        db = self._db
        # Block times: every block holding an event, the decision block of every served record, the cursor.
        wanted = {row[15] for row in writes.records} | {row[6] for row in writes.batches}
        wanted |= {e[3] for e in writes.grant_events} | {e[5] for e in writes.registry_events}
        wanted |= {v[6] for v in writes.versions}
        # (a decision block after this range cannot be real: the verifier flags it, the index skips it)
        wanted |= {u64(row[12]) for row in writes.records if row[10] == Outcome.SERVED and u64(row[12]) <= last_block}
        wanted.add(last_block)
        known = self._known_blocks(wanted)
        missing = sorted(wanted - known)
        fetched = _block_headers(chain, missing) if missing else {}
        times = {n: t for n, (t, _) in fetched.items()}
        times.update(self._known_times({row[15] for row in writes.records} & known))
        daily: dict[tuple[str, str, int, int], int] = {}
        for row in writes.records:
            row[16] = times[row[15]]
            day = utc_day(row[16])
            for side, dept in (("requester", row[5]), ("provider", row[3])):
                key = (day, side, dept, row[10])
                daily[key] = daily.get(key, 0) + 1
        db.execute("BEGIN IMMEDIATE")
        try:
            (stored,) = db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone() or (None,)
            if (None if stored is None else int(stored)) != previous:
                raise AuditIndexError(f"another process indexed {self.path} up to block {stored} meanwhile; sync again")
            db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?, ?)",
                           [(n, t, h) for n, (t, h) in fetched.items()])
            db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", writes.records)
            db.executemany("INSERT INTO batches VALUES (?,?,?,?,?,?,?,?)", writes.batches)
            db.executemany("INSERT INTO grant_events VALUES (?,?,?,?,?,?,?,?)", writes.grant_events)
            db.executemany("INSERT INTO registry_events VALUES (?,?,?,?,?,?,?,?,?)", writes.registry_events)
            db.executemany("INSERT OR REPLACE INTO dataset_versions VALUES (?,?,?,?,?,?,?,?)", writes.versions)
            db.executemany("INSERT OR REPLACE INTO grants VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           [_signed_grant(state.grants[g].row()) for g in state.dirty_grants])
            db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?)",
                           [(a, *state.accounts[a]) for a in state.dirty_accounts])
            db.executemany("INSERT OR REPLACE INTO departments VALUES (?,?,?,?,?,?,?,?)",
                           [(d, *state.departments[d]) for d in state.dirty_departments])
            db.executemany("INSERT OR REPLACE INTO datasets VALUES (?,?,?,?,?,?,?,?,?,?)",
                           [(s64(d), *state.datasets[d]) for d in state.dirty_datasets if d in state.datasets])
            db.executemany("INSERT INTO daily VALUES (?,?,?,?,?) ON CONFLICT(day, side, dept_id, outcome)"
                           " DO UPDATE SET count = count + excluded.count", [(*k, v) for k, v in daily.items()])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (str(last_block),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        state.dirty_accounts.clear()
        state.dirty_departments.clear()
        state.dirty_grants.clear()
        state.dirty_datasets.clear()

    def _known_blocks(self, numbers: set[int]) -> set[int]:
        return set(self._known_times(numbers))

    def _known_times(self, numbers: set[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        ordered = sorted(numbers)
        for i in range(0, len(ordered), 500):
            chunk = ordered[i:i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self._db.execute(f"SELECT number, timestamp FROM blocks WHERE number IN ({marks})", chunk).fetchall())
        return out


def _signed_grant(row: tuple) -> tuple:
    return (s64(row[0]), s64(row[1]), *row[2:])


def _rpc(chain: Any, method: str, params: list[Any]) -> Any:
    try:
        return chain.rpc.call(method, params)
    except RpcErrorAnswer as exc:
        message = exc.error.get("message", exc.error) if isinstance(exc.error, dict) else exc.error
        raise AuditIndexError(f"{method} failed on {chain.url}: {message}") from None


def _block_headers(chain: Any, numbers: list[int]) -> dict[int, tuple[int, str]]:
    """``{number: (timestamp, hash)}`` for ``numbers``, asked in batched JSON-RPC requests."""
    out: dict[int, tuple[int, str]] = {}
    for i in range(0, len(numbers), BLOCK_BATCH):
        chunk = numbers[i:i + BLOCK_BATCH]
        try:
            blocks = chain.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
        except RpcErrorAnswer as exc:  # a node that refuses batches answers one error object
            raise AuditIndexError(f"eth_getBlockByNumber (batched) failed on {chain.url}: {exc.error}") from None
        for block in blocks:
            if not block:
                raise AuditIndexError(f"block header missing from {chain.url}: no such block")
            out[int(block["number"], 16)] = (int(block["timestamp"], 16), block["hash"])
    missing = set(numbers) - set(out)
    if missing:
        raise AuditIndexError(f"{chain.url} did not return blocks {sorted(missing)[:5]}")
    return out

