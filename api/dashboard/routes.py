"""The auditors' dashboard: server-rendered pages under ``/dashboard`` (Chinese and English labels).

Pages: **overview** (accesses per day per department as an inline SVG chart, denials, verification
status with the last block verified, recent denials), **datasets** (owner, level, versions),
**grants** (state, expiry, quota used), **records** (a search form, a table, pages) and a **record
view** (its transaction, block, hashes, grant and verification result). Read from the service's
audit index (``api.audit_service``), which the overview's button (or ``POST /v1/audit/sync``) feeds.

Sign-in: the login form takes the same bearer token as the API (``settings.tokens``, ``tokens_file``);
a session ends as soon as its token is revoked or expires (checked at every page). The service
then keeps a server-side session (a random id in an ``HttpOnly``, ``SameSite=Strict`` cookie,
``Secure`` over HTTPS, 8 hours) and re-checks the account's membership and role on chain at every
page, so a removed department loses the dashboard at once. Auditors of an audit office see
everything; a department's operators see what their department is party to; anyone else is refused.
Every page is read-only except three POST forms (sync, verify, sign out), which also check
``Origin``. Pages carry a strict Content-Security-Policy: no script at all, styles only from the
service itself, nothing from any other host.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from api.audit_service import AuditServiceDep, AuditViewer, classification_name, parse_time, viewer_for
from api.auth import Authentication, current_caller
from api.dashboard.charts import stacked_bars
from api.dashboard.rendering import (
    GRANT_STATE_LABELS,
    OUTCOME_LABELS,
    SECURITY_HEADERS,
    error_page,
    int_query_param,
    page,
    query_param,
    render,
    safe_next,
    same_origin,
)
from api.dashboard.sessions import COOKIE, SESSION_SECONDS, sessions_of
from api.deps import ContextDep
from api.errors import ApiError, Forbidden, NotFound
from api.tokens import token_digest
from auditing.index import AuditQueryError
from ledger.errors import ChainUnavailable

__all__ = ["router"]

PAGE_SIZE = 20
CHART_DAYS = 30
CHART_MIN_DAYS = 14
_STYLESHEET = Path(__file__).resolve().parent.parent / "static" / "dashboard.css"

router = APIRouter(prefix="/dashboard", include_in_schema=False)


# ---------------------------------------------------------------- sign-in


@router.get("/static/dashboard.css", name="dashboard_stylesheet")
def stylesheet() -> FileResponse:
    return FileResponse(_STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/login", name="dashboard_login_form")
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", next=safe_next(request.query_params.get("next")) or "", error=None)


@router.post("/login", name="dashboard_login")
def login(request: Request, context: ContextDep, token: str = Form(default="", max_length=1000),
          next: str = Form(default="", max_length=2000)) -> Response:
    """Check the token, then the account's membership and role; open a session."""
    target = safe_next(next) or str(request.url_for("dashboard_overview").path)

    def refuse(status: int, message: str) -> HTMLResponse:
        return render(request, "login.html", status=status, next=safe_next(next) or "", error=message)

    if not same_origin(request):
        return refuse(403, "请从本服务的登录页登录 Sign in from this service's own login page.")
    account = context.tokens.account_for(token.strip()) if token.strip() else None
    if account is None:
        return refuse(401, "令牌无效 The token is not valid.")
    try:
        viewer_for(current_caller(Authentication(account, "token"), context), context)
    except Forbidden as exc:
        return refuse(403, f"无权访问 Not allowed: {exc.detail}")
    except ChainUnavailable:
        return refuse(503, "链不可达，请稍后再试 The chain cannot be reached; try again later.")
    response = RedirectResponse(target, status_code=303)
    session = sessions_of(request).open(account, token_digest(token.strip()))
    response.set_cookie(COOKIE, session, max_age=SESSION_SECONDS, path="/dashboard",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout", name="dashboard_logout")
def logout(request: Request) -> Response:
    if not same_origin(request):
        return error_page(request, 403, "无权访问 Not allowed", "sign out from this service's own pages")
    sessions_of(request).close(request.cookies.get(COOKIE))
    response = RedirectResponse(str(request.url_for("dashboard_login_form").path), status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response


# ---------------------------------------------------------------- overview


def _chart_days(days: list[str]) -> list[str]:
    """The chart's x axis: every day up to the last day with data, from the first day with data but
    at least CHART_MIN_DAYS and at most CHART_DAYS days (days without accesses included)."""
    if not days:
        return []
    last = date.fromisoformat(max(days))
    first = min(date.fromisoformat(min(days)), last - timedelta(days=CHART_MIN_DAYS - 1))
    first = max(first, last - timedelta(days=CHART_DAYS - 1))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


@router.get("", name="dashboard_overview")
def overview(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        by = "provider" if request.query_params.get("by") == "provider" else "requester"
        counts: dict[str, dict[str, int]] = {}
        table: list[tuple[str, str, int, int, int]] = []
        if viewer.auditor:
            for c in index.daily_counts(by=by):
                counts.setdefault(c.day, {})[c.dept_code or "—"] = c.total
                table.append((c.day, c.dept_code or "—", c.served, c.denied, c.source_failure))
        else:
            for side, label in (("requester", "作为请求方 as requester"), ("provider", "作为提供方 as provider")):
                for c in index.daily_counts(by=side):
                    if c.dept_id == viewer.dept_id:
                        counts.setdefault(c.day, {})[label] = c.total
                        table.append((c.day, label, c.served, c.denied, c.source_failure))
        days = _chart_days(list(counts))
        chart = stacked_bars(counts, days=days)
        title = "每日访问量 Accesses per day" + (" by requesting department" if by == "requester" else " by providing department")
        if viewer.auditor:
            figures = {"records": index.status().records,
                       "denied": index.search(outcome="denied", limit=1).total,
                       "failed": index.search(outcome="source_failure", limit=1).total}
            recent = index.search(outcome="denied", limit=5).records
        else:
            mine = viewer.dept_id
            figures = {"records": index.search(requester_dept=mine, limit=1).total
                       + index.search(provider_dept=mine, limit=1).total,
                       "denied": index.search(requester_dept=mine, outcome="denied", limit=1).total
                       + index.search(provider_dept=mine, outcome="denied", limit=1).total,
                       "failed": index.search(requester_dept=mine, outcome="source_failure", limit=1).total
                       + index.search(provider_dept=mine, outcome="source_failure", limit=1).total}
            recent = sorted(index.search(requester_dept=mine, outcome="denied", limit=5).records
                            + index.search(provider_dept=mine, outcome="denied", limit=5).records,
                            key=lambda r: (r.block_number, r.log_index), reverse=True)[:5]
        grants = [g for g in index.grants() if viewer.may_see_grant(g.requester_dept, g.owner_dept)]
        codes = {d.id: d.code for d in index.departments()}
        names = {d.id: d.name for d in index.datasets()}
        return "overview.html", {
            "chart_svg": chart.svg(title), "chart": chart, "chart_title": title, "by": by, "table": table,
            "figures": figures, "active_grants": sum(1 for g in grants if g.status == "active"),
            "report": service.last_report, "recent": recent, "codes": codes, "dataset_names": names,
            "flash": request.query_params.get("done"),
        }

    return page(request, context, service, "overview", build)


@router.post("/sync", name="dashboard_sync")
def sync_now(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> Response:
        if not same_origin(request):
            raise Forbidden("forms are accepted only from this service's own pages")
        result = service.sync()
        done = f"synced:{result.to_block}:{result.records}"
        return RedirectResponse(f"{request.url_for('dashboard_overview').path}?{urlencode({'done': done})}", status_code=303)

    return page(request, context, service, "overview", build)


@router.post("/verify", name="dashboard_verify")
def verify_now(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> Response:
        if not same_origin(request):
            raise Forbidden("forms are accepted only from this service's own pages")
        viewer.require_auditor("verify the audit trail")
        report = service.verify()
        done = f"verified:{'ok' if report.ok else 'failed'}:{len(report.violations)}"
        return RedirectResponse(f"{request.url_for('dashboard_overview').path}?{urlencode({'done': done})}", status_code=303)

    return page(request, context, service, "overview", build)


@router.get("/verification/report.html", name="dashboard_report")
def verification_report(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    """The last verification as the HTML report an audit office files."""
    def build(viewer: AuditViewer) -> Response:
        from auditing.html_report import render_verification_report

        report = service.last_report
        if report is None:
            raise NotFound("no verification has run since the service started; run one from the overview")
        stamp = (report.generated_at or "report").replace(":", "").replace("-", "")[:15]
        return HTMLResponse(render_verification_report(report), headers={
            **SECURITY_HEADERS, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "Content-Disposition": f'inline; filename="govshare-verification-{stamp}.html"'})

    return page(request, context, service, "overview", build)


# ---------------------------------------------------------------- datasets and grants


@router.get("/datasets", name="dashboard_datasets")
def datasets(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        departments = {d.id: d for d in index.departments()}
        rows = [{"dataset": d, "level": classification_name(d.classification), "owner": departments.get(d.owner_dept),
                 "latest": d.versions[-1] if d.versions else None} for d in index.datasets()]
        return "datasets.html", {"rows": rows}

    return page(request, context, service, "datasets", build)


@router.get("/grants", name="dashboard_grants")
def grants(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        state = query_param(request, "state")
        if state is not None and state not in GRANT_STATE_LABELS:
            raise AuditQueryError(f"state must be one of {', '.join(GRANT_STATE_LABELS)}, got {state!r}")
        codes = {d.id: d.code for d in index.departments()}
        names = {d.id: d.name for d in index.datasets()}
        rows = [g for g in index.grants(status=state) if viewer.may_see_grant(g.requester_dept, g.owner_dept)]
        return "grants.html", {"rows": rows, "codes": codes, "dataset_names": names, "state": state or ""}

    return page(request, context, service, "grants", build)


# ---------------------------------------------------------------- records


@router.get("/records", name="dashboard_records")
def records(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        departments = index.departments()
        form = {name: query_param(request, name) or "" for name in
                ("dataset", "requester_dept", "provider_dept", "grant", "outcome", "requester", "from", "to")}
        if not viewer.auditor and not form["requester_dept"] and not form["provider_dept"]:
            form["provider_dept"] = viewer.caller.department.code  # an operator starts with accesses to its data
        page_number = int_query_param(request, "page", "page", minimum=1) or 1
        error = None
        page = None
        try:
            if form["outcome"] and form["outcome"] not in OUTCOME_LABELS:
                raise AuditQueryError(f"outcome must be one of {', '.join(OUTCOME_LABELS)}, got {form['outcome']!r}")
            until = parse_time(form["to"], "to")
            if until is not None and len(form["to"]) == 10:
                until += 86_400  # a date in the form includes that whole day
            page = service.search(
                viewer, dataset_id=int_query_param(request, "dataset", "dataset", minimum=1),
                requester_dept=form["requester_dept"] or None, provider_dept=form["provider_dept"] or None,
                requester=form["requester"] or None, grant_id=int_query_param(request, "grant", "grant", minimum=1),
                outcome=form["outcome"] or None, since=parse_time(form["from"], "from"), until=until,
                limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE)
        except (ApiError, AuditQueryError) as exc:
            error = exc.detail if isinstance(exc, ApiError) else str(exc)
        total = page.total if page is not None else 0
        pages = max(1, math.ceil(total / PAGE_SIZE))
        query = {k: v for k, v in form.items() if v}

        def link(number: int) -> str:
            return f"{request.url_for('dashboard_records').path}?{urlencode({**query, 'page': number})}"

        return "records.html", {
            "form": form, "departments": departments, "datasets": index.datasets(), "error": error,
            "records": page.records if page is not None else [], "total": total, "page": page_number, "pages": pages,
            "previous": link(page_number - 1) if page_number > 1 else None,
            "next": link(page_number + 1) if page_number < pages else None,
            "codes": {d.id: d.code for d in departments}, "dataset_names": {d.id: d.name for d in index.datasets()},
            "outcomes": OUTCOME_LABELS,
        }

    return page(request, context, service, "records", build)


@router.get("/records/{record_id}", name="dashboard_record")
def record(record_id: str, request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        try:
            rid = int(record_id.strip(), 0)
        except ValueError:
            raise AuditQueryError(f"a record id is an integer (decimal or 0x hex), got {record_id!r}") from None
        found = index.record(rid)
        if found is None:
            return "error.html", {"title": "未找到记录 No such record",
                                  "detail": f"no record {hex(rid)} in the audit index (synced to block {index.cursor})",
                                  "status_code": 404}
        if not viewer.may_see_record(found):
            raise Forbidden(f"record {hex(rid)} is not about {viewer.caller.department.code}; operators see only "
                            "records their department is party to")
        departments = {d.id: d for d in index.departments()}
        datasets = {d.id: d for d in index.datasets()}
        dataset = datasets.get(found.dataset_id)
        grant = index.grant(found.grant_id) if found.grant_id else None

        def names(mask: int | None) -> list[str] | None:
            if mask is None or dataset is None:
                return None
            return [n for i, n in enumerate(dataset.fields) if mask >> i & 1]

        return "record.html", {
            "record": found, "departments": departments, "dataset": dataset, "grant": grant,
            "fields": names(found.field_mask), "grant_fields": names(grant.fields) if grant else None,
            "verification": service.record_verification(found), "outcomes": OUTCOME_LABELS,
        }

    return page(request, context, service, "records", build)
