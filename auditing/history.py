"""The registry, catalog and grant histories of an index, replayable at any chain position: what
``AccessGrants.checkAccess`` answered at a past block, from the events alone (a test compares both
at the same blocks)."""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from auditing.index import OPERATOR, ORACLE, AuditIndex, end_of_block
from ledger.contracts.grants import AccessReason, GrantStatus

_U64 = 1 << 64


class _Timeline:
    """Values over chain positions: ``at(p)`` is the value after every change at a position <= p."""

    __slots__ = ("initial", "positions", "values")

    def __init__(self, initial: Any) -> None:
        self.positions: list[int] = []
        self.values: list[Any] = []
        self.initial = initial

    def add(self, pos: int, value: Any) -> None:
        self.positions.append(pos)
        self.values.append(value)

    def index(self, pos: int) -> int:
        return bisect_right(self.positions, pos) - 1

    def at(self, pos: int) -> Any:
        i = bisect_right(self.positions, pos) - 1
        return self.values[i] if i >= 0 else self.initial


@dataclass(frozen=True)
class _GrantState:
    dataset_id: int
    requester_dept: int
    owner_dept: int
    pinned_version: int
    status: int
    quota: int
    expires_at: int


class AccessHistory:
    """The registry, catalog and grant histories of an index, replayable at any chain position:
    what ``checkAccess`` answered at a past block (:meth:`check_access`), who held which role and
    department (:meth:`account`), which departments were members (:meth:`active`), who owned a
    dataset and which version was the latest. Built once per verification from the index."""

    def __init__(self, index: AuditIndex) -> None:
        self.accounts: dict[str, _Timeline] = {}
        self.dept_active: dict[int, _Timeline] = {}
        #: the consortium's ``maxDecisionAgeBlocks`` over chain positions (None before the registry's deployment)
        self.max_decision_age = _Timeline(None)
        current: dict[str, tuple[int, int]] = {}
        for pos, kind, dept_id, account, role, data in index.raw(
                "SELECT pos, kind, dept_id, account, role, data FROM registry_events ORDER BY pos"):
            if kind == "MaxDecisionAgeChanged":
                self.max_decision_age.add(pos, int(json.loads(data)["current"]))
            elif kind == "DepartmentAdmitted":
                self.dept_active.setdefault(dept_id, _Timeline(False)).add(pos, True)
            elif kind == "DepartmentRemoved":
                self.dept_active.setdefault(dept_id, _Timeline(False)).add(pos, False)
            elif kind in ("AccountBound", "AccountUnbound", "RoleGranted", "RoleRevoked"):
                dept, roles = current.get(account, (0, 0))
                if kind == "AccountBound":
                    dept = dept_id
                elif kind == "AccountUnbound":
                    dept = 0
                elif kind == "RoleGranted":
                    roles |= role
                else:
                    roles &= ~role
                current[account] = (dept, roles)
                self.accounts.setdefault(account, _Timeline((0, 0))).add(pos, (dept, roles))
        self.oracle_accounts = {a for a, t in self.accounts.items() if any(r & ORACLE for _, r in t.values)}
        self.dataset_owner: dict[int, tuple[int, int]] = {}  # id -> (owner, registered pos)
        self.dataset_retired: dict[int, int] = {}  # id -> retired pos
        for d, owner, registered, retired in index.raw("SELECT id, owner_dept, registered_pos, retired_pos FROM datasets"):
            d = d + _U64 if d < 0 else d
            self.dataset_owner[d] = (owner, registered)
            if retired is not None:
                self.dataset_retired[d] = retired
        self.versions: dict[int, list[int]] = {}  # id -> positions of versions 1, 2, ...
        for d, _version, pos in index.raw("SELECT dataset_id, version, pos FROM dataset_versions ORDER BY dataset_id, version"):
            self.versions.setdefault(d + _U64 if d < 0 else d, []).append(pos)
        for positions in self.versions.values():
            positions.sort()
        self.grants: dict[int, _Timeline] = {}
        for grant_id, kind, pos, data in index.raw("SELECT grant_id, kind, pos, data FROM grant_events ORDER BY pos"):
            grant_id = grant_id + _U64 if grant_id < 0 else grant_id
            timeline = self.grants.setdefault(grant_id, _Timeline(None))
            state: _GrantState | None = timeline.values[-1] if timeline.values else None
            details = json.loads(data)
            if kind == "requested":
                owner = self.dataset_owner.get(details["dataset_id"], (0, 0))[0]
                state = _GrantState(details["dataset_id"], details["requester_dept"], owner, details["pinned_version"],
                                    GrantStatus.REQUESTED, details["quota"], 0)
            elif state is None or kind == "used":
                continue
            elif kind == "approved":
                state = _GrantState(state.dataset_id, state.requester_dept, state.owner_dept, state.pinned_version,
                                    GrantStatus.AWAITING_CO_APPROVAL, details["quota"], 0)
            elif kind == "activated":
                state = _GrantState(state.dataset_id, state.requester_dept, state.owner_dept, state.pinned_version,
                                    GrantStatus.ACTIVE, state.quota, details["expires_at"])
            elif kind in ("rejected", "revoked", "cancelled"):
                status = {"rejected": GrantStatus.REJECTED, "revoked": GrantStatus.REVOKED,
                          "cancelled": GrantStatus.CANCELLED}[kind]
                state = _GrantState(state.dataset_id, state.requester_dept, state.owner_dept, state.pinned_version,
                                    status, state.quota, state.expires_at)
            else:
                continue
            timeline.add(pos, state)
        self.block_times: dict[int, int] = dict(index.raw("SELECT number, timestamp FROM blocks"))

    def account(self, account: str, pos: int) -> tuple[int, int]:
        timeline = self.accounts.get(account)
        return timeline.at(pos) if timeline is not None else (0, 0)

    def active(self, dept: int, pos: int) -> bool:
        timeline = self.dept_active.get(dept)
        return bool(timeline.at(pos)) if timeline is not None else False

    def owner(self, dataset_id: int, pos: int) -> int:
        owner, registered = self.dataset_owner.get(dataset_id, (0, 0))
        return owner if owner and registered <= pos else 0

    def retired(self, dataset_id: int, pos: int) -> bool:
        retired = self.dataset_retired.get(dataset_id)
        return retired is not None and retired <= pos

    def latest_version(self, dataset_id: int, pos: int) -> int:
        return bisect_right(self.versions.get(dataset_id, []), pos)

    def check_access(self, requester: str, dataset_id: int, grant_id: int, block: int,
                     block_time: int | None) -> tuple[int, int, _GrantState | None]:
        """What ``AccessGrants.checkAccess(requester, grant's requesting department, dataset_id, fields,
        grant_id)`` answered at ``block`` (whose timestamp is ``block_time``), for fields within the
        grant's and the quota aside (the verifier counts the quota itself): ``(AccessReason, version,
        grant state)``. The requesting department is the grant's (the best case for the oracle: a
        record does not carry the department the requester claimed)."""
        at = end_of_block(block)
        timeline = self.grants.get(grant_id)
        grant: _GrantState | None = timeline.at(at) if timeline is not None else None
        if grant is None:
            return AccessReason.UNKNOWN_GRANT, 0, None
        if not self.owner(dataset_id, at):
            return AccessReason.UNKNOWN_DATASET, 0, grant
        if grant.dataset_id != dataset_id:
            return AccessReason.DATASET_MISMATCH, 0, grant
        if not self.active(grant.requester_dept, at):
            return AccessReason.REQUESTER_NOT_MEMBER, 0, grant
        if not self.active(grant.owner_dept, at):
            return AccessReason.OWNER_NOT_MEMBER, 0, grant
        dept, roles = self.account(requester, at)
        if dept != grant.requester_dept or not roles & OPERATOR:
            return AccessReason.ACCOUNT_NOT_OPERATOR, 0, grant
        status = grant.status
        if status == GrantStatus.REQUESTED:
            return AccessReason.NOT_APPROVED, 0, grant
        if status == GrantStatus.AWAITING_CO_APPROVAL:
            return AccessReason.AWAITING_CO_APPROVAL, 0, grant
        if status in (GrantStatus.REJECTED, GrantStatus.CANCELLED):
            return AccessReason.REJECTED, 0, grant
        if status == GrantStatus.REVOKED:
            return AccessReason.REVOKED, 0, grant
        if block_time is None or block_time >= grant.expires_at:
            return AccessReason.EXPIRED, 0, grant
        if self.retired(dataset_id, at):
            return AccessReason.DATASET_RETIRED, 0, grant
        version = grant.pinned_version or self.latest_version(dataset_id, at)
        if version == 0:
            return AccessReason.VERSION_UNAVAILABLE, 0, grant
        return AccessReason.GRANTED, version, grant

