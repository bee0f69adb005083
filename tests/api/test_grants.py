"""Grants through the real HTTP API: each party's path (request, list, approve narrowing, reject,
revoke, cancel, co-approve) and its refusals, answered before any transaction is sent."""

from __future__ import annotations

from devtools.sample_data import COMPANY_FIELDS
from ledger.contracts.catalog import Classification
from ledger.contracts.grants import GrantStatus
from tests.api.conftest import assert_problem, register_companies
from tests.oracle.conftest import DAY, TAX_FIELDS


def _request(api, who, dataset_id: int, fields=COMPANY_FIELDS, **extra) -> dict:
    body = {"dataset_id": dataset_id, "fields": list(fields), "purpose": "tax registration of new companies",
            "duration_seconds": 30 * DAY, "quota": 100, **extra}
    reply = api.post(who, "/v1/grants", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_request_list_approve_narrowing_and_revoke(consortium, members, serve_api):
    samr = serve_api([members.samr.operator])  # market supervision's service
    tax = serve_api([members.tax.operator])  # the tax bureau's service
    samr_op, tax_op = members.samr.operator, members.tax.operator
    dataset_id = register_companies(samr, samr_op)["id"]

    grant = _request(tax, tax_op, dataset_id, unmasked_fields=["legal_representative"])
    grant_id = grant["id"]
    assert grant["state"] == "requested" and grant["requester"]["code"] == "TAX" and grant["owner"]["code"] == "SAMR"
    assert grant["fields"] == list(COMPANY_FIELDS) and grant["unmasked_fields"] == ["legal_representative"]
    other = _request(tax, tax_op, dataset_id, fields=["name"])["id"]

    # SAMR sees both as incoming requests; TAX sees them as outgoing; neither sees them the other way
    def listed(api, who, **params) -> list[int]:
        reply = api.get(who, "/v1/grants", params=params)
        assert reply.status_code == 200, reply.text
        return [g["id"] for g in reply.json()["grants"]]

    assert listed(samr, samr_op, direction="incoming", state="requested") == [other, grant_id]
    assert listed(samr, samr_op, direction="outgoing") == []
    assert listed(tax, tax_op, direction="outgoing") == [other, grant_id]
    assert listed(tax, tax_op, limit=1) == [other]
    page = tax.get(tax_op, "/v1/grants", params={"limit": 1}).json()
    assert page["next_before"] == other
    assert listed(tax, tax_op, limit=1, before=page["next_before"]) == [grant_id]

    # SAMR approves, narrowing fields, duration and quota, and unmasking nothing
    reply = samr.post(samr_op, f"/v1/grants/{grant_id}/approve",
                      json={"fields": list(TAX_FIELDS), "duration_seconds": 7 * DAY, "quota": 5, "unmasked_fields": []})
    assert reply.status_code == 200, reply.text
    change = reply.json()
    approved = change["grant"]
    assert approved["state"] == "active" and approved["fields"] == list(TAX_FIELDS)
    assert approved["duration_seconds"] == 7 * DAY and approved["quota"] == 5 and approved["unmasked_fields"] == []
    assert change["transaction"]["block_number"] == consortium.chain.block_number()
    on_chain = consortium.grants.grant(grant_id)
    assert on_chain.status is GrantStatus.ACTIVE and on_chain.quota == 5 and on_chain.unmasked_fields == 0
    assert on_chain.fields == consortium.catalog.dataset(dataset_id).field_mask(TAX_FIELDS)
    assert on_chain.expires_at == on_chain.activated_at + 7 * DAY
    assert tax.get(tax_op, f"/v1/grants/{grant_id}").json() == approved

    # SAMR rejects the other request, then revokes the first grant; TAX cancels nothing left to cancel
    reply = samr.post(samr_op, f"/v1/grants/{other}/reject", json={"reason": "no legal basis"})
    assert reply.status_code == 200 and reply.json()["grant"]["state"] == "rejected"
    reply = samr.post(samr_op, f"/v1/grants/{grant_id}/revoke", json={"reason": "purpose fulfilled"})
    assert reply.status_code == 200 and reply.json()["grant"]["state"] == "revoked"
    assert consortium.grants.grant(grant_id).status is GrantStatus.REVOKED
    assert listed(tax, tax_op, state="revoked") == [grant_id]

    before = consortium.chain.block_number()
    assert assert_problem(tax.post(tax_op, f"/v1/grants/{other}/cancel"), 409, "invalid-grant-state")["state"] == "rejected"
    assert_problem(samr.post(samr_op, f"/v1/grants/{grant_id}/approve"), 409, "invalid-grant-state")
    assert_problem(samr.post(samr_op, f"/v1/grants/{grant_id}/revoke", json={"reason": "again"}), 409, "invalid-grant-state")
    assert consortium.chain.block_number() == before

    # a request still open can be cancelled by its requester
    third = _request(tax, tax_op, dataset_id, fields=["status"])["id"]
    reply = tax.post(tax_op, f"/v1/grants/{third}/cancel")
    assert reply.status_code == 200 and reply.json()["grant"]["state"] == "cancelled"


def test_wrong_role_is_refused_before_any_transaction(consortium, members, serve_api):
    api = serve_api([members.samr.operator, members.tax.operator, members.psb.operator])
    samr_op, tax_op, psb_op = members.samr.operator, members.tax.operator, members.psb.operator
    dataset_id = register_companies(api, samr_op)["id"]
    grant_id = _request(api, tax_op, dataset_id)["id"]
    before = consortium.chain.block_number()

    # the tax bureau's operator approving market supervision's grant: 403, naming both departments
    problem = assert_problem(api.post(tax_op, f"/v1/grants/{grant_id}/approve"), 403, "wrong-role")
    assert "SAMR" in problem["detail"] and "TAX" in problem["detail"] and problem["grant_id"] == grant_id
    for action, body in (("reject", {"reason": "x"}), ("revoke", {"reason": "x"})):
        assert_problem(api.post(psb_op, f"/v1/grants/{grant_id}/{action}", json=body), 403, "wrong-role")
    assert_problem(api.post(samr_op, f"/v1/grants/{grant_id}/cancel"), 403, "wrong-role")  # only the requester cancels
    # an operator is not an auditor
    assert assert_problem(api.post(tax_op, f"/v1/grants/{grant_id}/co-approve"), 403, "wrong-role")["role"] == "AUDITOR"
    assert consortium.chain.block_number() == before
    assert consortium.grants.grant(grant_id).status is GrantStatus.REQUESTED

    # approvals may only narrow, over known fields
    problem = assert_problem(api.post(samr_op, f"/v1/grants/{grant_id}/approve", json={"quota": 101}), 422, "not-narrowing")
    assert "100" in problem["detail"]
    assert_problem(api.post(samr_op, f"/v1/grants/{grant_id}/approve", json={"duration_seconds": 31 * DAY}), 422, "not-narrowing")
    assert_problem(api.post(samr_op, f"/v1/grants/{grant_id}/approve", json={"fields": ["salary"]}), 422, "unknown-field")
    # requests: own dataset, unknown dataset, unknown field, unmasked beyond the fields
    assert_problem(api.post(samr_op, "/v1/grants", json={"dataset_id": dataset_id, "fields": ["name"], "purpose": "p",
                                                        "duration_seconds": DAY, "quota": 1}), 409, "own-dataset")
    assert_problem(api.post(tax_op, "/v1/grants", json={"dataset_id": 77, "fields": ["name"], "purpose": "p",
                                                       "duration_seconds": DAY, "quota": 1}), 404, "unknown-dataset")
    assert_problem(api.post(tax_op, "/v1/grants", json={"dataset_id": dataset_id, "fields": ["salary"], "purpose": "p",
                                                       "duration_seconds": DAY, "quota": 1}), 422, "unknown-field")
    assert_problem(api.post(tax_op, "/v1/grants", json={"dataset_id": dataset_id, "fields": ["name"], "purpose": "p",
                                                       "duration_seconds": DAY, "quota": 1, "unmasked_fields": ["status"]}),
                   422, "invalid-fields")
    # unknown grants
    assert_problem(api.get(tax_op, "/v1/grants/99"), 404, "unknown-grant")
    assert_problem(api.post(samr_op, "/v1/grants/99/approve"), 404, "unknown-grant")
    assert consortium.chain.block_number() == before


def test_secret_dataset_needs_an_independent_auditors_co_approval(consortium, members, serve_api):
    auditor = members.audit.auditor
    audit = serve_api([auditor])  # the audit office's service
    api = serve_api([members.samr.operator, members.tax.operator])
    samr_op, tax_op = members.samr.operator, members.tax.operator
    dataset_id = register_companies(api, samr_op, level="secret")["id"]
    assert consortium.catalog.dataset(dataset_id).classification is Classification.SECRET
    grant_id = _request(api, tax_op, dataset_id, fields=TAX_FIELDS)["id"]

    # co-approval before the owner's approval: the grant is not awaiting it
    assert_problem(audit.post(auditor, f"/v1/grants/{grant_id}/co-approve"), 409, "invalid-grant-state")
    reply = api.post(samr_op, f"/v1/grants/{grant_id}/approve")
    assert reply.status_code == 200 and reply.json()["grant"]["state"] == "awaiting_co_approval"
    # the auditor finds it among every grant of the consortium
    reply = audit.get(auditor, "/v1/grants", params={"direction": "all", "state": "awaiting_co_approval"})
    assert [g["id"] for g in reply.json()["grants"]] == [grant_id]
    assert audit.get(auditor, "/v1/grants").json()["grants"] == []  # the audit office is party to none
    # a party cannot co-approve, and an auditor cannot approve
    assert_problem(api.post(tax_op, f"/v1/grants/{grant_id}/co-approve"), 403, "wrong-role")
    assert_problem(audit.post(auditor, f"/v1/grants/{grant_id}/approve"), 403, "wrong-role")

    reply = audit.post(auditor, f"/v1/grants/{grant_id}/co-approve")
    assert reply.status_code == 200, reply.text
    assert reply.json()["grant"]["state"] == "active"
    assert consortium.grants.grant(grant_id).status is GrantStatus.ACTIVE

    # an independent auditor may also reject a grant awaiting co-approval
    second = _request(api, tax_op, dataset_id, fields=["name"])["id"]
    api.post(samr_op, f"/v1/grants/{second}/approve")
    reply = audit.post(auditor, f"/v1/grants/{second}/reject", json={"reason": "disproportionate"})
    assert reply.status_code == 200 and reply.json()["grant"]["state"] == "rejected"
