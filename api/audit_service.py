"""The audit side of the API service: the index it reads, who may see what, the last verification.

Shared by the JSON routes (``api.routes.audit``) and the dashboard (``api.dashboard``):

* :class:`AuditService` holds the service's :class:`auditing.index.AuditIndex` (the SQLite file
  ``settings.index_path``, opened on first use), syncs it from the chain on demand (one sync at a
  time), runs :func:`auditing.verification.verify_audit_trail` on it (after a sync, so the report
  covers the chain up to the moment it was asked) and keeps the last report for the dashboard's
  verification status and record views. The index is fed only by ``POST /v1/audit/sync`` (or the
  dashboard's button, or a verification): the pages show how far it is indexed, so staleness is
  visible rather than hidden behind a background thread.
* :class:`AuditViewer` is who may look: an **auditor** (the AUDITOR role in an audit office) sees
  everything; an **operator** sees only what its own department is party to (records it asked for
  or whose data they are about, grants it holds or gave, its own daily counts). Anyone else is
  refused (403), so is a caller of no active department (``api.auth.current_caller``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from api.auth import Caller, CurrentCaller
from api.deps import ApiContext, ContextDep
from api.errors import Forbidden, ServiceUnavailable, UnprocessableContent
from auditing.index import (
    AuditIndex,
    AuditIndexError,
    AuditQueryError,
    IndexedRecord,
    SyncResult,
)
from ledger.contracts.catalog import Classification
from ledger.contracts.registry import Role

if TYPE_CHECKING:
    from auditing.report import VerificationReport, Violation

log = logging.getLogger("govshare.api")

__all__ = [
    "AuditService",
    "AuditServiceDep",
    "AuditViewer",
    "AuditViewerDep",
    "RecordVerification",
    "audit_service",
    "audit_viewer",
    "classification_name",
    "iso",
    "parse_time",
    "viewer_for",
]


def parse_time(value: str | int | None, what: str) -> int | None:
    """Unix seconds from unix seconds, an ISO 8601 date (midnight UTC) or date-time (UTC if no zone).

    Raises :class:`~api.errors.UnprocessableContent` (422) naming ``what`` for anything else."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            if text.isdigit():
                seconds = int(text)
            elif len(text) == 10:
                day = date.fromisoformat(text)
                seconds = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
            else:
                moment = datetime.fromisoformat(text)  # Python 3.11 reads a trailing Z
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                seconds = int(moment.timestamp())
        except ValueError:
            raise UnprocessableContent(f"{what} must be unix seconds or an ISO 8601 date or date-time, got {text!r}",
                                       slug="invalid-time", title="Invalid time") from None
    if not 0 <= seconds < 1 << 63:
        raise UnprocessableContent(f"{what} is out of range: {value!r}", slug="invalid-time", title="Invalid time")
    return seconds


def iso(seconds: int | None) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS`` UTC ('' for None)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def classification_name(level: int) -> str:
    """A dataset's classification level by name (``internal``...)."""
    try:
        return Classification(level).name.lower()
    except ValueError:
        return f"level {level}"


@dataclass(frozen=True)
class AuditViewer:
    """A caller allowed to read the audit trail: an auditor (everything) or an operator (its own part)."""

    caller: Caller
    auditor: bool

    @property
    def dept_id(self) -> int:
        return self.caller.department.id

    @property
    def role(self) -> str:
        return "auditor" if self.auditor else "operator"

    def may_see_record(self, record: IndexedRecord) -> bool:
        """An auditor sees every record; an operator those its department asked for or provided."""
        return self.auditor or self.dept_id in (record.requester_dept, record.provider_dept)

    def may_see_grant(self, requester_dept: int, owner_dept: int) -> bool:
        return self.auditor or self.dept_id in (requester_dept, owner_dept)

    def check_record_scope(self, requester_dept: int | None, provider_dept: int | None) -> None:
        """403 unless an operator's search names its own department as requester or provider."""
        if self.auditor or self.dept_id in (requester_dept, provider_dept):
            return
        code = self.caller.department.code
        raise Forbidden(
            f"an operator of {code} sees only records {code} is party to: search with requester_dept={code} "
            f"(its own accesses) or provider_dept={code} (accesses to its data); auditors see every record",
            slug="out-of-scope", title="Outside the caller's audit scope", department=code)

    def require_auditor(self, action: str) -> None:
        if not self.auditor:
            raise Forbidden(f"only an auditor of an audit office may {action}; {self.caller.account} is an operator "
                            f"of {self.caller.department.code}", slug="wrong-role", title="Wrong role", role="AUDITOR")


def viewer_for(caller: Caller, context: ApiContext) -> AuditViewer:
    """The caller's audit view (403 for an account that is neither an auditor nor an operator)."""
    registry = context.consortium().registry
    dept = caller.department
    if dept.audit_office and registry.department_with_role(Role.AUDITOR, caller.account) == dept.id:
        return AuditViewer(caller, auditor=True)
    if registry.department_with_role(Role.OPERATOR, caller.account) == dept.id:
        return AuditViewer(caller, auditor=False)
    raise Forbidden(f"the audit trail is open to auditors of an audit office and to departments' operators; "
                    f"{caller.account} of {dept.code} is neither", slug="wrong-role", title="Wrong role",
                    account=caller.account)


def audit_viewer(caller: CurrentCaller, context: ContextDep) -> AuditViewer:
    """Dependency: the authenticated caller as an :class:`AuditViewer`."""
    return viewer_for(caller, context)


@dataclass(frozen=True)
class RecordVerification:
    """What the last verification says about one record."""

    status: str  # verified, violations, not_covered (anchored after the report's last block), not_verified
    report_generated_at: str | None
    report_to_block: int | None
    violations: tuple[Violation, ...]  # naming this record, or its oracle without naming a record

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "report_generated_at": self.report_generated_at,
            "report_to_block": self.report_to_block,
            "violations": [_violation_dict(v) for v in self.violations],
        }


def _violation_dict(v: Violation) -> dict[str, Any]:
    return {"check": v.check, "code": v.code, "message": v.message,
            "record_id": None if v.record_id is None else hex(v.record_id), "oracle": v.oracle,
            "sequence": v.sequence, "block": v.block, "tx_hash": v.tx_hash}


class AuditService:
    """The service's audit index, its syncing, and the last verification report (thread-safe)."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self._open_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._index: AuditIndex | None = None
        self._last_report: VerificationReport | None = None
        self._last_sync: SyncResult | None = None

    @property
    def index(self) -> AuditIndex:
        """The index (opened on first use); 503 when the service is configured without one."""
        if self._index is None:
            with self._open_lock:
                if self._index is None:
                    path = self.context.settings.index_path
                    if path is None:
                        raise ServiceUnavailable("this service keeps no audit index: set index_path in its settings",
                                                 slug="no-audit-index", title="No audit index")
                    try:
                        self._index = AuditIndex(path)
                    except AuditIndexError as exc:
                        raise _unusable(exc) from None
        return self._index

    def sync(self) -> SyncResult:
        """Index the chain's new events (one sync at a time; a second caller waits and then syncs
        what is left, usually nothing)."""
        consortium = self.context.consortium()
        with self._sync_lock:
            try:
                result = self.index.sync(consortium)
            except AuditQueryError as exc:
                raise UnprocessableContent(str(exc), slug="invalid-filter", title="Invalid request") from None
            except AuditIndexError as exc:
                raise _unusable(exc) from None
            self._last_sync = result
        return result

    @property
    def last_sync(self) -> SyncResult | None:
        return self._last_sync

    def verify(self) -> VerificationReport:
        """Sync, then verify the whole indexed trail against the chain; the report is kept."""
        from auditing.verification import verify_audit_trail

        consortium = self.context.consortium()
        with self._sync_lock:
            try:
                self._last_sync = self.index.sync(consortium)
                report = verify_audit_trail(self.index, consortium)
            except AuditIndexError as exc:
                raise _unusable(exc) from None
            self._last_report = report
        return report

    @property
    def last_report(self) -> VerificationReport | None:
        return self._last_report

    def record_verification(self, record: IndexedRecord) -> RecordVerification:
        """The last report's word on ``record``."""
        report = self._last_report
        if report is None:
            return RecordVerification("not_verified", None, None, ())
        mine = tuple(v for v in report.violations
                     if v.record_id == record.record_id
                     or (v.record_id is None and v.oracle is not None and v.oracle.lower() == record.oracle.lower()))
        to_block = report.scope.to_block
        if mine:
            status = "violations"
        elif to_block is not None and record.block_number > to_block:
            status = "not_covered"
        else:
            status = "verified"
        return RecordVerification(status, report.generated_at or None, to_block, mine)

    def search(self, viewer: AuditViewer, **filters: Any) -> Any:
        """``AuditIndex.search`` within the viewer's scope (bad filters, unknown department codes: 422)."""
        index = self.index
        try:
            filters["requester_dept"] = index.department_id(filters.get("requester_dept"), "requester_dept")
            filters["provider_dept"] = index.department_id(filters.get("provider_dept"), "provider_dept")
            viewer.check_record_scope(filters["requester_dept"], filters["provider_dept"])
            return index.search(**filters)
        except AuditQueryError as exc:
            raise UnprocessableContent(str(exc), slug="invalid-filter", title="Invalid search filter") from None

    def close(self) -> None:
        if self._index is not None:
            self._index.close()


def _unusable(exc: AuditIndexError) -> ServiceUnavailable:
    """503 for an index file the service cannot use; the detail (it names the file) goes to the log."""
    log.error("audit index unusable: %s", exc)
    return ServiceUnavailable("the service's audit index cannot be used (another deployment's or chain's, or damaged); "
                              "see the service log", slug="audit-index-unusable", title="Audit index unusable")


_service_lock = threading.Lock()


def audit_service(request: Request) -> AuditService:
    """Dependency: the app's :class:`AuditService` (created on first use)."""
    state = request.app.state
    service = getattr(state, "audit_service", None)
    if service is None:
        with _service_lock:
            service = getattr(state, "audit_service", None)
            if service is None:
                service = state.audit_service = AuditService(state.context)
    return service


AuditServiceDep = Annotated[AuditService, Depends(audit_service)]
AuditViewerDep = Annotated[AuditViewer, Depends(audit_viewer)]
