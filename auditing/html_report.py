"""The verification report an audit office files: one standalone HTML page.

``render_verification_report(report)`` turns a :class:`auditing.verification.VerificationReport` into a
self-contained HTML document (inline CSS, no script, nothing fetched; prints on A4) with the scope,
every check with its counts, the figures, the violations (each with where to find it on chain), the
method, and signature lines for the auditor, the reviewer and the head of the audit office. The
footer carries the SHA-256 of the report's JSON form, so a filed page can be matched to the machine
output. ``govshare audit verify --report FILE.html`` writes it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

if TYPE_CHECKING:
    from auditing.report import VerificationReport

__all__ = ["MAX_LISTED_VIOLATIONS", "render_verification_report", "write_verification_report"]

#: Violations listed one by one in the HTML; the rest are counted (the JSON report has them all).
MAX_LISTED_VIOLATIONS = 2_000

_TEMPLATES = Path(__file__).parent / "templates"
_environment = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _generator() -> str:
    try:
        return version("govshare")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "(source tree)"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _scope(report: VerificationReport) -> dict[str, Any]:
    scope = report.scope
    if scope.from_block is None and scope.to_block is None:
        blocks = "—"
    else:
        blocks = f"{scope.from_block if scope.from_block is not None else '?'} – {scope.to_block if scope.to_block is not None else '?'}"
    return {
        "chain_label": "—" if scope.chain_id is None else str(scope.chain_id),
        "blocks": blocks,
        "deployment_block": "—" if scope.deployment_block is None else scope.deployment_block,
        "records": scope.records,
        "oracles": scope.oracles,
        "grants": scope.grants,
        "live_state": scope.live_state,
        "addresses": sorted((scope.addresses or {}).items()),
    }


def _digest(report: VerificationReport) -> str | None:
    try:
        text = report.to_json()
    except NotImplementedError:  # the verifier's JSON form is not available: the page says nothing
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_verification_report(report: VerificationReport, *, issuer: str | None = None) -> str:
    """The report as a standalone HTML document (a ``str``); ``issuer`` names the audit office on the
    title line. Every value from the report is HTML-escaped."""
    violations = list(report.violations)
    listed = [
        {
            "check": v.check,
            "code": v.code,
            "message": v.message,
            "record_hex": None if v.record_id is None else hex(v.record_id),
            "oracle": v.oracle,
            "sequence": v.sequence,
            "block": v.block,
            "tx_hash": v.tx_hash,
        }
        for v in violations[:MAX_LISTED_VIOLATIONS]
    ]
    by_code = Counter((v.code, v.check) for v in violations)
    failing = {v.check for v in violations}
    checks = [
        {
            "name": c.name,
            "description": c.description,
            "checked": c.checked,
            "passed": c.passed,
            "failed": c.failed,
            "verdict": ("not_run" if not getattr(c, "ran", True)
                        else "fail" if c.failed or c.name in failing else "pass"),
        }
        for c in report.checks
    ]
    return _environment.get_template("report.html").render(
        report=report,
        issuer=issuer,
        scope=_scope(report),
        checks=checks,
        checks_run=sum(1 for c in checks if c["verdict"] != "not_run"),
        checked_total=sum(c["checked"] for c in checks),
        violations=listed,
        violation_total=len(violations),
        omitted=max(len(violations) - MAX_LISTED_VIOLATIONS, 0),
        by_code=[(code, check, n) for (code, check), n in sorted(by_code.items(), key=lambda item: (-item[1], item[0]))],
        generated_at=report.generated_at or "—",
        duration=_duration(report.seconds),
        digest=_digest(report),
        generator=_generator(),
    )


def write_verification_report(report: VerificationReport, path: Path | str, *, issuer: str | None = None) -> Path:
    """Render the report and write it to ``path`` (UTF-8); returns the path written."""
    target = Path(path)
    target.write_text(render_verification_report(report, issuer=issuer), encoding="utf-8")
    return target
