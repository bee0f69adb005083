"""The audit API over real HTTP: a real trail (real oracles answering real queries, denials among
them, anchored on ganache; ``tests.api.audit_trail``, built once for this module) indexed by the
service, searched, read one by one, verified; who may see what; every bad input a problem."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.contracts.audit_log import AuditEntry, Outcome, record_id
from ledger.deployment import Consortium
from tests.api.audit_trail import AuditWorld, Trail, audit_world
from tests.api.conftest import RunningApi, assert_problem
from tests.conftest import Members


@pytest.fixture(scope="module")
def world(ganache, template, compilation, company_api, resident_api, tmp_path_factory) -> Iterator[AuditWorld]:  # noqa: F811
    with audit_world(ganache, template, compilation, company_api, resident_api,
                     tmp_path_factory.mktemp("audit-routes")) as built:
        yield built


# Module-scoped views of the world (``members``/``consortium`` would revert the chain under the trail).
@pytest.fixture
def audit_api(world: AuditWorld) -> RunningApi:
    return world.api


@pytest.fixture
def trail(world: AuditWorld) -> Trail:
    return world.trail


@pytest.fixture
def who(world: AuditWorld) -> Members:
    return world.members


@pytest.fixture
def contracts(world: AuditWorld) -> Consortium:
    return world.consortium


def fresh_api(world: AuditWorld, name: str) -> RunningApi:
    """A service of its own (own index, no verification run yet), synced."""
    api = world.start_api(name)
    assert api.post(world.members.audit.auditor, "/v1/audit/sync").status_code == 200
    return api


def _ids(reply: Any) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [r["record_id"] for r in reply.json()["records"]]


def test_auditor_searches_by_every_filter(audit_api, who, trail, contracts):
    auditor = who.audit.auditor
    everything = audit_api.get(auditor, "/v1/audit/records")
    assert everything.json()["total"] == 7
    assert _ids(everything) == sorted(trail.all, key=lambda rid: _position(contracts, rid), reverse=True)
    companies = trail.published.companies
    assert _ids(audit_api.get(auditor, "/v1/audit/records", params={"dataset_id": companies, "outcome": "denied"})) \
        == list(reversed(trail.denied_companies))
    assert set(_ids(audit_api.get(auditor, "/v1/audit/records", params={"provider_dept": "psb"}))) == set(trail.served_residents)
    assert set(_ids(audit_api.get(auditor, "/v1/audit/records", params={"grant_id": trail.residents_grant}))) \
        == set(trail.served_residents)
    assert len(_ids(audit_api.get(auditor, "/v1/audit/records", params={"requester_dept": "TAX", "outcome": "served"}))) == 5
    assert len(_ids(audit_api.get(auditor, "/v1/audit/records", params={"requester": who.tax.operator.address}))) == 7
    assert _ids(audit_api.get(auditor, "/v1/audit/records", params={"requester_dept": "SAMR"})) == []
    # time range: everything was anchored a moment ago; nothing before yesterday, nothing from tomorrow on
    now = int(time.time())
    assert len(_ids(audit_api.get(auditor, "/v1/audit/records", params={"from": now - 86_400}))) == 7
    assert _ids(audit_api.get(auditor, "/v1/audit/records", params={"to": "2000-01-01"})) == []
    assert _ids(audit_api.get(auditor, "/v1/audit/records", params={"from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 86_400))})) == []
    record = audit_api.get(auditor, "/v1/audit/records", params={"outcome": "denied", "limit": 1}).json()["records"][0]
    assert record["reason_name"] == "REVOKED" and record["outcome"] == "denied"
    assert record["provider_dept"] == {"id": who.samr.id, "code": "SAMR"}
    assert record["requester_dept"] == {"id": who.tax.id, "code": "TAX"}
    assert record["dataset_name"] == "企业登记信息"
    assert record["fields"] == ["company_id", "name", "registration_date", "status"]


def _position(contracts, rid: str) -> tuple[int, int]:
    for record in contracts.audit_log.records():
        if hex(record.record_id) == rid:
            return record.block_number, record.log_index
    raise AssertionError(f"{rid} is not on chain")


def test_pages_by_cursor_and_offset_cover_every_record_once(audit_api, who, trail):
    auditor = who.audit.auditor
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = audit_api.get(auditor, "/v1/audit/records", params=params).json()
        assert page["total"] == 7 and len(page["records"]) <= 3
        seen += [r["record_id"] for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(trail.all) and len(seen) == 7
    by_offset = [rid for offset in (0, 3, 6) for rid in _ids(audit_api.get(auditor, "/v1/audit/records",
                                                                          params={"limit": 3, "offset": offset}))]
    assert by_offset == seen


def test_record_view_matches_the_chain(world, who, trail, contracts):
    audit_api = fresh_api(world, "record-view")
    rid = trail.served_residents[0]
    (on_chain,) = [r for r in contracts.audit_log.records() if hex(r.record_id) == rid]
    reply = audit_api.get(who.audit.auditor, f"/v1/audit/records/{rid}")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["tx_hash"] == on_chain.tx_hash and body["block_number"] == on_chain.block_number
    assert body["request_hash"] == "0x" + on_chain.entry.request_hash.hex()
    assert body["response_hash"] == "0x" + on_chain.entry.response_hash.hex()
    assert body["checked_at_block"] == on_chain.entry.checked_at_block
    assert body["oracle"] == who.psb.oracle.address and body["sequence"] == on_chain.sequence
    assert body["grant"]["id"] == trail.residents_grant and body["grant"]["status"] == "active"
    assert body["grant"]["used"] == 2 and body["grant"]["quota"] == 10
    assert body["grant"]["fields"] == ["id_number", "name"]
    assert body["verification"] == {"status": "not_verified", "report_generated_at": None, "report_to_block": None,
                                    "violations": []}
    # the same record by its decimal id
    assert audit_api.get(who.audit.auditor, f"/v1/audit/records/{int(rid, 16)}").json()["record_id"] == rid


def test_verify_reports_and_marks_records_verified(world, who, trail):
    audit_api = fresh_api(world, "verify")
    auditor = who.audit.auditor
    reply = audit_api.post(auditor, "/v1/audit/verify")
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert report["ok"] is True and report["violations"] == []
    assert report["scope"]["records"] == 7 and report["scope"]["oracles"] == 2
    assert report["checks"]["hash_chain"]["failed"] == 0 and report["checks"]["authorisation"]["checked"] == 5
    status = audit_api.get(auditor, "/v1/audit/status").json()
    assert status["last_verification"]["ok"] is True and status["records"] == 7
    assert status["last_verification"]["to_block"] == status["synced_block"]
    record = audit_api.get(auditor, f"/v1/audit/records/{trail.denied_companies[0]}").json()
    assert record["verification"]["status"] == "verified"
    assert record["verification"]["report_to_block"] == status["synced_block"]
    html = audit_api.post(auditor, "/v1/audit/verify", params={"format": "html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "核验通过 · PASSED" in html.text


def test_verify_finds_an_unauthorised_record_and_the_record_view_shows_it(world, who, trail, contracts):
    """SAMR's oracle account anchors a 'served' record under the grant revoked a few blocks before:
    the verifier replays the decision at its block and names the record."""
    with world.scratch():
        audit_api = world.start_api("rogue")
        state = contracts.audit_log.oracle_state(who.samr.oracle.address)
        rogue = AuditEntry(grant_id=trail.published.tax_grant, requester=who.tax.operator.address,
                           dataset_id=trail.published.companies, dataset_version=1, outcome=Outcome.SERVED, reason=0,
                           checked_at_block=contracts.chain.block_number(), request_hash=hashlib.sha256(b"rq").digest(),
                           response_hash=hashlib.sha256(b"rs").digest())
        contracts.audit_log.append(who.samr.oracle, state.last_sequence + 1, [rogue])
        rid = hex(record_id(who.samr.oracle.address, state.last_sequence + 1))
        report = audit_api.post(who.audit.auditor, "/v1/audit/verify").json()
        assert report["ok"] is False and report["scope"]["records"] == 8
        assert [(v["code"], v["record_id"]) for v in report["violations"]] == [("unauthorised_access", rid)]
        record = audit_api.get(who.audit.auditor, f"/v1/audit/records/{rid}").json()
        assert record["verification"]["status"] == "violations"
        assert [v["code"] for v in record["verification"]["violations"]] == ["unauthorised_access"]
        # the others stay verified
        assert audit_api.get(who.audit.auditor, f"/v1/audit/records/{trail.served_companies[0]}").json()[
            "verification"]["status"] == "verified"


def test_operators_see_only_their_department(audit_api, who, trail):
    tax, psb = who.tax.operator, who.psb.operator
    assert_problem(audit_api.get(tax, "/v1/audit/records"), 403, "out-of-scope")
    assert_problem(audit_api.get(psb, "/v1/audit/records", params={"provider_dept": "SAMR"}), 403, "out-of-scope")
    assert len(_ids(audit_api.get(tax, "/v1/audit/records", params={"requester_dept": "TAX"}))) == 7
    assert set(_ids(audit_api.get(psb, "/v1/audit/records", params={"provider_dept": "PSB"}))) == set(trail.served_residents)
    assert audit_api.get(psb, f"/v1/audit/records/{trail.served_residents[0]}").status_code == 200
    assert_problem(audit_api.get(psb, f"/v1/audit/records/{trail.served_companies[0]}"), 403, "out-of-scope")
    daily = audit_api.get(psb, "/v1/audit/daily", params={"by": "provider"}).json()["days"]
    assert [(d["dept"]["code"], d["served"], d["denied"]) for d in daily] == [("PSB", 2, 0)]
    assert_problem(audit_api.post(tax, "/v1/audit/verify"), 403, "wrong-role")


def test_daily_counts_per_department(audit_api, who, trail):
    by_requester = audit_api.get(who.audit.auditor, "/v1/audit/daily").json()["days"]
    assert [(d["dept"]["code"], d["served"], d["denied"], d["total"]) for d in by_requester] == [("TAX", 5, 2, 7)]
    by_provider = audit_api.get(who.audit.auditor, "/v1/audit/daily", params={"by": "provider"}).json()["days"]
    assert sorted((d["dept"]["code"], d["served"], d["denied"]) for d in by_provider) == [("PSB", 2, 0), ("SAMR", 3, 2)]


def test_who_may_not_look(audit_api, who):
    assert_problem(audit_api.get(None, "/v1/audit/records"), 401, "unauthenticated")
    assert_problem(audit_api.get(who.samr.oracle, "/v1/audit/records"), 403, "wrong-role")
    assert_problem(audit_api.post(who.samr.oracle, "/v1/audit/sync"), 403, "wrong-role")
    assert_problem(audit_api.get(None, "/v1/audit/status"), 401, "unauthenticated")


@pytest.mark.parametrize(("path", "params", "status", "slug"), [
    ("/v1/audit/records", {"outcome": "lost"}, 422, "invalid-request"),
    ("/v1/audit/records", {"from": "last tuesday"}, 422, "invalid-time"),
    ("/v1/audit/records", {"to": "2026-13-45"}, 422, "invalid-time"),
    ("/v1/audit/records", {"limit": 0}, 422, "invalid-request"),
    ("/v1/audit/records", {"limit": 5000}, 422, "invalid-request"),
    ("/v1/audit/records", {"requester_dept": "NOPE"}, 422, "invalid-filter"),
    ("/v1/audit/records", {"requester": "0x1234"}, 422, "invalid-filter"),
    ("/v1/audit/records", {"cursor": "not-a-cursor"}, 422, "invalid-filter"),
    ("/v1/audit/records", {"cursor": "5:1", "offset": 3}, 422, "invalid-filter"),
    ("/v1/audit/records", {"dataset_id": "abc"}, 422, "invalid-request"),
    ("/v1/audit/records/xyz", {}, 422, "invalid-record-id"),
    ("/v1/audit/records/0", {}, 422, "invalid-record-id"),
    ("/v1/audit/records/0x" + "f" * 80, {}, 422, "invalid-request"),
    ("/v1/audit/records/0x" + "ab" * 20 + "0000000000000063", {}, 404, "unknown-record"),
    ("/v1/audit/daily", {"by": "everyone"}, 422, "invalid-request"),
])
def test_bad_input_is_a_problem(audit_api, who, path, params, status, slug):
    assert_problem(audit_api.get(who.audit.auditor, path, params=params), status, slug)


def test_without_an_index_the_audit_routes_answer_503(world, who):
    api = world.start_api("none", index=False)
    assert_problem(api.get(who.audit.auditor, "/v1/audit/records"), 503, "no-audit-index")
    assert_problem(api.post(who.audit.auditor, "/v1/audit/sync"), 503, "no-audit-index")


def test_an_unusable_index_file_is_503_not_500(world, who):
    (world.directory / "garbage.sqlite").write_bytes(b"this is not an audit index" * 100)
    api = world.start_api("garbage")
    problem = assert_problem(api.post(who.audit.auditor, "/v1/audit/sync"), 503, "audit-index-unusable")
    assert "garbage" not in problem["detail"]  # the file's path stays in the service's log
    assert_problem(api.get(who.audit.auditor, "/v1/audit/records"), 503, "audit-index-unusable")
