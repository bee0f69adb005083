"""The auditors' dashboard: server-rendered pages under ``/dashboard`` (Chinese and English labels).

Pages: **overview** (accesses per day per department as an inline SVG chart, denials, verification
status with the last block verified, recent denials), **datasets** (owner, level, versions),
**grants** (state, expiry, quota used), **records** (a search form, a table, pages) and a **record
view** (its transaction, block, hashes, grant and verification result). Read from the service's
audit index (``api.audit_service``), which the overview's button (or ``POST /v1/audit/sync``) feeds.

Sign-in: the login form takes the same bearer token as the API (``settings.tokens``). The service
then keeps a server-side session (a random id in an ``HttpOnly``, ``SameSite=Strict`` cookie,
``Secure`` over HTTPS, 8 hours) and re-checks the account's membership and role on chain at every
page, so a removed department loses the dashboard at once. Auditors of an audit office see
everything; a department's operators see what their department is party to; anyone else is refused.
Every page is read-only except three POST forms (sync, verify, sign out), which also check
``Origin``. Pages carry a strict Content-Security-Policy: no script at all, styles only from the
service itself, nothing from any other host.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.audit_service import (
    AuditService,
    AuditServiceDep,
    AuditViewer,
    classification_name,
    iso,
    parse_time,
    viewer_for,
)
from api.auth import Authentication, current_caller
from api.charts import stacked_bars
from api.deps import ContextDep
from api.errors import ApiError, Forbidden, NotFound
from auditing.index import AuditIndexError, AuditQueryError
from ledger.errors import ChainUnavailable

__all__ = ["COOKIE", "DashboardSessions", "router"]

COOKIE = "govshare_dashboard"
SESSION_SECONDS = 8 * 3600
PAGE_SIZE = 20
CHART_DAYS = 30
CHART_MIN_DAYS = 14
_HERE = Path(__file__).parent
_STYLESHEET = _HERE / "static" / "dashboard.css"

#: Strict: no script, no frame, no other host; styles only from this service.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

NAV = (
    ("overview", "概览", "Overview", "dashboard_overview"),
    ("datasets", "数据集", "Datasets", "dashboard_datasets"),
    ("grants", "授权", "Grants", "dashboard_grants"),
    ("records", "审计记录", "Records", "dashboard_records"),
)
OUTCOME_LABELS = {"served": "已提供 Served", "denied": "已拒绝 Denied", "source_failure": "源故障 Source failure"}
GRANT_STATE_LABELS = {
    "requested": "待审批 Requested", "awaiting_co_approval": "待会签 Awaiting co-approval", "active": "有效 Active",
    "expired": "已过期 Expired", "rejected": "已驳回 Rejected", "revoked": "已撤销 Revoked", "cancelled": "已取消 Cancelled",
}
LEVEL_LABELS = {"public": "公开 Public", "internal": "内部 Internal", "sensitive": "敏感 Sensitive", "secret": "机密 Secret"}
VERIFICATION_LABELS = {
    "verified": "核验通过 Verified", "violations": "存在违规 Violations", "not_covered": "晚于最近核验 After the last verification",
    "not_verified": "尚未核验 Not verified yet",
}

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=str(_HERE / "templates"))
templates.env.globals.update(outcome_labels=OUTCOME_LABELS, grant_state_labels=GRANT_STATE_LABELS,
                             level_labels=LEVEL_LABELS, verification_labels=VERIFICATION_LABELS)
templates.env.filters["iso"] = iso
templates.env.filters["short"] = lambda value, n=10: value if not value or len(str(value)) <= 2 * n + 1 else f"{str(value)[:n]}…{str(value)[-n + 2:]}"


# ---------------------------------------------------------------- sessions


class DashboardSessions:
    """Server-side sessions: sha256(session id) → (account, expiry). Ids are 256-bit random; only
    their hashes are kept, so a memory dump does not yield a usable cookie. Lost on restart."""

    def __init__(self, lifetime: float = SESSION_SECONDS, limit: int = 10_000) -> None:
        self.lifetime, self.limit = lifetime, limit
        self._lock = threading.Lock()
        self._sessions: dict[bytes, tuple[str, float]] = {}

    @staticmethod
    def _key(session_id: str) -> bytes:
        return hashlib.sha256(session_id.encode("utf-8", "replace")).digest()

    def open(self, account: str) -> str:
        """A new session for ``account``; returns the id to put in the cookie."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            for key in [k for k, (_, expires) in self._sessions.items() if expires <= now]:
                del self._sessions[key]
            if len(self._sessions) >= self.limit:  # drop the oldest rather than grow without bound
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k][1])]
            self._sessions[self._key(session_id)] = (account, now + self.lifetime)
        return session_id

    def account(self, session_id: str | None) -> str | None:
        """The session's account, or None (unknown or expired)."""
        if not session_id or len(session_id) > 200:
            return None
        with self._lock:
            entry = self._sessions.get(self._key(session_id))
            if entry is None:
                return None
            if entry[1] <= time.time():
                del self._sessions[self._key(session_id)]
                return None
            return entry[0]

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(self._key(session_id), None)


_sessions_lock = threading.Lock()


def _sessions(request: Request) -> DashboardSessions:
    state = request.app.state
    sessions = getattr(state, "dashboard_sessions", None)
    if sessions is None:
        with _sessions_lock:
            sessions = getattr(state, "dashboard_sessions", None)
            if sessions is None:
                sessions = state.dashboard_sessions = DashboardSessions()
    return sessions


# ---------------------------------------------------------------- rendering helpers


class _LoginRequired(Exception):
    """No valid session: the page answers a redirect to the login form."""


def _render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("caller_label", None)
    context.setdefault("index_status", None)
    context.setdefault("nav", NAV)
    context.setdefault("active", "")
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _viewer(request: Request, context: Any) -> AuditViewer:
    account = _sessions(request).account(request.cookies.get(COOKIE))
    if account is None:
        raise _LoginRequired
    caller = current_caller(Authentication(account, "token"), context)  # membership re-checked on chain
    return viewer_for(caller, context)


def _caller_label(viewer: AuditViewer) -> str:
    role = "审计员 Auditor" if viewer.auditor else "操作员 Operator"
    return f"{viewer.caller.department.code} · {role} · {viewer.caller.account[:8]}…{viewer.caller.account[-4:]}"


@dataclass
class _Status:
    chain_id: int | None
    synced_block: int | None
    synced_at: str


def _index_status(service: AuditService) -> _Status:
    status = service.index.status()
    return _Status(status.chain_id, status.cursor, f"{iso(status.cursor_time)} UTC" if status.cursor_time else "")


def _page(request: Request, context: Any, service: AuditService, active: str,
          build: Callable[[AuditViewer], tuple[str, dict[str, Any]] | Response]) -> Response:
    """Resolve the viewer, build the page, and turn every expected failure into a readable page."""
    try:
        viewer = _viewer(request, context)
        built = build(viewer)
        if isinstance(built, Response):
            return built
        template, values = built
        return _render(request, template, status=values.pop("status_code", 200), active=active, caller_label=_caller_label(viewer),
                       index_status=_index_status(service), viewer=viewer, **values)
    except _LoginRequired:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{request.url_for('dashboard_login_form')}?{urlencode({'next': target})}", status_code=303)
    except Forbidden as exc:
        return _error(request, 403, "无权访问 Not allowed", exc.detail)
    except ApiError as exc:
        return _error(request, exc.status, exc.title, exc.detail)
    except ChainUnavailable:
        return _error(request, 503, "链不可达 Chain unavailable",
                      "the consortium chain's node cannot be reached; try again later")
    except AuditIndexError as exc:
        return _error(request, 400 if isinstance(exc, AuditQueryError) else 503, "审计索引 Audit index", str(exc))


def _error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return _render(request, "error.html", status=status, title=title, detail=detail)


def _same_origin(request: Request) -> bool:
    """A POST form must come from this service's own pages (``Origin``, when the browser sends it)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value.strip() if value is not None and value.strip() else None


def _int_param(request: Request, name: str, label: str, *, minimum: int = 0) -> int | None:
    value = _param(request, name)
    if value is None:
        return None
    try:
        number = int(value, 0)
    except ValueError:
        raise AuditQueryError(f"{label} must be a number, got {value!r}") from None
    if number < minimum or number >= 1 << 64:
        raise AuditQueryError(f"{label} out of range: {value!r}")
    return number


# ---------------------------------------------------------------- sign-in


@router.get("/static/dashboard.css", name="dashboard_stylesheet")
def stylesheet() -> FileResponse:
    return FileResponse(_STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/login", name="dashboard_login_form")
def login_form(request: Request) -> HTMLResponse:
    return _render(request, "login.html", next=_safe_next(request.query_params.get("next")) or "", error=None)


@router.post("/login", name="dashboard_login")
def login(request: Request, context: ContextDep, token: str = Form(default="", max_length=1000),
          next: str = Form(default="", max_length=2000)) -> Response:
    """Check the token, then the account's membership and role; open a session."""
    target = _safe_next(next) or str(request.url_for("dashboard_overview").path)

    def refuse(status: int, message: str) -> HTMLResponse:
        return _render(request, "login.html", status=status, next=_safe_next(next) or "", error=message)

    if not _same_origin(request):
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
    response.set_cookie(COOKIE, _sessions(request).open(account), max_age=SESSION_SECONDS, path="/dashboard",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout", name="dashboard_logout")
def logout(request: Request) -> Response:
    if not _same_origin(request):
        return _error(request, 403, "无权访问 Not allowed", "sign out from this service's own pages")
    _sessions(request).close(request.cookies.get(COOKIE))
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

    return _page(request, context, service, "overview", build)


@router.post("/sync", name="dashboard_sync")
def sync_now(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> Response:
        if not _same_origin(request):
            raise Forbidden("forms are accepted only from this service's own pages")
        result = service.sync()
        done = f"synced:{result.to_block}:{result.records}"
        return RedirectResponse(f"{request.url_for('dashboard_overview').path}?{urlencode({'done': done})}", status_code=303)

    return _page(request, context, service, "overview", build)


@router.post("/verify", name="dashboard_verify")
def verify_now(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> Response:
        if not _same_origin(request):
            raise Forbidden("forms are accepted only from this service's own pages")
        viewer.require_auditor("verify the audit trail")
        report = service.verify()
        done = f"verified:{'ok' if report.ok else 'failed'}:{len(report.violations)}"
        return RedirectResponse(f"{request.url_for('dashboard_overview').path}?{urlencode({'done': done})}", status_code=303)

    return _page(request, context, service, "overview", build)


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

    return _page(request, context, service, "overview", build)


# ---------------------------------------------------------------- datasets and grants


@router.get("/datasets", name="dashboard_datasets")
def datasets(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        departments = {d.id: d for d in index.departments()}
        rows = [{"dataset": d, "level": classification_name(d.classification), "owner": departments.get(d.owner_dept),
                 "latest": d.versions[-1] if d.versions else None} for d in index.datasets()]
        return "datasets.html", {"rows": rows}

    return _page(request, context, service, "datasets", build)


@router.get("/grants", name="dashboard_grants")
def grants(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        state = _param(request, "state")
        if state is not None and state not in GRANT_STATE_LABELS:
            raise AuditQueryError(f"state must be one of {', '.join(GRANT_STATE_LABELS)}, got {state!r}")
        codes = {d.id: d.code for d in index.departments()}
        names = {d.id: d.name for d in index.datasets()}
        rows = [g for g in index.grants(status=state) if viewer.may_see_grant(g.requester_dept, g.owner_dept)]
        return "grants.html", {"rows": rows, "codes": codes, "dataset_names": names, "state": state or ""}

    return _page(request, context, service, "grants", build)


# ---------------------------------------------------------------- records


@router.get("/records", name="dashboard_records")
def records(request: Request, context: ContextDep, service: AuditServiceDep) -> Response:
    def build(viewer: AuditViewer) -> tuple[str, dict[str, Any]]:
        index = service.index
        departments = index.departments()
        form = {name: _param(request, name) or "" for name in
                ("dataset", "requester_dept", "provider_dept", "grant", "outcome", "requester", "from", "to")}
        if not viewer.auditor and not form["requester_dept"] and not form["provider_dept"]:
            form["provider_dept"] = viewer.caller.department.code  # an operator starts with accesses to its data
        page_number = _int_param(request, "page", "page", minimum=1) or 1
        error = None
        page = None
        try:
            if form["outcome"] and form["outcome"] not in OUTCOME_LABELS:
                raise AuditQueryError(f"outcome must be one of {', '.join(OUTCOME_LABELS)}, got {form['outcome']!r}")
            until = parse_time(form["to"], "to")
            if until is not None and len(form["to"]) == 10:
                until += 86_400  # a date in the form includes that whole day
            page = service.search(
                viewer, dataset_id=_int_param(request, "dataset", "dataset", minimum=1),
                requester_dept=form["requester_dept"] or None, provider_dept=form["provider_dept"] or None,
                requester=form["requester"] or None, grant_id=_int_param(request, "grant", "grant", minimum=1),
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

    return _page(request, context, service, "records", build)


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

    return _page(request, context, service, "records", build)
