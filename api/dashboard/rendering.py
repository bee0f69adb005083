"""How a dashboard page is rendered: the templates and their labels, the security headers every page
carries, who is looking (the session's account, re-checked on chain), and every expected failure
turned into a readable page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.audit_service import AuditService, AuditViewer, iso, viewer_for
from api.auth import Authentication, current_caller
from api.dashboard.sessions import COOKIE, sessions_of
from api.errors import ApiError, Forbidden
from auditing.index import AuditIndexError, AuditQueryError
from ledger.errors import ChainUnavailable

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

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

templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.globals.update(outcome_labels=OUTCOME_LABELS, grant_state_labels=GRANT_STATE_LABELS,
                             level_labels=LEVEL_LABELS, verification_labels=VERIFICATION_LABELS)
templates.env.filters["iso"] = iso
templates.env.filters["short"] = lambda value, n=10: value if not value or len(str(value)) <= 2 * n + 1 else f"{str(value)[:n]}…{str(value)[-n + 2:]}"


class LoginRequired(Exception):
    """No valid session: the page answers a redirect to the login form."""


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("caller_label", None)
    context.setdefault("index_status", None)
    context.setdefault("nav", NAV)
    context.setdefault("active", "")
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def current_viewer(request: Request, context: Any) -> AuditViewer:
    sessions = sessions_of(request)
    session = sessions.session(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired
    account, digest = session
    if context.tokens.account_for_digest(digest) != account:  # the token was revoked or expired meanwhile
        sessions.close(request.cookies.get(COOKIE))
        raise LoginRequired
    caller = current_caller(Authentication(account, "token"), context)  # membership re-checked on chain
    return viewer_for(caller, context)


def caller_label(viewer: AuditViewer) -> str:
    role = "审计员 Auditor" if viewer.auditor else "操作员 Operator"
    return f"{viewer.caller.department.code} · {role} · {viewer.caller.account[:8]}…{viewer.caller.account[-4:]}"


@dataclass
class IndexStatusLine:
    chain_id: int | None
    synced_block: int | None
    synced_at: str


def index_status_line(service: AuditService) -> IndexStatusLine:
    status = service.index.status()
    return IndexStatusLine(status.chain_id, status.cursor, f"{iso(status.cursor_time)} UTC" if status.cursor_time else "")


def page(request: Request, context: Any, service: AuditService, active: str,
          build: Callable[[AuditViewer], tuple[str, dict[str, Any]] | Response]) -> Response:
    """Resolve the viewer, build the page, and turn every expected failure into a readable page."""
    try:
        viewer = current_viewer(request, context)
        built = build(viewer)
        if isinstance(built, Response):
            return built
        template, values = built
        return render(request, template, status=values.pop("status_code", 200), active=active, caller_label=caller_label(viewer),
                       index_status=index_status_line(service), viewer=viewer, **values)
    except LoginRequired:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{request.url_for('dashboard_login_form')}?{urlencode({'next': target})}", status_code=303)
    except Forbidden as exc:
        return error_page(request, 403, "无权访问 Not allowed", exc.detail)
    except ApiError as exc:
        return error_page(request, exc.status, exc.title, exc.detail)
    except ChainUnavailable:
        return error_page(request, 503, "链不可达 Chain unavailable",
                      "the consortium chain's node cannot be reached; try again later")
    except AuditIndexError as exc:
        return error_page(request, 400 if isinstance(exc, AuditQueryError) else 503, "审计索引 Audit index", str(exc))


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", status=status, title=title, detail=detail)


def same_origin(request: Request) -> bool:
    """A POST form must come from this service's own pages (``Origin``, when the browser sends it)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def safe_next(target: str | None) -> str | None:
    if target and target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def query_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value.strip() if value is not None and value.strip() else None


def int_query_param(request: Request, name: str, label: str, *, minimum: int = 0) -> int | None:
    value = query_param(request, name)
    if value is None:
        return None
    try:
        number = int(value, 0)
    except ValueError:
        raise AuditQueryError(f"{label} must be a number, got {value!r}") from None
    if number < minimum or number >= 1 << 64:
        raise AuditQueryError(f"{label} out of range: {value!r}")
    return number
