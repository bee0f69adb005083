"""``scripts/bootstrap.py`` as an operator runs it, on a fresh deployment (committee of dev accounts 0..2,
threshold 2, no department): the example plan's state is reached and a second run sends nothing;
partial key sets leave a to-do naming who can finish, and members each running the plan with their
own key converge on the same proposals; invalid plans and plans that conflict with the chain are
refused before any transaction; a key off the committee gets the registry's own refusal by name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ledger.chain import Chain
from ledger.contracts.registry import Role
from ledger.deployment import Consortium
from ledger.keys import Signer
from tests.conftest import Members
from tests.scripts.conftest import EXAMPLE_PLAN, Operator, chain_position

SAMR_URL, PSB_URL = "http://127.0.0.1:8700", "http://127.0.0.1:8701"  # the example plan's


def bootstrap(operator: Operator, consortium: Consortium, *args: str, plan: Path = EXAMPLE_PLAN,
              env: dict[str, str] | None = None) -> Any:
    manifest = operator.tmp / "deployments" / "1337.json"
    if not manifest.exists():
        consortium.deployment.save(manifest.parent)
    return operator.run("bootstrap.py", "--rpc", consortium.chain.url, "--manifest", str(manifest), "--plan", str(plan),
                        *args, env=env)


def write_plan(operator: Operator, text: str) -> Path:
    path = operator.tmp / "plan.toml"
    path.write_text(text)
    return path


def assert_example_state(consortium: Consortium, accounts: list[Signer]) -> None:
    registry = consortium.registry
    assert registry.threshold() == 2 and registry.committee() == [a.address for a in accounts[:3]]
    departments = {d.code: d for d in registry.departments()}
    assert list(departments) == ["SAMR", "TAX", "PSB", "AUDIT"]
    assert all(d.active for d in departments.values())
    assert [d.audit_office for d in departments.values()] == [False, False, False, True]
    assert departments["SAMR"].name == "市场监督管理局 Market Supervision"
    assert (departments["SAMR"].oracle_url, departments["TAX"].oracle_url, departments["PSB"].oracle_url) == (SAMR_URL, "", PSB_URL)
    bound = {(3, "SAMR", Role.OPERATOR), (4, "SAMR", Role.ORACLE), (5, "TAX", Role.OPERATOR), (6, "TAX", Role.ORACLE),
             (7, "PSB", Role.OPERATOR), (8, "PSB", Role.ORACLE), (9, "AUDIT", Role.OPERATOR), (10, "AUDIT", Role.ORACLE),
             (11, "AUDIT", Role.AUDITOR)}
    for index, code, role in bound:
        assert registry.department_with_role(role, accounts[index].address) == departments[code].id, (index, code)
    assert not registry.has_role(Role.OPERATOR, accounts[4].address)  # an oracle is only an oracle


def test_the_example_plan_is_reached_and_a_second_run_sends_nothing(
    operator: Operator, consortium: Consortium, accounts: list[Signer], chain: Chain
) -> None:
    keys = operator.key_args("committee-1", "committee-2", "samr", "tax", "psb", "audit")
    first = bootstrap(operator, consortium, *keys)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "the consortium is in the plan's state (14 transaction(s) sent)" in first.stdout  # 4 x (propose, approve, execute) + 2 URLs
    assert f"key {accounts[0].address}: committee member" in first.stdout
    assert f"key {accounts[3].address}: operator of SAMR once admitted" in first.stdout
    assert_example_state(consortium, accounts)
    assert consortium.registry.proposal_count() == 4

    before = chain_position(chain, accounts)
    second = bootstrap(operator, consortium, *keys, "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert (report["converged"], report["transactions_sent"], report["done"], report["todo"]) == (True, 0, [], [])
    human = bootstrap(operator, consortium)
    assert human.returncode == 0 and "nothing to do, nothing sent" in human.stdout
    assert chain_position(chain, accounts) == before


def test_a_partial_key_set_leaves_a_todo_and_each_member_running_the_plan_converges(
    operator: Operator, consortium: Consortium, accounts: list[Signer], chain: Chain
) -> None:
    c2, c3 = (a.address for a in accounts[1:3])
    first = bootstrap(operator, consortium, *operator.key_args("committee-1"))
    assert first.returncode == 4, first.stdout + first.stderr
    for proposal in (1, 2, 3, 4):
        assert f"to do: proposal {proposal}: admit" in first.stdout
        assert f"govshare dept approve {proposal}" in first.stdout
    assert f"by 1 more of the committee members {c2}, {c3}" in first.stdout
    assert "SAMR: publish the oracle URL 'http://127.0.0.1:8700'" in first.stdout
    assert "once SAMR is admitted (proposal 1)" in first.stdout
    assert consortium.registry.department_count() == 0
    assert [consortium.registry.approvals(p) for p in (1, 2, 3, 4)] == [1, 1, 1, 1]

    second = bootstrap(operator, consortium, *operator.key_args("committee-2"), "--json")
    assert second.returncode == 4, second.stderr
    report = json.loads(second.stdout)
    assert [d["what"].split(" (")[0] for d in report["done"]] == ["admit SAMR", "admit TAX", "admit PSB", "admit AUDIT"]
    assert [re.sub(r"block \d+", "block N", d["detail"]) for d in report["done"]] == [
        f"proposal {p} executed in block N" for p in (1, 2, 3, 4)]
    assert [d["transactions"] for d in report["done"]] == [2, 2, 2, 2]  # approve, execute
    assert consortium.registry.proposal_count() == 4  # approved the open proposals, proposed nothing again
    assert [t["who"] for t in report["todo"]] == [f"SAMR's operator ({accounts[3].address})", f"PSB's operator ({accounts[7].address})"]
    assert all(t["how"] == "re-run this plan with one of their keys" for t in report["todo"])

    third = bootstrap(operator, consortium, *operator.key_args("samr", "psb"))
    assert third.returncode == 0, third.stdout + third.stderr
    assert_example_state(consortium, accounts)
    assert "the consortium is in the plan's state (2 transaction(s) sent)" in third.stdout


def test_a_key_off_the_committee_gets_the_registrys_refusal_by_name(
    operator: Operator, consortium: Consortium, accounts: list[Signer], chain: Chain
) -> None:
    before = chain_position(chain, accounts)
    out = bootstrap(operator, consortium, *operator.key_args("outsider"))
    assert out.returncode == 4, out.stdout + out.stderr
    outsider = accounts[12].address
    assert f"key {outsider}: neither a committee member nor a department operator" in out.stdout
    assert f"the registry refuses a proposal from {outsider}: GovernanceNotCommitteeMember(account='{outsider}')" in out.stdout
    assert chain_position(chain, accounts) == before


def test_a_dry_run_lists_the_changes_and_sends_nothing(operator: Operator, consortium: Consortium, accounts: list[Signer],
                                                       chain: Chain) -> None:
    before = chain_position(chain, accounts)
    out = bootstrap(operator, consortium, *operator.key_args("committee-1", "committee-2"), "--dry-run")
    assert out.returncode == 4, out.stderr
    assert "needed: admit SAMR (市场监督管理局 Market Supervision) as a department with 2 account role(s)" in out.stdout
    assert "needed: admit AUDIT (审计局 Audit Office) as an audit office with 3 account role(s)" in out.stdout
    assert "needed: PSB: publish the oracle URL 'http://127.0.0.1:8701'" in out.stdout
    assert "6 change(s) needed" in out.stdout
    assert chain_position(chain, accounts) == before


INVALID = {
    "unknown top-level key": ("[committe]\nthreshold = 2\n", "committe: unknown key"),
    "unknown department key": ('[[departments]]\ncode = "X"\nname = "X"\noperators = ["{a3}"]\noracle = ["{a4}"]\n',
                               "departments[0] (X).oracle: unknown key"),
    "bad address": ('[[departments]]\ncode = "X"\nname = "X"\noperators = ["0x1234"]\n',
                    "departments[0] (X).operators[0]: not an account address: '0x1234'"),
    "duplicate code": ('[[departments]]\ncode = "X"\nname = "X"\noperators = ["{a3}"]\n'
                       '[[departments]]\ncode = "X"\nname = "Y"\noperators = ["{a5}"]\n',
                       "departments[1].code: 'X' is also the code of departments[0]"),
    "not TOML": ("[committee\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_plan_is_refused_before_any_transaction(case: str, operator: Operator, consortium: Consortium,
                                                           accounts: list[Signer], chain: Chain) -> None:
    text, message = INVALID[case]
    plan = write_plan(operator, text.format(a3=accounts[3].address, a4=accounts[4].address, a5=accounts[5].address))
    before = chain_position(chain, accounts)
    out = bootstrap(operator, consortium, *operator.key_args("committee-1", "committee-2"), plan=plan)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"{plan}: " in out.stderr and message in out.stderr, out.stderr
    assert chain_position(chain, accounts) == before


def test_a_plan_that_conflicts_with_the_chain_is_refused_before_sending(
    operator: Operator, consortium: Consortium, members: Members, accounts: list[Signer], chain: Chain
) -> None:
    """The sample departments are admitted: a plan naming SAMR otherwise, or giving TAX's oracle to a
    new department, is refused whole, though its other changes could have been made."""
    plan = write_plan(operator, f"""
[committee]
threshold = 3

[[departments]]
code = "SAMR"
name = "Some Other Name"
operators = ["{members.samr.operator.address}"]

[[departments]]
code = "STATS"
name = "统计局 Statistics Bureau"
operators = ["{accounts[20].address}"]
oracles = ["{members.tax.oracle.address}"]
""")
    before = chain_position(chain, accounts)
    out = bootstrap(operator, consortium, *operator.key_args("committee-1", "committee-2", "committee-3"), plan=plan)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "conflicts with the chain; nothing was sent" in out.stderr
    assert ("departments[0] (SAMR).name: SAMR on chain is named '市场监督管理局 Market Supervision', the plan says "
            "'Some Other Name'; a department's name cannot be changed") in out.stderr
    assert f"departments[1] (STATS): account {members.tax.oracle.address} belongs to TAX (id {members.tax.id})" in out.stderr
    assert chain_position(chain, accounts) == before
    assert consortium.registry.threshold() == 2


def test_removals_happen_only_where_the_plan_says_so(
    operator: Operator, consortium: Consortium, members: Members, accounts: list[Signer], chain: Chain
) -> None:
    """``exact`` drops committee member 3, ``exact_accounts`` rotates SAMR's oracle, ``removed`` removes
    TAX; PSB and AUDIT, left out of the plan, are left alone."""
    new_oracle = accounts[21].address
    plan = write_plan(operator, f"""
[committee]
members = ["{accounts[0].address}", "{accounts[1].address}"]
exact = true

[[departments]]
code = "SAMR"
name = "市场监督管理局 Market Supervision"
operators = ["{members.samr.operator.address}"]
oracles = ["{new_oracle}"]
exact_accounts = true

[[departments]]
code = "TAX"
name = "税务局 Tax Bureau"
removed = true
""")
    out = bootstrap(operator, consortium, *operator.key_args("committee-1", "committee-2", "samr"), plan=plan)
    assert out.returncode == 0, out.stdout + out.stderr
    registry = consortium.registry
    assert registry.committee() == [accounts[0].address, accounts[1].address] and registry.threshold() == 2
    assert registry.department_with_role(Role.ORACLE, new_oracle) == members.samr.id
    assert registry.department_of(members.samr.oracle.address) == 0
    assert not registry.department(members.tax.id).active
    assert registry.department(members.psb.id).active and registry.department(members.audit.id).active
    assert registry.department_with_role(Role.AUDITOR, members.audit.auditor.address) == members.audit.id

    before = chain_position(chain, accounts)
    again = bootstrap(operator, consortium, *operator.key_args("committee-1", "committee-2", "samr"), plan=plan)
    assert again.returncode == 0 and "nothing to do, nothing sent" in again.stdout, again.stdout + again.stderr
    assert chain_position(chain, accounts) == before


def test_a_missing_password_is_a_usage_error(operator: Operator, consortium: Consortium, accounts: list[Signer],
                                             chain: Chain) -> None:
    before = chain_position(chain, accounts)
    env = {k: v for k, v in operator.env.items() if k != "GOVSHARE_KEY_PASSWORD"}
    out = bootstrap(operator, consortium, *operator.key_args("committee-1"), env=env)
    assert out.returncode == 2 and "no keystore password" in out.stderr, out.stderr
    password_file = operator.tmp / "password"
    password_file.write_text("correct horse battery staple\n")
    two = bootstrap(operator, consortium, *operator.key_args("committee-1"), "--password-file", str(password_file),
                    "--password-file", str(password_file), env=env)
    assert two.returncode == 2 and "once per --key-file" in two.stderr, two.stderr
    assert chain_position(chain, accounts) == before
