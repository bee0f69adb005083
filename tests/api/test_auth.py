"""Who the caller is: bearer tokens, signed requests (fresh, once), membership on chain, and keys held."""

from __future__ import annotations

import json
import time

from api.auth import HEADER_SIGNATURE, sign_request
from tests.api.conftest import PROBLEM_PREFIX, assert_problem, register_companies
from tests.oracle.conftest import DAY


def _unauthenticated(reply, slug: str = "unauthenticated") -> dict:
    problem = assert_problem(reply, 401, slug)
    assert reply.headers["www-authenticate"].startswith("Bearer realm=")
    return problem


def test_no_or_forged_credentials_are_401_with_a_challenge(consortium, members, serve_api):
    api = serve_api([members.tax.operator])
    _unauthenticated(api.get(None, "/v1/datasets"))
    _unauthenticated(api.post(None, "/v1/grants", json={}))  # 401 before the body is even looked at
    _unauthenticated(api.get(None, "/v1/datasets", headers={"Authorization": "Bearer " + "x" * 43}), "invalid-token")
    forged = api.tokens[members.tax.operator.address][:-2] + "AA"
    _unauthenticated(api.get(None, "/v1/datasets", headers={"Authorization": f"Bearer {forged}"}), "invalid-token")
    _unauthenticated(api.get(None, "/v1/datasets", headers={"Authorization": "Basic dGF4OnRheA=="}))
    assert api.get(members.tax.operator, "/v1/datasets").status_code == 200


def test_signed_requests_are_fresh_and_used_once(consortium, members, serve_api):
    samr_op, tax_op = members.samr.operator, members.tax.operator
    api = serve_api([samr_op, tax_op])
    dataset_id = register_companies(api, samr_op)["id"]

    target = "/v1/datasets?q=company&owner=SAMR"
    reply = api.signed(tax_op, "GET", target)
    assert reply.status_code == 200, reply.text
    assert [d["id"] for d in reply.json()["datasets"]] == [dataset_id]

    # a write, signed over its body
    body = json.dumps({"dataset_id": dataset_id, "fields": ["name"], "purpose": "check names",
                       "duration_seconds": DAY, "quota": 3}).encode()
    headers = sign_request(tax_op, "POST", "/v1/grants", body)
    reply = api.http.post("/v1/grants", content=body, headers={**headers, "Content-Type": "application/json"})
    assert reply.status_code == 201, reply.text
    assert consortium.grants.grant_count() == 1

    # the same signed request again: a replay, refused, and nothing sent to the chain
    before = consortium.chain.block_number()
    again = api.http.post("/v1/grants", content=body, headers={**headers, "Content-Type": "application/json"})
    _unauthenticated(again, "replayed-request")
    assert consortium.grants.grant_count() == 1 and consortium.chain.block_number() == before

    # the headers of one request on another body, path or method prove nothing
    other = body.replace(b"check names", b"check all!!")
    _unauthenticated(api.http.post("/v1/grants", content=other, headers={**sign_request(tax_op, "POST", "/v1/grants", body),
                                                                          "Content-Type": "application/json"}), "invalid-signature")
    _unauthenticated(api.http.get("/v1/datasets?q=tax", headers=sign_request(tax_op, "GET", "/v1/datasets?q=company")),
                     "invalid-signature")
    _unauthenticated(api.http.post("/v1/grants", headers=sign_request(tax_op, "GET", "/v1/grants")), "invalid-signature")
    # signed by another key than the account it claims
    forged = sign_request(members.outsider, "GET", "/v1/datasets")
    forged["X-Govshare-Account"] = tax_op.address
    _unauthenticated(api.http.get("/v1/datasets", headers=forged), "invalid-signature")
    # stale, from the future, malformed
    _unauthenticated(api.signed(tax_op, "GET", "/v1/datasets", timestamp=int(time.time()) - 3600), "stale-signature")
    _unauthenticated(api.signed(tax_op, "GET", "/v1/datasets", timestamp=int(time.time()) + 3600), "stale-signature")
    _unauthenticated(api.http.get("/v1/datasets", headers={**sign_request(tax_op, "GET", "/v1/datasets"),
                                                           HEADER_SIGNATURE: "0x1234"}), "invalid-signature")
    _unauthenticated(api.http.get("/v1/datasets", headers={HEADER_SIGNATURE: "0x" + "11" * 65}), "invalid-signature")
    # a token and a signature at once
    both = {**sign_request(tax_op, "GET", "/v1/datasets"), "Authorization": f"Bearer {api.tokens[tax_op.address]}"}
    _unauthenticated(api.http.get("/v1/datasets", headers=both))


def test_members_without_a_held_key_may_read_but_not_act(consortium, members, serve_api):
    # SAMR's service holds SAMR's operator key only; TAX's operator can authenticate (a token, a signature)
    samr_op, tax_op = members.samr.operator, members.tax.operator
    api = serve_api([samr_op, tax_op], held=[samr_op])
    dataset_id = register_companies(api, samr_op)["id"]
    before = consortium.chain.block_number()
    assert api.get(tax_op, f"/v1/datasets/{dataset_id}").status_code == 200
    assert api.signed(tax_op, "GET", "/v1/grants").status_code == 200
    problem = assert_problem(api.post(tax_op, "/v1/grants", json={"dataset_id": dataset_id, "fields": ["name"], "purpose": "p",
                                                                 "duration_seconds": DAY, "quota": 1}), 403, "no-key-for-account")
    assert problem["account"] == tax_op.address
    assert consortium.chain.block_number() == before


def test_accounts_outside_the_consortium_are_refused(consortium, committee, members, serve_api):
    outsider, tax_op = members.outsider, members.tax.operator
    api = serve_api([outsider, tax_op, members.samr.operator])  # even with its key held
    dataset_id = register_companies(api, members.samr.operator)["id"]
    before = consortium.chain.block_number()
    for reply in (api.get(outsider, "/v1/datasets"), api.signed(outsider, "GET", "/v1/grants"),
                  api.post(outsider, "/v1/datasets", json={"name": "x", "fields": ["a"], "level": "public"})):
        problem = assert_problem(reply, 403, "not-a-member")
        assert outsider.address in problem["detail"] and "no department" in problem["detail"]
    assert consortium.chain.block_number() == before

    # a department removed by committee vote loses the API with its roles
    assert api.get(tax_op, "/v1/datasets").status_code == 200
    consortium.registry.pass_proposal(committee[:2], consortium.registry.remove_department_call(members.tax.id), "remove TAX")
    before = consortium.chain.block_number()
    problem = assert_problem(api.post(tax_op, "/v1/grants", json={"dataset_id": dataset_id, "fields": ["name"], "purpose": "p",
                                                                 "duration_seconds": DAY, "quota": 1}), 403, "not-a-member")
    assert tax_op.address in problem["detail"]  # removal unbinds the department's accounts
    assert consortium.registry.department_of(tax_op.address) == 0
    assert_problem(api.get(tax_op, "/v1/datasets"), 403, "not-a-member")
    assert consortium.chain.block_number() == before
    assert problem["type"] == PROBLEM_PREFIX + "not-a-member"
