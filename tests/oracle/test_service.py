"""One signed query through a real oracle over real HTTP, in front of a real department API, on a
real chain: served, masked, refused for every reason, and always recorded."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from devtools.sample_data import companies, residents
from ledger.contracts.audit_log import OracleReason, Outcome, record_id, verify_hash_chain
from ledger.contracts.grants import AccessReason
from ledger.hashing import salted_hash
from protocol.receipt import receipt_signer
from requester.client import QueryRefused
from tests.oracle.conftest import DAY, TAX_FIELDS


def _anchor(running) -> None:
    assert running.oracle.batcher.anchor_once(force=True)


def test_served_query_returns_only_granted_fields_with_a_receipt(consortium, members, published, samr_oracle):
    target = companies()[321]
    result = samr_oracle.client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                                      published.company_fields, {"company_id": target["company_id"]})
    assert result.records == [{k: target[k] for k in TAX_FIELDS}]
    receipt = result.receipt
    assert receipt_signer(receipt) == members.samr.oracle.address
    assert receipt["outcome"] == Outcome.SERVED and receipt["sequence"] == 1
    assert receipt["record_id"] == hex(record_id(members.samr.oracle.address, 1))
    # the response hash opens with the salt the receipt gives: it commits to exactly these records
    assert receipt["response_hash"] == "0x" + salted_hash({"records": result.records}, bytes.fromhex(receipt["response_salt"][2:])).hex()


def test_receipt_matches_the_chain_after_anchoring(consortium, members, published, samr_oracle):
    result = samr_oracle.client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                                      published.company_fields, {"company_id": companies()[5]["company_id"]})
    _anchor(samr_oracle)
    (record,) = list(consortium.audit_log.records())
    receipt = result.receipt
    assert hex(record.record_id) == receipt["record_id"]
    assert "0x" + record.entry.request_hash.hex() == receipt["request_hash"]
    assert "0x" + record.entry.response_hash.hex() == receipt["response_hash"]
    assert record.entry.checked_at_block == receipt["checked_at_block"]
    assert record.entry.requester == members.tax.operator.address
    state = consortium.audit_log.oracle_state(members.samr.oracle.address)
    verify_hash_chain([record], state.head)
    assert consortium.grants.grant(published.tax_grant).used == 1


def test_masking_by_classification_policy(consortium, members, published, psb_oracle):
    """A sensitive dataset's id number shows its first 6 and last 4 digits unless the grant unmasks it."""
    ds = consortium.catalog.dataset(published.residents)
    mask = ds.field_mask(["id_number", "name"])
    grant = consortium.grants.request(members.tax.operator, published.residents, mask, "verify taxpayers", DAY, 10)
    consortium.grants.approve(members.psb.operator, grant, mask, DAY, 10)
    person = residents()[11]
    result = psb_oracle.client.query(members.tax.operator, members.tax.id, published.residents, grant, mask,
                                     {"id_number": person["id_number"]})
    assert result.records == [{"id_number": person["id_number"][:6] + "********" + person["id_number"][-4:], "name": person["name"]}]
    unmasked = consortium.grants.request(members.tax.operator, published.residents, mask, "court order", DAY, 10,
                                         unmasked_fields=ds.field_mask(["id_number"]))
    consortium.grants.approve(members.psb.operator, unmasked, mask, DAY, 10)
    clear = psb_oracle.client.query(members.tax.operator, members.tax.id, published.residents, unmasked, mask,
                                    {"id_number": person["id_number"]})
    assert clear.records[0]["id_number"] == person["id_number"]


def _refused(running, members, published, *, status, reason, **kw):
    args = dict(signer=members.tax.operator, dept_id=members.tax.id, dataset_id=published.companies,
                grant_id=published.tax_grant, fields=published.company_fields,
                params={"company_id": companies()[1]["company_id"]})
    args.update(kw)
    with pytest.raises(QueryRefused) as err:
        running.client.query(**args)
    assert err.value.status == status, err.value.problem
    assert err.value.reason == reason, err.value.problem
    assert receipt_signer(err.value.receipt) == running.oracle.service.signer.address
    return err.value


def test_fields_outside_the_grant_are_refused_and_recorded(consortium, members, published, samr_oracle):
    ds = consortium.catalog.dataset(published.companies)
    refused = _refused(samr_oracle, members, published, status=403, reason="FIELDS_NOT_GRANTED",
                       fields=ds.field_mask(["company_id", "legal_representative"]))
    assert refused.receipt["outcome"] == Outcome.DENIED
    _anchor(samr_oracle)
    (record,) = list(consortium.audit_log.records())
    assert (record.entry.outcome, record.entry.reason) == (Outcome.DENIED, AccessReason.FIELDS_NOT_GRANTED)


def test_revocation_stops_the_next_query(consortium, members, published, samr_oracle):
    samr_oracle.client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                             published.company_fields, {"company_id": companies()[2]["company_id"]})
    consortium.grants.revoke(members.samr.operator, published.tax_grant, "purpose fulfilled")
    _refused(samr_oracle, members, published, status=403, reason="REVOKED")


def test_expired_grant_is_refused(consortium, members, published, samr_oracle, ganache):
    ganache.increase_time(31 * DAY)
    _refused(samr_oracle, members, published, status=403, reason="EXPIRED")


def test_replayed_nonce_is_refused_and_recorded(consortium, members, published, samr_oracle):
    body, _, _ = samr_oracle.client.signed_body(members.tax.operator, members.tax.id, published.companies,
                                                published.tax_grant, published.company_fields,
                                                {"company_id": companies()[3]["company_id"]})
    first = httpx.post(f"{samr_oracle.url}/v1/query", json=body)
    again = httpx.post(f"{samr_oracle.url}/v1/query", json=body)
    assert first.status_code == 200
    assert again.status_code == 409 and again.json()["reason"] == "NONCE_REPLAYED"
    assert samr_oracle.oracle.outbox.pending_count() == 2


def test_forged_signature_is_refused_and_recorded_without_requester(consortium, members, published, samr_oracle):
    body, _, _ = samr_oracle.client.signed_body(members.outsider, members.tax.id, published.companies,
                                                published.tax_grant, published.company_fields, {"company_id": "x"})
    body["query"]["requester"] = members.tax.operator.address  # claims to be tax's operator
    reply = httpx.post(f"{samr_oracle.url}/v1/query", json=body)
    assert reply.status_code == 401 and reply.json()["reason"] == "BAD_SIGNATURE"
    _anchor(samr_oracle)
    (record,) = list(consortium.audit_log.records())
    assert record.entry.requester == "0x" + "00" * 20 and record.entry.reason == OracleReason.BAD_SIGNATURE


def test_tampered_params_are_refused(consortium, members, published, samr_oracle):
    body, _, _ = samr_oracle.client.signed_body(members.tax.operator, members.tax.id, published.companies,
                                                published.tax_grant, published.company_fields, {"company_id": "A"})
    body["params"] = {"company_id": "B"}
    reply = httpx.post(f"{samr_oracle.url}/v1/query", json=body)
    assert reply.status_code == 400 and reply.json()["reason"] == "MALFORMED_REQUEST"


def test_expired_deadline_is_refused(consortium, members, published, samr_oracle):
    _refused(samr_oracle, members, published, status=401, reason="DEADLINE_PASSED", ttl=-5)


def test_unknown_dataset_is_refused_and_recorded_as_no_dataset(consortium, members, published, samr_oracle):
    refused = _refused(samr_oracle, members, published, status=404, reason="UNKNOWN_DATASET", dataset_id=999)
    assert refused.receipt["dataset_id"] == 0
    _anchor(samr_oracle)
    assert [r.entry.dataset_id for r in consortium.audit_log.records()] == [0]


def test_unknown_parameter_is_refused(consortium, members, published, samr_oracle):
    _refused(samr_oracle, members, published, status=400, reason="MALFORMED_REQUEST", params={"salary": "1"})


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400),
    (b"[]", 400),
    (b'{"query": {}, "signature": "0x00", "params": {}, "paramsSalt": "0x00"}', 400),
    (b"{}", 400),
])
def test_malformed_bodies_get_4xx(samr_oracle, body, status):
    reply = httpx.post(f"{samr_oracle.url}/v1/query", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == status
    assert reply.headers["content-type"].startswith("application/problem+json")


def test_oversized_body_is_413(samr_oracle):
    reply = httpx.post(f"{samr_oracle.url}/v1/query", content=b"x" * 70_000)
    assert reply.status_code == 413


def test_source_down_is_a_502_and_recorded_as_source_failure(consortium, members, published, samr_oracle, company_api):
    info = samr_oracle.oracle.service.dataset_info(published.companies)
    info.relay.close()
    from dataclasses import replace

    from devtools.devnet import free_port
    from oracle.relay import DepartmentApi

    info.relay = DepartmentApi(replace(info.relay.config, base_url=f"http://127.0.0.1:{free_port()}"))
    refused = _refused(samr_oracle, members, published, status=502, reason="SOURCE_UNAVAILABLE")
    assert refused.receipt["outcome"] == Outcome.SOURCE_FAILURE
    _anchor(samr_oracle)
    (record,) = list(consortium.audit_log.records())
    assert record.entry.outcome == Outcome.SOURCE_FAILURE
    assert consortium.grants.grant(published.tax_grant).used == 0


def test_a_query_sent_again_while_the_source_is_down_is_refused_as_the_replay_it_is(consortium, members, published,
                                                                                   samr_oracle, company_api):
    """A requester whose answer was lost sends the same signed query again; the department API is down
    by then. The second record of one signed query must say it is a replay (409 NONCE_REPLAYED), not a
    second access that failed at the source (it said SOURCE_UNAVAILABLE before: the fault soak counted
    70 such pairs in 1,000 faults)."""
    from dataclasses import replace

    from devtools.devnet import free_port
    from oracle.relay import DepartmentApi

    body, _, _ = samr_oracle.client.signed_body(members.tax.operator, members.tax.id, published.companies,
                                                published.tax_grant, published.company_fields,
                                                {"company_id": companies()[5]["company_id"]})
    assert httpx.post(f"{samr_oracle.url}/v1/query", json=body).status_code == 200
    info = samr_oracle.oracle.service.dataset_info(published.companies)
    info.relay.close()
    info.relay = DepartmentApi(replace(info.relay.config, base_url=f"http://127.0.0.1:{free_port()}"))
    again = httpx.post(f"{samr_oracle.url}/v1/query", json=body)
    assert again.status_code == 409 and again.json()["reason"] == "NONCE_REPLAYED", again.text
    _anchor(samr_oracle)
    served, replay = list(consortium.audit_log.records())
    assert served.entry.outcome == Outcome.SERVED
    assert (replay.entry.outcome, replay.entry.reason) == (Outcome.DENIED, OracleReason.NONCE_REPLAYED)
    assert consortium.grants.grant(published.tax_grant).used == 1


def test_source_answering_floats_is_a_502_and_recorded(consortium, members, published, samr_oracle):
    """A value with no exact canonical form (a float) cannot be committed to by a hash, so it is not
    served: a clear source error, audited as a source failure, never a 500."""
    from dataclasses import replace

    from fastapi import FastAPI

    from devtools.devnet import free_port
    from oracle.relay import DepartmentApi
    from serving import ServerThread

    app = FastAPI()

    @app.get("/companies")
    def floats() -> dict:
        return {"records": [{"company_id": "X", "name": "n", "registration_date": "2020-01-01", "status": 1.5}]}

    server = ServerThread(app, free_port()).start()
    try:
        info = samr_oracle.oracle.service.dataset_info(published.companies)
        info.relay.close()
        info.relay = DepartmentApi(replace(info.relay.config, base_url=server.url))
        refused = _refused(samr_oracle, members, published, status=502, reason="SOURCE_BAD_RESPONSE")
        assert refused.receipt["outcome"] == Outcome.SOURCE_FAILURE
    finally:
        server.stop()


def test_concurrent_queries_cannot_overrun_the_quota(consortium, members, published, samr_oracle):
    """Twelve queries at once against a grant with room for five: exactly five are served, even
    though every one of them passed the early quota check before any was recorded."""
    grant = consortium.grants.request(members.tax.operator, published.companies, published.company_fields,
                                      "quota race", 30 * DAY, 5)
    consortium.grants.approve(members.samr.operator, grant, published.company_fields, 30 * DAY, 5)
    barrier = threading.Barrier(12)

    def ask(index: int) -> str:
        barrier.wait()
        try:
            samr_oracle.client.query(members.tax.operator, members.tax.id, published.companies, grant,
                                     published.company_fields, {"company_id": companies()[index]["company_id"]})
            return "SERVED"
        except QueryRefused as exc:
            return exc.reason

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(ask, range(40, 52)))
    assert sorted(outcomes) == ["QUOTA_PENDING"] * 7 + ["SERVED"] * 5
    while samr_oracle.oracle.outbox.pending_count():
        _anchor(samr_oracle)
    assert consortium.grants.grant(grant).used == 5
    # and once on chain, the chain's own count refuses the next one
    _refused(samr_oracle, members, published, status=403, reason="QUOTA_EXHAUSTED", grant_id=grant)


def test_a_replay_after_its_nonce_is_pruned_is_refused_by_the_deadline(consortium, members, published, samr_oracle):
    outbox = samr_oracle.oracle.outbox
    body, query, _ = samr_oracle.client.signed_body(members.tax.operator, members.tax.id, published.companies,
                                                    published.tax_grant, published.company_fields,
                                                    {"company_id": companies()[4]["company_id"]}, ttl=2)
    assert httpx.post(f"{samr_oracle.url}/v1/query", json=body).status_code == 200
    assert outbox.prune_nonces() == 0  # before its deadline (and the grace after it) the nonce is kept
    again = httpx.post(f"{samr_oracle.url}/v1/query", json=body)
    assert again.status_code == 409 and again.json()["reason"] == "NONCE_REPLAYED"
    while time.time() <= query.deadline + 0.5:
        time.sleep(0.2)
    outbox.nonce_grace_seconds = 0  # prune as soon as the deadline has passed (the default waits a minute more)
    assert outbox.prune_nonces() == 1 and not outbox.nonce_used(members.tax.operator.address, str(query.nonce))
    replay = httpx.post(f"{samr_oracle.url}/v1/query", json=body)
    assert replay.status_code == 401 and replay.json()["reason"] == "DEADLINE_PASSED"
    assert "records" not in replay.json() and outbox.pending_count() == 3  # the replay is refused and recorded
    assert not outbox.nonce_used(members.tax.operator.address, str(query.nonce))
