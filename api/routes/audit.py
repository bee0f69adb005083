"""The audit trail over HTTP: search records, one record, daily counts, sync the index, verify.

``GET  /v1/audit/records``          search (dataset, requester or provider department, requester
                                    account, grant, outcome, ``from``/``to`` time), newest first, with
                                    keyset (``cursor``) or offset pagination
``GET  /v1/audit/records/{id}``     one record: transaction, block, hashes, grant, dataset, and what
                                    the last verification said about it
``GET  /v1/audit/daily``            accesses per UTC day per department (served, denied, source failure)
``GET  /v1/audit/status``           how far the index is synced; the last verification's verdict
``POST /v1/audit/sync``             index the chain's new events now
``POST /v1/audit/verify``           sync, then :func:`auditing.verification.verify_audit_trail`; the JSON
                                    report (``?format=html``: the report an audit office files)

Auditors (AUDITOR role in an audit office) see everything and may verify; operators see what their
own department is party to (``api.audit_service``). Everything else is a problem (401/403/404/422/503).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from api.audit_service import AuditServiceDep, AuditViewerDep, iso, parse_time
from api.errors import Forbidden, NotFound, UnprocessableContent
from api.schemas import problem_responses
from auditing.index import AuditQueryError, IndexedRecord

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=problem_responses(401, 403, 503))

_TIME_HELP = "unix seconds, or an ISO 8601 date (midnight UTC) or date-time"


class OutcomeName(str, Enum):
    """A record's outcome."""

    served = "served"
    denied = "denied"
    source_failure = "source_failure"


class ReportFormat(str, Enum):
    json = "json"
    html = "html"


class DepartmentCode(BaseModel):
    """A department as the index knows it (id 0: none, e.g. a requester of no department)."""

    id: int
    code: str


class AuditRecordPublic(BaseModel):
    """One anchored audit record (hashes and ids as 0x hex; times as unix seconds and ISO 8601 UTC)."""

    record_id: str = Field(description="oracle << 64 | sequence, as 0x hex")
    oracle: str
    sequence: int
    provider_dept: DepartmentCode
    requester: str
    requester_dept: DepartmentCode
    dataset_id: int
    dataset_name: str | None
    dataset_version: int
    grant_id: int
    fields: list[str] | None = Field(description="the fields the grant allowed when the record was anchored")
    outcome: OutcomeName
    reason: int
    reason_name: str
    checked_at_block: int
    request_hash: str
    response_hash: str
    block_number: int
    block_time: int
    block_time_iso: str
    tx_hash: str
    log_index: int


class AuditRecordsPublic(BaseModel):
    """A page of records, newest first; ``next_cursor`` continues with older ones (None: last page)."""

    records: list[AuditRecordPublic]
    total: int = Field(description="records matching the filters, over every page")
    limit: int
    next_cursor: str | None


class GrantSummaryPublic(BaseModel):
    id: int
    status: str
    dataset_id: int
    requester_dept: DepartmentCode
    owner_dept: DepartmentCode
    fields: list[str]
    quota: int
    used: int
    expires_at: int
    purpose: str


class ViolationPublic(BaseModel):
    check: str
    code: str
    message: str
    record_id: str | None
    oracle: str | None
    sequence: int | None
    block: int | None
    tx_hash: str | None


class RecordVerificationPublic(BaseModel):
    """``status``: verified (in the last report's scope, no violation), violations (named by it),
    not_covered (anchored after its last block), not_verified (no verification run yet)."""

    status: str
    report_generated_at: str | None
    report_to_block: int | None
    violations: list[ViolationPublic]


class AuditRecordDetail(AuditRecordPublic):
    """A record with its grant and the last verification's word on it."""

    grant: GrantSummaryPublic | None
    verification: RecordVerificationPublic


class DailyCountPublic(BaseModel):
    day: str
    dept: DepartmentCode
    served: int
    denied: int
    source_failure: int
    total: int


class DailyCountsPublic(BaseModel):
    by: str
    days: list[DailyCountPublic]


class SyncPublic(BaseModel):
    from_block: int
    to_block: int
    records: int
    grant_events: int
    registry_events: int
    catalog_events: int
    seconds: float


class VerificationSummary(BaseModel):
    ok: bool
    generated_at: str
    to_block: int | None
    records: int
    violations: int


class AuditStatusPublic(BaseModel):
    chain_id: int | None
    synced_block: int | None = Field(description="the last block fully indexed (None: never synced)")
    synced_block_time: int | None
    records: int
    oracles: int
    grants: int
    last_verification: VerificationSummary | None


# ---------------------------------------------------------------- helpers


class _Names:
    """Department codes and dataset names and fields, read from the index once per request."""

    def __init__(self, service: Any) -> None:
        index = service.index
        self.departments = {d.id: d.code for d in index.departments()}
        self.datasets = {d.id: d for d in index.datasets()}

    def dept(self, dept_id: int) -> DepartmentCode:
        return DepartmentCode(id=dept_id, code=self.departments.get(dept_id, "—" if dept_id == 0 else f"#{dept_id}"))

    def fields(self, dataset_id: int, mask: int | None) -> list[str] | None:
        dataset = self.datasets.get(dataset_id)
        if mask is None or dataset is None:
            return None
        return [name for i, name in enumerate(dataset.fields) if mask >> i & 1]


def _public(record: IndexedRecord, names: _Names) -> dict[str, Any]:
    data = record.to_dict()
    dataset = names.datasets.get(record.dataset_id)
    data.update(
        provider_dept=names.dept(record.provider_dept),
        requester_dept=names.dept(record.requester_dept),
        dataset_name=dataset.name if dataset is not None else None,
        fields=names.fields(record.dataset_id, record.field_mask),
        block_time_iso=iso(record.block_time),
    )
    return data


def _record_id(value: str) -> int:
    try:
        number = int(value.strip(), 0)
    except ValueError:
        raise UnprocessableContent(f"a record id is an integer (decimal or 0x hex), got {value!r}",
                                   slug="invalid-record-id", title="Invalid record id") from None
    if not 0 < number < 1 << 224:
        raise UnprocessableContent(f"record id out of range: {value!r}", slug="invalid-record-id",
                                   title="Invalid record id")
    return number


# ---------------------------------------------------------------- routes


@router.get("/records", response_model=AuditRecordsPublic, summary="Search audit records",
            responses=problem_responses(422))
def search_records(
    viewer: AuditViewerDep,
    service: AuditServiceDep,
    dataset_id: Annotated[int | None, Query(ge=1, lt=1 << 64, description="only records about this dataset")] = None,
    requester_dept: Annotated[str | None, Query(max_length=64, description="requesting department (id or code)")] = None,
    provider_dept: Annotated[str | None, Query(max_length=64, description="providing department (id or code)")] = None,
    requester: Annotated[str | None, Query(max_length=42, description="requesting account")] = None,
    grant_id: Annotated[int | None, Query(ge=1, lt=1 << 64, description="only records under this grant")] = None,
    outcome: Annotated[OutcomeName | None, Query(description="served, denied or source_failure")] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description=f"anchored at or after ({_TIME_HELP})")] = None,
    to: Annotated[str | None, Query(max_length=40, description=f"anchored before ({_TIME_HELP})")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")] = None,
    offset: Annotated[int | None, Query(ge=0, le=10_000_000, description="skip this many (instead of cursor)")] = None,
) -> AuditRecordsPublic:
    """Records matching every filter given, newest first. An operator must name its own department as
    ``requester_dept`` or ``provider_dept``; an auditor may search everything."""
    page = service.search(
        viewer, dataset_id=dataset_id, requester_dept=requester_dept, provider_dept=provider_dept,
        requester=requester, grant_id=grant_id, outcome=outcome.value if outcome else None,
        since=parse_time(from_, "from"), until=parse_time(to, "to"), limit=limit, cursor=cursor, offset=offset)
    names = _Names(service)
    return AuditRecordsPublic(records=[AuditRecordPublic.model_validate(_public(r, names)) for r in page.records],
                              total=page.total, limit=limit, next_cursor=page.next_cursor)


@router.get("/records/{record_id}", response_model=AuditRecordDetail, summary="One audit record",
            responses=problem_responses(404, 422))
def get_record(
    record_id: Annotated[str, Path(max_length=80, description="the record id, decimal or 0x hex")],
    viewer: AuditViewerDep,
    service: AuditServiceDep,
) -> AuditRecordDetail:
    """A record with its transaction, block, hashes, grant and verification status."""
    rid = _record_id(record_id)
    try:
        record = service.index.record(rid)
    except AuditQueryError as exc:
        raise UnprocessableContent(str(exc), slug="invalid-record-id", title="Invalid record id") from None
    if record is None:
        raise NotFound(f"no record {hex(rid)} in the audit index (synced to block {service.index.cursor})",
                       slug="unknown-record", title="Unknown record")
    if not viewer.may_see_record(record):
        raise Forbidden(f"record {hex(rid)} is not about {viewer.caller.department.code}; operators see only "
                        "records their department is party to", slug="out-of-scope",
                        title="Outside the caller's audit scope")
    names = _Names(service)
    data = _public(record, names)
    grant = service.index.grant(record.grant_id) if record.grant_id else None
    data["grant"] = None if grant is None else GrantSummaryPublic(
        id=grant.id, status=grant.status, dataset_id=grant.dataset_id, requester_dept=names.dept(grant.requester_dept),
        owner_dept=names.dept(grant.owner_dept), fields=names.fields(grant.dataset_id, grant.fields) or [],
        quota=grant.quota, used=grant.used, expires_at=grant.expires_at, purpose=grant.purpose)
    data["verification"] = service.record_verification(record).to_dict()
    return AuditRecordDetail.model_validate(data)


@router.get("/daily", response_model=DailyCountsPublic, summary="Accesses per day per department",
            responses=problem_responses(422))
def daily_counts(
    viewer: AuditViewerDep,
    service: AuditServiceDep,
    by: Annotated[str, Query(pattern="^(requester|provider)$", description="requester (who asked) or provider (whose data)")] = "requester",
    from_: Annotated[str | None, Query(alias="from", max_length=40, description=_TIME_HELP)] = None,
    to: Annotated[str | None, Query(max_length=40, description=_TIME_HELP)] = None,
) -> DailyCountsPublic:
    """Served, denied and failed accesses per UTC day per department (an operator: its own only)."""
    try:
        counts = service.index.daily_counts(by=by, since=parse_time(from_, "from"), until=parse_time(to, "to"))
    except AuditQueryError as exc:
        raise UnprocessableContent(str(exc), slug="invalid-filter", title="Invalid filter") from None
    names = _Names(service)
    return DailyCountsPublic(by=by, days=[
        DailyCountPublic(day=c.day, dept=names.dept(c.dept_id), served=c.served, denied=c.denied,
                         source_failure=c.source_failure, total=c.total)
        for c in counts if viewer.auditor or c.dept_id == viewer.dept_id])


@router.get("/status", response_model=AuditStatusPublic, summary="Index and verification status")
def status(viewer: AuditViewerDep, service: AuditServiceDep) -> AuditStatusPublic:
    """How far the index is synced, and the last verification's verdict (if any ran since the start)."""
    return AuditStatusPublic(**_status(service))


def _status(service: Any) -> dict[str, Any]:
    index_status = service.index.status()
    report = service.last_report
    summary = None if report is None else VerificationSummary(
        ok=report.ok, generated_at=report.generated_at, to_block=report.scope.to_block,
        records=report.scope.records, violations=len(report.violations))
    return {"chain_id": index_status.chain_id, "synced_block": index_status.cursor,
            "synced_block_time": index_status.cursor_time, "records": index_status.records,
            "oracles": index_status.oracles, "grants": index_status.grants, "last_verification": summary}


@router.post("/sync", response_model=SyncPublic, summary="Index the chain's new events now")
def sync(viewer: AuditViewerDep, service: AuditServiceDep) -> SyncPublic:
    """Read the events mined since the last sync into the index (idempotent; one sync at a time)."""
    result = service.sync()
    return SyncPublic(from_block=result.from_block, to_block=result.to_block, records=result.records,
                      grant_events=result.grant_events, registry_events=result.registry_events,
                      catalog_events=result.catalog_events, seconds=round(result.seconds, 3))


@router.post("/verify", summary="Verify the audit trail (auditors)",
             responses={200: {"description": "the verification report (ok true or false)",
                              "content": {"application/json": {}, "text/html": {}}}})
def verify(
    viewer: AuditViewerDep,
    service: AuditServiceDep,
    format: Annotated[ReportFormat, Query(description="json (default) or html: the report an audit office files")] = ReportFormat.json,
) -> Any:
    """Sync the index, then verify the whole trail from the chain: sequences, hash chains against the
    contract's heads, each served decision replayed at its block, record writers' roles. Answered 200
    whether or not violations were found: the report's ``ok`` says."""
    viewer.require_auditor("verify the audit trail")
    report = service.verify()
    if format is ReportFormat.html:
        from auditing.html_report import render_verification_report

        return HTMLResponse(render_verification_report(report))
    return JSONResponse(report.to_dict())
