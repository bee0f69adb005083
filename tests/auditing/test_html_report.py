"""The HTML verification report an audit office files (``auditing.html_report``), rendered from real
verifications of real trails on ganache: scope, checks, figures, violations, sign-off, the JSON
digest; escaped, bounded, and self-contained (no script, nothing fetched)."""

from __future__ import annotations

import hashlib
import re

from markupsafe import escape

from auditing.html_report import (
    MAX_LISTED_VIOLATIONS,
    render_verification_report,
    write_verification_report,
)
from auditing.report import CHECKS, CheckCount, VerificationReport, VerificationScope, Violation
from auditing.verification import verify_audit_trail
from ledger.contracts.audit_log import AuditEntry, OracleReason, Outcome, record_id
from ledger.contracts.catalog import Classification


def _entry(members, *, outcome: Outcome, dataset_id: int = 0, grant_id: int = 0, block: int, n: int) -> AuditEntry:
    return AuditEntry(grant_id=grant_id, requester=members.tax.operator.address, dataset_id=dataset_id,
                      dataset_version=1 if outcome is Outcome.SERVED else 0, outcome=outcome,
                      reason=0 if outcome is Outcome.SERVED else int(OracleReason.UNKNOWN_DATASET),
                      checked_at_block=block, request_hash=hashlib.sha256(b"rq%d" % n).digest(),
                      response_hash=hashlib.sha256(b"rs%d" % n).digest())


def _verdicts(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-check="([a-z_]+)" data-verdict="([a-z_]+)">', html))


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "the report must not fetch anything"
    assert "<link" not in html.lower()


def test_report_of_a_clean_trail(consortium, members, tmp_path):
    """Three denials anchored by market supervision's oracle: every check that ran passed."""
    block = consortium.chain.block_number()
    consortium.audit_log.append(members.samr.oracle, 1, [_entry(members, outcome=Outcome.DENIED, block=block, n=i)
                                                         for i in range(3)])
    report = verify_audit_trail(consortium)
    assert report.ok
    html = render_verification_report(report, issuer="审计局 Audit Office")
    _assert_self_contained(html)
    assert "核验通过 · PASSED" in html and "Audit Office" in html
    assert f"<dd>{consortium.chain.chain_id}</dd>" in html
    assert f"{report.scope.from_block} – {report.scope.to_block}" in html
    for name, description in CHECKS.items():
        assert f'data-check="{name}"' in html and str(escape(description)) in html
    verdicts = _verdicts(html)
    assert {k: verdicts[k] for k in ("sequence", "hash_chain", "writer")} == dict.fromkeys(("sequence", "hash_chain", "writer"), "pass")
    assert verdicts["oracle_export"] == verdicts["data_file"] == verdicts["record_proof"] == "not_run"
    assert re.search(r"核验的审计记录 Audit records verified</td><td class=\"num\">3</td>", html)
    for line in ("审计人员（签名）Auditor (signature)", "复核人（签名）Reviewer (signature)",
                 "审计机关负责人（签名）Head of the audit office (signature)", "审计机关印章 Seal of the audit office"):
        assert line in html
    assert consortium.deployment.addresses["AuditLog"] in html
    digest = re.search(r'<span class="mono" id="digest">([0-9a-f]{64})</span>', html).group(1)
    assert digest == hashlib.sha256(report.to_json().encode()).hexdigest()
    written = write_verification_report(report, tmp_path / "report.html")
    assert written.read_text(encoding="utf-8") == render_verification_report(report)


def test_report_names_each_violation_and_where_to_find_it(consortium, members):
    """A 'served' record under a grant that was requested but never approved: the authorisation check
    fails and names it."""
    dataset = consortium.catalog.register(members.samr.operator, "企业登记信息", ("company_id", "name"), Classification.INTERNAL)
    grant = consortium.grants.request(members.tax.operator, dataset, 0b11, "not yet approved", 86_400, 5)
    block = consortium.chain.block_number()
    appended = consortium.audit_log.append(members.samr.oracle, 1, [
        _entry(members, outcome=Outcome.DENIED, block=block, n=1),
        _entry(members, outcome=Outcome.SERVED, dataset_id=dataset, grant_id=grant, block=block, n=2)])
    report = verify_audit_trail(consortium)
    assert not report.ok
    html = render_verification_report(report)
    _assert_self_contained(html)
    assert "核验未通过 · FAILED" in html
    assert _verdicts(html)["authorisation"] == "fail"
    rogue = hex(record_id(members.samr.oracle.address, 2))
    rows = re.findall(r'<tr class="violation">(.*?)</tr>', html, flags=re.DOTALL)
    assert len(rows) == len(report.violations) >= 1
    assert any(rogue in row and appended.tx_hash in row and str(appended.block_number) in row for row in rows)
    assert re.search(r'<td class="mono">unauthorised_access</td><td class="mono">authorisation</td><td class="num">\d+</td>', html)


def test_report_escapes_every_value_and_lists_a_bounded_number():
    scope = VerificationScope(chain_id=1337, addresses={"AuditLog": "0x<b>bold</b>"}, deployment_block=1, from_block=1,
                              to_block=9, records=0, oracles=0, grants=0, live_state=False)
    checks = [CheckCount(name, description) for name, description in CHECKS.items()]
    violations = [Violation("sequence", "sequence_gap", "<script>alert('x')</script> & more", record_id=5, block=3)]
    violations += [Violation("writer", "rogue_writer", f"finding {i}") for i in range(MAX_LISTED_VIOLATIONS + 4)]
    report = VerificationReport(scope, checks, violations, "2026-01-01T00:00:00+00:00", 0.5)
    html = render_verification_report(report, issuer="<i>office</i>")
    _assert_self_contained(html)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    assert "0x&lt;b&gt;bold&lt;/b&gt;" in html and "&lt;i&gt;office&lt;/i&gt;" in html
    assert html.count('<tr class="violation">') == MAX_LISTED_VIOLATIONS
    assert "另有 5 项未列出" in html
    assert f"发现 {MAX_LISTED_VIOLATIONS + 5} 项违规事项" in html
    assert "<dd>否 no (events only)</dd>" in html and "<dd>500 ms</dd>" in html
