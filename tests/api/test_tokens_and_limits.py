"""Bearer tokens that expire, are revoked and added while the service runs (``tokens_file``), the
per-account rate limit (``rate_limit``), and the oracle's rate limit passed through the API: real
services over real HTTP on the session's chain. Limits are per hour and expiries an hour off, so
that nothing depends on timing: the tests count outcomes."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from api.errors import ConfigError
from api.settings import ApiSettings, token_sha256
from api.tokens import load_tokens_file
from ledger.contracts.audit_log import OracleReason, Outcome
from ledger.hashing import content_hash, record_hash
from ledger.merkle import MerkleTree
from oracle.config import DatasetConfig
from tests.api.conftest import assert_problem, company_rows, register_companies
from tests.oracle.conftest import DAY, TAX_FIELDS, oracle_config, start_oracle


def _token_table(account: str, token: str, label: str, expires_at: datetime | None = None) -> str:
    expiry = f"expires_at = {expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')}\n" if expires_at else ""
    return f'[[tokens]]\nlabel = "{label}"\naccount = "{account}"\nsha256 = "{token_sha256(token)}"\n{expiry}'


def _replace(path: Path, text: str) -> None:
    """Write the file as an operator should: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_expired_token_is_refused(members, serve_api, tmp_path):
    tax_op = members.tax.operator
    now = datetime.now(timezone.utc)
    old, fresh, forever = (secrets.token_urlsafe(32) for _ in range(3))
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(_token_table(tax_op.address, old, "expired an hour ago", now - timedelta(hours=1))
                      + _token_table(tax_op.address, fresh, "expires in an hour", now + timedelta(hours=1))
                      + _token_table(tax_op.address, forever, "no expiry"), encoding="utf-8")
    api = serve_api([tax_op], tokens_file=tokens)
    problem = assert_problem(api.http.get("/v1/datasets", headers=_bearer(old)), 401, "expired-token")
    assert "expired at" in problem["detail"]
    assert api.http.get("/v1/datasets", headers=_bearer(fresh)).status_code == 200
    assert api.http.get("/v1/datasets", headers=_bearer(forever)).status_code == 200


def test_an_expiry_without_offset_is_refused_at_start(members, tmp_path):
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(_token_table(members.tax.operator.address, secrets.token_urlsafe(32), "naive")
                      + "expires_at = 2027-01-01T00:00:00\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="UTC offset"):
        load_tokens_file(tokens)
    with pytest.raises(ValueError, match="UTC offset"):
        ApiSettings(rpc_url="http://127.0.0.1:8545", tokens=[{"sha256": token_sha256(secrets.token_hex(16)),
                                                              "account": members.tax.operator.address,
                                                              "expires_at": datetime(2027, 1, 1)}])


def test_tokens_are_revoked_and_added_without_a_restart(members, serve_api, tmp_path):
    tax_op, samr_op = members.tax.operator, members.samr.operator
    first, second, third = (secrets.token_urlsafe(32) for _ in range(3))
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(_token_table(tax_op.address, first, "tax, to be revoked") + _token_table(samr_op.address, second, "samr"),
                      encoding="utf-8")
    api = serve_api([tax_op, samr_op], tokens_file=tokens)
    assert api.http.get("/v1/datasets", headers=_bearer(first)).status_code == 200
    assert api.http.get("/v1/datasets", headers=_bearer(second)).status_code == 200
    assert_problem(api.http.get("/v1/datasets", headers=_bearer(third)), 401, "invalid-token")

    # revoke the first, rotate tax to a third: both take effect on the next request
    _replace(tokens, _token_table(samr_op.address, second, "samr") + _token_table(tax_op.address, third, "tax, rotated"))
    assert_problem(api.http.get("/v1/datasets", headers=_bearer(first)), 401, "invalid-token")
    assert api.http.get("/v1/datasets", headers=_bearer(second)).status_code == 200
    reply = api.http.post("/v1/datasets", headers=_bearer(third), json={"name": "tax rolls", "fields": ["tin"],
                                                                         "level": "internal", "frequency": "daily"})
    assert reply.status_code == 201, reply.text  # the new token acts as tax's operator
    # the settings' own tokens are untouched by the file
    assert api.get(tax_op, "/v1/datasets").status_code == 200


def test_an_invalid_tokens_file_refuses_its_tokens_until_fixed(members, serve_api, tmp_path):
    tax_op = members.tax.operator
    token = secrets.token_urlsafe(32)
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(_token_table(tax_op.address, token, "tax"), encoding="utf-8")
    api = serve_api([tax_op], tokens_file=tokens)
    assert api.http.get("/v1/datasets", headers=_bearer(token)).status_code == 200
    _replace(tokens, _token_table(tax_op.address, token, "tax") + "sha256 = [not toml")  # a typo: deny, do not guess
    reply = api.http.get("/v1/datasets", headers=_bearer(token))
    assert_problem(reply, 503, "tokens-unavailable")
    assert reply.headers["retry-after"]
    assert api.get(tax_op, "/v1/datasets").status_code == 200  # the settings' own token still works
    _replace(tokens, _token_table(tax_op.address, token, "tax"))
    assert api.http.get("/v1/datasets", headers=_bearer(token)).status_code == 200
    # a file deleted while running: its tokens are refused (twice: not forgotten after one refusal)
    tokens.unlink()
    assert_problem(api.http.get("/v1/datasets", headers=_bearer(token)), 503, "tokens-unavailable")
    assert_problem(api.http.get("/v1/datasets", headers=_bearer(token)), 503, "tokens-unavailable")
    # a service does not start on a missing or bad file
    with pytest.raises(ConfigError, match="cannot read the tokens file"):
        serve_api([tax_op], tokens_file=tokens)


def test_over_the_rate_limit_is_429_with_retry_after(members, serve_api):
    tax_op, samr_op = members.tax.operator, members.samr.operator
    api = serve_api([tax_op, samr_op], rate_limit="3/hour")
    codes = [api.get(tax_op, "/v1/datasets").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    reply = api.get(tax_op, "/v1/datasets")
    problem = assert_problem(reply, 429, "rate-limited")
    assert 1 <= int(reply.headers["retry-after"]) <= 3600
    assert problem["account"] == tax_op.address and problem["rate_limit"] == "3/hour"
    # the same account by a signed request: the same budget
    assert_problem(api.signed(tax_op, "GET", "/v1/datasets"), 429, "rate-limited")
    # another account is served; a caller without credentials is a 401, never counted
    assert api.get(samr_op, "/v1/datasets").status_code == 200
    assert_problem(api.get(None, "/v1/datasets"), 401, "unauthenticated")
    # nobody spends tax's budget with a forged token
    assert_problem(api.http.get("/v1/datasets", headers=_bearer("x" * 43)), 401, "invalid-token")


def test_a_bad_rate_limit_is_refused(members):
    with pytest.raises(ValueError, match="at least 1"):
        ApiSettings(rpc_url="http://127.0.0.1:8545", rate_limit="0/hour")
    with pytest.raises(ValueError, match="not a rate"):
        ApiSettings(rpc_url="http://127.0.0.1:8545", rate_limit="often")


def test_the_oracles_rate_limit_reaches_the_caller_as_429(consortium, members, serve_api, company_api, tmp_path):
    """SAMR's oracle allows tax's operator two queries an hour: the third, asked through tax's
    service, is a 429 with Retry-After and the oracle's signed receipt of the recorded denial."""
    samr_op, tax_op = members.samr.operator, members.tax.operator
    samr, tax = serve_api([samr_op]), serve_api([tax_op])
    dataset_id = register_companies(samr, samr_op)["id"]
    datasets = {dataset_id: DatasetConfig(id=dataset_id, base_url=company_api.url, path="/companies",
                                          params=("company_id", "status"))}
    oracle = start_oracle(oracle_config(tmp_path, consortium, "SAMR", datasets, requester_rate_limit="2/hour"),
                          members.samr.oracle, consortium)
    try:
        consortium.registry.set_oracle_url(samr_op, oracle.url)
        mask = consortium.catalog.dataset(dataset_id).field_mask(TAX_FIELDS)
        grant = consortium.grants.request(tax_op, dataset_id, mask, "tax registration", 30 * DAY, 50)
        consortium.grants.approve(samr_op, grant, mask, 30 * DAY, 50)
        rows = company_rows(40)  # a published version to serve
        consortium.catalog.publish_version(samr_op, dataset_id, content_hash(rows),
                                           MerkleTree([record_hash(r) for r in rows]).root, len(rows))
        params = {"company_id": rows[3]["company_id"]}
        replies = [tax.post(tax_op, "/v1/queries", json={"grant_id": grant, "params": params}) for _ in range(3)]
        assert [r.status_code for r in replies] == [200, 200, 429], [r.text for r in replies]
        problem = assert_problem(replies[2], 429, "oracle-refused")
        assert problem["reason"] == "RATE_LIMITED" and problem["oracle_status"] == 429
        assert 1 <= int(replies[2].headers["retry-after"]) <= 3600
        assert (problem["receipt"]["outcome"], problem["receipt"]["reason"]) == (Outcome.DENIED, OracleReason.RATE_LIMITED)
        assert oracle.oracle.batcher.anchor_once(force=True)
        reasons = [r.entry.reason for r in consortium.audit_log.records()]
        assert reasons.count(OracleReason.RATE_LIMITED) == 1
    finally:
        oracle.stop()


def test_a_dashboard_session_ends_with_its_token(members, serve_api, tmp_path):
    """Signed in with a token from the file; the token is revoked: the next page asks to sign in again."""
    tax_op = members.tax.operator
    token = secrets.token_urlsafe(32)
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(_token_table(tax_op.address, token, "tax"), encoding="utf-8")
    api = serve_api([tax_op], tokens_file=tokens, index_path=tmp_path / "index.sqlite")
    with httpx.Client(base_url=api.url, trust_env=False, follow_redirects=False) as browser:
        assert browser.post("/dashboard/login", data={"token": token}).status_code == 303
        assert browser.get("/dashboard/datasets").status_code == 200
        _replace(tokens, "")
        page = browser.get("/dashboard/datasets")
        assert page.status_code == 303 and "/dashboard/login" in page.headers["location"]
        _replace(tokens, _token_table(tax_op.address, token, "tax"))  # back: the old session stays closed
        assert browser.get("/dashboard/datasets").status_code == 303
