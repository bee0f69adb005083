"""The whole requester/provider path through the real HTTP API and a real running oracle: register,
publish from a real CSV file, request, approve narrowing, query, revoke, denied; and the oracle's
refusals and failures as problems."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from devtools.devnet import free_port
from ledger.contracts.audit_log import AuditEntry, Outcome, chain_step, record_id
from ledger.contracts.grants import AccessReason
from ledger.deployment import Consortium
from ledger.keys import Signer
from oracle.config import DatasetConfig
from protocol import commitments
from protocol.receipt import Receipt, receipt_signer
from serving import ServerThread
from tests.api.conftest import (
    RunningApi,
    assert_problem,
    company_rows,
    register_companies,
    write_csv,
)
from tests.conftest import Members
from tests.oracle.conftest import (
    DAY,
    TAX_FIELDS,
    RunningOracle,
    oracle_config,
    start_oracle,
)


@dataclass
class World:
    samr: RunningApi  # market supervision's service
    tax: RunningApi  # the tax bureau's service
    dataset_id: int
    oracle: RunningOracle  # market supervision's oracle, in front of its company registry


@pytest.fixture
def world(consortium: Consortium, members: Members, serve_api, company_api: ServerThread, tmp_path: Path) -> Iterator[World]:
    """SAMR registers its company registry and publishes a version from a real CSV file through its
    service, then runs its oracle and publishes the oracle's URL in the registry."""
    samr = serve_api([members.samr.operator])
    tax = serve_api([members.tax.operator], receipts_dir=tmp_path / "tax-receipts")
    dataset_id = register_companies(samr, members.samr.operator)["id"]
    with write_csv(tmp_path / "companies.csv", company_rows(40)).open("rb") as handle:
        reply = samr.post(members.samr.operator, f"/v1/datasets/{dataset_id}/versions",
                          files={"file": ("companies.csv", handle, "text/csv")})
    assert reply.status_code == 201, reply.text
    datasets = {dataset_id: DatasetConfig(id=dataset_id, base_url=company_api.url, path="/companies",
                                          params=("company_id", "status"), timeout_seconds=2.0)}
    oracle = start_oracle(oracle_config(tmp_path, consortium, "SAMR", datasets), members.samr.oracle, consortium)
    try:
        consortium.registry.set_oracle_url(members.samr.operator, oracle.url)
        yield World(samr, tax, dataset_id, oracle)
    finally:
        oracle.stop()


def test_requester_and_provider_path_through_a_real_oracle(consortium, members, world: World, tmp_path: Path):
    samr, tax, samr_op, tax_op = world.samr, world.tax, members.samr.operator, members.tax.operator

    # TAX finds the dataset and asks for five fields
    found = tax.get(tax_op, "/v1/datasets", params={"q": "company", "owner": "samr"}).json()["datasets"]
    assert [d["id"] for d in found] == [world.dataset_id] and found[0]["version_count"] == 1
    reply = tax.post(tax_op, "/v1/grants", json={
        "dataset_id": world.dataset_id, "fields": [*TAX_FIELDS, "legal_representative"],
        "purpose": "tax registration of new companies", "duration_seconds": 30 * DAY, "quota": 10})
    assert reply.status_code == 201, reply.text
    grant_id = reply.json()["id"]

    # SAMR approves four of them, for a week, five queries
    incoming = samr.get(samr_op, "/v1/grants", params={"direction": "incoming", "state": "requested"}).json()["grants"]
    assert [g["id"] for g in incoming] == [grant_id]
    reply = samr.post(samr_op, f"/v1/grants/{grant_id}/approve",
                      json={"fields": list(TAX_FIELDS), "duration_seconds": 7 * DAY, "quota": 5})
    assert reply.status_code == 200 and reply.json()["grant"]["state"] == "active"

    # TAX queries through SAMR's oracle (found in the registry): exactly the granted fields, and a receipt
    target = company_rows(40)[7]
    reply = tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": {"company_id": target["company_id"]}})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["records"] == [{k: target[k] for k in TAX_FIELDS}]
    assert answer["fields"] == list(TAX_FIELDS) and answer["oracle_url"] == world.oracle.url
    assert receipt_signer(answer["receipt"]) == members.samr.oracle.address == answer["oracle"]
    assert answer["receipt"]["outcome"] == Outcome.SERVED and answer["receipt"]["requester"] == tax_op.address

    # a field outside the narrowed grant: the oracle refuses, with its reason and a signed receipt
    reply = tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "fields": ["legal_representative"],
                                                  "params": {"company_id": target["company_id"]}})
    problem = assert_problem(reply, 403, "oracle-refused")
    assert problem["reason"] == "FIELDS_NOT_GRANTED" and problem["oracle_status"] == 403
    assert receipt_signer(problem["receipt"]) == members.samr.oracle.address
    # parameters the provider does not accept
    problem = assert_problem(tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": {"salary": "1"}}),
                             422, "oracle-refused")
    assert problem["reason"] == "MALFORMED_REQUEST"

    # SAMR revokes; TAX's next query is denied by the oracle, and the denial is evidence on chain
    reply = samr.post(samr_op, f"/v1/grants/{grant_id}/revoke", json={"reason": "purpose fulfilled"})
    assert reply.status_code == 200 and reply.json()["grant"]["state"] == "revoked"
    reply = tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": {"company_id": target["company_id"]}})
    problem = assert_problem(reply, 403, "oracle-refused")
    assert problem["reason"] == "REVOKED" and problem["receipt"]["outcome"] == Outcome.DENIED
    assert world.oracle.oracle.batcher.anchor_once(force=True)
    records = {hex(r.record_id): r for r in consortium.audit_log.records()}
    denial = records[problem["receipt"]["record_id"]]
    assert denial.entry.reason == AccessReason.REVOKED and denial.entry.requester == tax_op.address
    assert records[answer["receipt"]["record_id"]].entry.outcome is Outcome.SERVED
    # TAX's service kept every receipt (receipts_dir), for an auditor's `audit verify --receipts`
    kept = {p.name: json.loads(p.read_text()) for p in (tmp_path / "tax-receipts").glob("receipt-*.json")}
    assert sorted(r["sequence"] for r in kept.values()) == [1, 2, 3, 4]
    assert answer["receipt"] in kept.values() and problem["receipt"] in kept.values()


def test_query_refusals_before_the_oracle_and_oracle_failures(consortium, members, world: World, serve_api, company_api):
    tax, tax_op = world.tax, members.tax.operator
    mask = consortium.catalog.dataset(world.dataset_id).field_mask(TAX_FIELDS)
    grant_id = consortium.grants.request(tax_op, world.dataset_id, mask, "tax registration", 7 * DAY, 5)
    consortium.grants.approve(members.samr.operator, grant_id, mask, 7 * DAY, 5)
    params = {"company_id": company_rows(1)[0]["company_id"]}

    # PSB's operator is not the grantee; SAMR's oracle account is no operator; unknown grant; wrong dataset
    psb = serve_api([members.psb.operator, members.psb.oracle])
    problem = assert_problem(psb.post(members.psb.operator, "/v1/queries", json={"grant_id": grant_id, "params": params}),
                             403, "not-grantee")
    assert "TAX" in problem["detail"] and "PSB" in problem["detail"]
    assert_problem(psb.post(members.psb.oracle, "/v1/queries", json={"grant_id": grant_id, "params": params}), 403, "wrong-role")
    assert_problem(tax.post(tax_op, "/v1/queries", json={"grant_id": 99, "params": params}), 404, "unknown-grant")
    assert_problem(tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "dataset_id": 99, "params": params}),
                   422, "dataset-mismatch")
    assert_problem(tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "fields": ["salary"], "params": params}),
                   422, "unknown-field")
    assert world.oracle.oracle.outbox.pending_count() == 0  # none of these reached the oracle

    # the provider's oracle is down: its registered URL answers nothing
    closed = f"http://127.0.0.1:{free_port()}"
    consortium.registry.set_oracle_url(members.samr.operator, closed)
    problem = assert_problem(tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": params}),
                             502, "oracle-unreachable")
    assert problem["oracle_url"] == closed
    # a service configured with the oracle's URL for SAMR reaches it whatever the registry says
    configured = serve_api([tax_op], oracle_urls={"samr": world.oracle.url})
    reply = configured.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": params})
    assert reply.status_code == 200, reply.text
    assert reply.json()["oracle_url"] == world.oracle.url
    # no URL at all
    consortium.registry.set_oracle_url(members.samr.operator, "")
    assert_problem(tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": params}), 502, "oracle-unknown")
    # something that is not SAMR's oracle answers at the registered URL (the sample company registry):
    # its 404 is not taken as the oracle's refusal
    consortium.registry.set_oracle_url(members.samr.operator, company_api.url)
    problem = assert_problem(tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": params}),
                             502, "oracle-bad-answer")
    assert problem["oracle_status"] == 404
    # a rogue oracle answers with records and a receipt signed by a key that is no oracle of SAMR
    rogue = ServerThread(rogue_oracle_app(members.outsider), free_port()).start()
    try:
        consortium.registry.set_oracle_url(members.samr.operator, rogue.url)
        reply = tax.post(tax_op, "/v1/queries", json={"grant_id": grant_id, "params": params})
        assert "records" not in assert_problem(reply, 502, "receipt-not-from-oracle")
    finally:
        rogue.stop()


def rogue_oracle_app(signer: Signer) -> FastAPI:
    """A malicious oracle on purpose: answers every query with made-up records and a receipt signed by
    ``signer`` (a real signature, by an account that holds no ORACLE role)."""
    app = FastAPI()

    @app.post("/v1/query")
    def query(body: dict) -> dict:
        records = [{"name": "made up"}]
        entry = AuditEntry(1, signer.address, 1, 1, Outcome.SERVED, 0, 1, b"\x11" * 32,
                           commitments.response_hash(records, b"\x22" * 32))
        receipt = Receipt.signed(  # well-formed and consistent in itself: only its signer gives it away
            signer, record_id=hex(record_id(signer.address, 1)), oracle=signer.address, sequence=1, dataset_id=1,
            dataset_version=1, grant_id=1, requester=signer.address, outcome=0, reason=0, checked_at_block=1,
            request_hash="0x" + "11" * 32, response_hash="0x" + entry.response_hash.hex(), request_salt="0x" + "33" * 32,
            response_salt="0x" + "22" * 32, record_hash="0x" + entry.record_hash().hex(), previous_head="0x" + "00" * 32,
            chain_head="0x" + chain_step(b"\x00" * 32, record_id(signer.address, 1), entry).hex())
        return {"records": records, "receipt": receipt.as_dict()}

    return app
