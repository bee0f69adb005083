"""The oracle's per-requester rate limit (``requester_rate_limit``), over real HTTP on a real chain:
counted per signing account once the signature is verified, refused 429 with ``Retry-After``,
recorded as a denial (``RATE_LIMITED``) that reaches the chain. The limit is per hour, so that no
query of a test ever leaves its window: the tests count outcomes, they time nothing."""

from __future__ import annotations

import httpx
import pytest

from auditing.index import AuditIndex
from auditing.verification import verify_audit_trail
from devtools.sample_data import companies
from ledger.contracts.audit_log import OracleReason, Outcome
from oracle.config import OracleConfig
from oracle.errors import ConfigError
from protocol.receipt import receipt_signer
from tests.oracle.conftest import DAY


def _post(running, body: dict) -> httpx.Response:
    return httpx.post(f"{running.url}/v1/query", json=body, timeout=30)


def _tax_query(running, members, published, index: int) -> dict:
    body, _, _ = running.client.signed_body(members.tax.operator, members.tax.id, published.companies,
                                            published.tax_grant, published.company_fields,
                                            {"company_id": companies()[index]["company_id"]})
    return body


def test_over_the_limit_is_429_with_retry_after_and_recorded(consortium, members, published, start, tmp_path):
    running = start(requester_rate_limit="3/hour")
    # PSB's operator holds a grant of its own: another requester, with a budget of its own
    psb_grant = consortium.grants.request(members.psb.operator, published.companies, published.company_fields,
                                          "residence checks", 30 * DAY, 50)
    consortium.grants.approve(members.samr.operator, psb_grant, published.company_fields, 30 * DAY, 50)

    # queries that claim to be tax's but are signed by another key spend nothing of tax's budget
    for _ in range(4):
        forged, _, _ = running.client.signed_body(members.outsider, members.tax.id, published.companies,
                                                  published.tax_grant, published.company_fields, {"company_id": "x"})
        forged["query"]["requester"] = members.tax.operator.address
        assert _post(running, forged).json()["reason"] == "BAD_SIGNATURE"

    replies = [_post(running, _tax_query(running, members, published, i)) for i in range(5)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429, 429], [r.text for r in replies]
    for reply in replies[3:]:
        problem = reply.json()
        assert reply.headers["content-type"] == "application/problem+json"
        assert problem["reason"] == "RATE_LIMITED" and problem["title"] == "RATE_LIMITED"
        wait = int(reply.headers["retry-after"])
        assert 1 <= wait <= 3600 and problem["retry_after"] == wait
        receipt = problem["receipt"]
        assert receipt_signer(receipt) == members.samr.oracle.address
        assert (receipt["outcome"], receipt["reason"]) == (Outcome.DENIED, OracleReason.RATE_LIMITED)
        assert receipt["requester"] == members.tax.operator.address and receipt["dataset_id"] == 0

    # another requester is still served, and a refused query spent nothing: still refused, not served
    psb_body, _, _ = running.client.signed_body(members.psb.operator, members.psb.id, published.companies, psb_grant,
                                                published.company_fields, {"company_id": companies()[9]["company_id"]})
    assert _post(running, psb_body).status_code == 200
    assert _post(running, _tax_query(running, members, published, 7)).status_code == 429

    # every refusal is in the outbox, then on chain, with its reason and the verified requester
    assert running.oracle.outbox.pending_count() == 4 + 5 + 1 + 1
    while running.oracle.outbox.pending_count():
        assert running.oracle.batcher.anchor_once(force=True)
    limited = [r.entry for r in consortium.audit_log.records() if r.entry.reason == OracleReason.RATE_LIMITED]
    assert len(limited) == 3
    assert all(e.outcome == Outcome.DENIED and e.requester == members.tax.operator.address for e in limited)
    assert consortium.grants.grant(published.tax_grant).used == 3  # the limited ones never reached the grant
    # an auditor's index names the reason, and the trail with these denials verifies
    index = AuditIndex(tmp_path / "index.sqlite")
    index.sync(consortium)
    receipt = replies[3].json()["receipt"]
    assert index.record(receipt["record_id"]).reason_name == "RATE_LIMITED"
    assert verify_audit_trail(index, consortium).ok


def test_without_a_limit_every_query_is_served(members, published, start):
    running = start()
    assert [_post(running, _tax_query(running, members, published, i)).status_code for i in range(5)] == [200] * 5


@pytest.mark.parametrize("value, problem", [
    ('"0/minute"', "at least 1"),
    ('"lots"', "not a rate"),
    ('"5/minute;100/hour"', "one '<count>/<unit>'"),
    ("5", "must be a string"),
])
def test_a_bad_limit_is_refused_at_load(tmp_path, value, problem):
    path = tmp_path / "oracle.toml"
    path.write_text(f'rpc_url = "http://127.0.0.1:8545"\ndepartment = "SAMR"\nkey_file = "k.json"\n'
                    f'requester_rate_limit = {value}\n[datasets.1]\nbase_url = "http://127.0.0.1:9"\npath = "/c"\n'
                    f'params = ["company_id"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        OracleConfig.load(path)
    assert err.value.key == "requester_rate_limit" and problem in err.value.problem, err.value


def test_the_limit_is_read_from_the_toml(tmp_path):
    path = tmp_path / "oracle.toml"
    path.write_text('rpc_url = "http://127.0.0.1:8545"\ndepartment = "SAMR"\nkey_file = "k.json"\n'
                    'requester_rate_limit = "120/minute"\n[datasets.1]\nbase_url = "http://127.0.0.1:9"\npath = "/c"\n'
                    'params = ["company_id"]\n', encoding="utf-8")
    assert OracleConfig.load(path).requester_rate_limit == "120/minute"
