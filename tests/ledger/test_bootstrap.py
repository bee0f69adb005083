"""ledger.bootstrap: the plan file's strict parser, and the diff between a plan and the chain's state
(pure: no chain), and the example plan being the sample consortium."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from devtools.devnet import dev_accounts
from devtools.sample_consortium import sample_plan
from ledger.bootstrap import ChainState, DepartmentState, OpenProposal, PlanError, diff, load_plan, parse_plan
from ledger.bootstrap.state import (
    AddMember,
    AdmitDepartment,
    BindAccount,
    RemoveDepartment,
    RemoveMember,
    SetOracleUrl,
    SetThreshold,
    UnbindAccount,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = PROJECT_ROOT / "scripts" / "examples" / "consortium.toml"
A = [f"0x{i:040x}" for i in range(1, 40)]  # distinct well-formed addresses, as a plan may write them
C = [to_checksum_address(a) for a in A]  # as the parser returns them


def plan(**top):
    return parse_plan(top, "plan.toml")


def dept(code="SAMR", name="Market Supervision", **fields):
    return {"code": code, "name": name, "operators": [A[3]], **fields}


# ---------------------------------------------------------------------------- the parser


def test_the_example_plan_is_the_sample_consortium_with_oracle_urls() -> None:
    example = load_plan(EXAMPLE)
    sample = sample_plan(dev_accounts(13))
    assert example.committee == sample.committee
    urls = {"SAMR": "http://127.0.0.1:8700", "PSB": "http://127.0.0.1:8701"}
    assert example.departments == tuple(replace(d, oracle_url=urls.get(d.code)) for d in sample.departments)
    assert "TEST ONLY" in EXAMPLE.read_text()


def test_a_full_plan_parses() -> None:
    p = plan(committee={"members": [A[0], A[1]], "threshold": 2, "exact": True},
             departments=[dept(oracles=[A[4]], oracle_url="https://oracle.samr.example:8700", exact_accounts=True),
                          dept("AUDIT", "Audit", operators=[A[9]], auditors=[A[11]], audit_office=True),
                          {"code": "OLD", "name": "Old", "removed": True}])
    assert p.committee.members == (C[0], C[1]) and p.committee.threshold == 2 and p.committee.exact
    samr, audit, old = p.departments
    assert samr.bindings() == ((C[3], "operator"), (C[4], "oracle")) and samr.exact_accounts
    assert samr.oracle_url == "https://oracle.samr.example:8700"
    assert audit.audit_office and audit.bindings()[-1] == (C[11], "auditor") and audit.oracle_url is None
    assert old.removed and old.bindings() == ()


@pytest.mark.parametrize(("top", "message"), [
    ({"comittee": {}}, "plan.toml: comittee: unknown key (allowed here: committee, departments)"),
    ({"committee": {"members": [A[0]], "treshold": 1}}, "committee.treshold: unknown key"),
    ({"departments": [dept(oracle=[A[4]])]}, "departments[0] (SAMR).oracle: unknown key"),
    ({"departments": [dept(operators=["0x12"])]}, "departments[0] (SAMR).operators[0]: not an account address: '0x12'"),
    ({"departments": [dept(operators=["0x90F8bf6A479f320ead074411a4B0e7944Ea8c9c1"])]}, "is in mixed case but its checksum is wrong (EIP-55)"),
    ({"departments": [dept(operators=["90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"])]}, "not an account address"),
    ({"departments": [dept(operators=["0x" + "00" * 20])]}, "operators[0]: the zero address is not an account"),
    ({"departments": [dept(operators=A[3])]}, "operators: must be a list of addresses"),
    ({"departments": [dept(operators=[A[3], A[3]])]}, "operators[1]: " + C[3] + " is listed twice"),
    ({"departments": [dept(), dept(operators=[A[5]])]}, "departments[1].code: 'SAMR' is also the code of departments[0]"),
    ({"departments": [dept(), dept("samr", operators=[A[5]])]}, "'samr' differs only in case from 'SAMR'"),
    ({"departments": [dept(), dept("TAX", oracles=[A[3]], operators=[A[5]])]}, "account " + C[3] + " is also listed in departments[0] (SAMR)"),
    ({"departments": [dept(code="X" * 33)]}, "departments[0].code: a code is 1 to 32 bytes"),
    ({"departments": [dept(code="A B")]}, "no spaces or control characters"),
    ({"departments": [{"code": "SAMR", "operators": [A[3]]}]}, "departments[0] (SAMR).name: required"),
    ({"departments": [dept(operators=[])]}, "operators: a department needs at least one operator"),
    ({"departments": [dept(auditors=[A[11]])]}, "auditors: only an audit office has auditors"),
    ({"departments": [dept(audit_office="yes")]}, "audit_office: must be true or false"),
    ({"departments": [dept(oracle_url="ftp://x")]}, "oracle_url: not an http:// or https:// URL"),
    ({"departments": [dept(oracle_url="http://x/" + "a" * 600)]}, "longer than the registry's 512 bytes"),
    ({"departments": [dept(operators=A[:33])]}, "33 accounts; a department binds at most 32"),
    ({"departments": [{"code": "OLD", "name": "Old", "removed": True, "operators": [A[3]]}]},
     "departments[0] (OLD).operators: a department to be removed takes only code, name and removed"),
    ({"departments": {"code": "X"}}, "departments: must be an array of tables"),
    ({"committee": {"members": [A[0]], "threshold": 0}}, "committee.threshold: must be a whole number >= 1"),
    ({"committee": {"members": [A[0]], "threshold": True}}, "committee.threshold: must be a whole number >= 1"),
    ({"committee": {"members": [A[0]], "threshold": 2, "exact": True}}, "committee.threshold: 2 is more than the 1 member(s) listed"),
    ({"committee": {"threshold": 2, "exact": True}}, "committee.exact: exact = true needs committee.members"),
    ({"committee": {"members": []}}, "committee.members: an empty committee cannot vote"),
    ({"committee": {}}, "committee: give members and/or threshold"),
    ({}, "the plan says nothing"),
])
def test_an_invalid_plan_is_refused_naming_the_key(top: dict, message: str) -> None:
    with pytest.raises(PlanError) as err:
        plan(**top)
    assert message in str(err.value)


def test_a_file_that_is_not_toml_or_not_there(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('[[departments]]\ncode = "X"\ncode = "Y"\n')
    with pytest.raises(PlanError, match=r"p.toml: not valid TOML: .*line 3"):
        load_plan(tmp_path / "p.toml")
    with pytest.raises(PlanError, match="cannot read the plan"):
        load_plan(tmp_path / "absent.toml")


# ---------------------------------------------------------------------------- the diff


def state(*departments: DepartmentState, committee=(C[0], C[1], C[2]), threshold=2, accounts=None, proposals=()) -> ChainState:
    bound = {a: d.id for d in departments for a in d.roles}
    return ChainState(tuple(committee), threshold, {d.code: d for d in departments}, {**bound, **(accounts or {})}, tuple(proposals))


def samr_on_chain(**fields) -> DepartmentState:
    values = {"id": 1, "code": "SAMR", "name": "Market Supervision", "active": True, "audit_office": False, "oracle_url": "",
              "roles": {C[3]: frozenset({"operator"}), C[4]: frozenset({"oracle"})}}
    return DepartmentState(**{**values, **fields})


SAMR = dept(oracles=[A[4]])


def test_an_empty_chain_needs_every_admission_then_the_urls() -> None:
    d = diff(plan(departments=[dept(oracles=[A[4]], oracle_url="http://o:1"), dept("TAX", "Tax", operators=[A[5]])]), state())
    assert d.votes == (AdmitDepartment("SAMR", "Market Supervision", False, frozenset({(C[3], "operator"), (C[4], "oracle")})),
                       AdmitDepartment("TAX", "Tax", False, frozenset({(C[5], "operator")})))
    assert d.votes[0].order == ((C[3], "operator"), (C[4], "oracle"))  # the call binds in the plan's order
    assert d.changes == (SetOracleUrl("SAMR", "http://o:1"),)
    assert not d.conflicts and not d.empty


def test_a_chain_in_the_plans_state_needs_nothing() -> None:
    p = plan(committee={"members": [A[0], A[1], A[2]], "threshold": 2}, departments=[SAMR])
    d = diff(p, state(samr_on_chain()))
    assert d.empty and not d.conflicts and d.describe() == []


def test_committee_changes_come_in_an_order_that_stays_valid() -> None:
    """Added first, the threshold set while the committee is largest, removed last."""
    p = plan(committee={"members": [A[1], A[5], A[6]], "threshold": 3, "exact": True})
    d = diff(p, state())
    assert d.votes == (AddMember(C[5]), AddMember(C[6]), SetThreshold(3), RemoveMember(C[0]), RemoveMember(C[2]))
    assert not d.conflicts


def test_without_exact_nothing_is_removed() -> None:
    p = plan(committee={"members": [A[5]]},
             departments=[dept(oracles=[A[21]])])
    d = diff(p, state(samr_on_chain()))
    assert d.votes == (AddMember(C[5]),)
    assert d.changes == (BindAccount("SAMR", C[21], "oracle"),)  # the old oracle C[4] stays


def test_exact_accounts_unbinds_what_is_not_listed_after_binding_what_is() -> None:
    d = diff(plan(departments=[dept(oracles=[A[21]], exact_accounts=True)]), state(samr_on_chain()))
    assert d.changes == (BindAccount("SAMR", C[21], "oracle"), UnbindAccount("SAMR", C[4], "oracle"))


def test_a_role_is_bound_to_an_account_the_department_already_has() -> None:
    d = diff(plan(departments=[dept(oracles=[A[3], A[4]])]), state(samr_on_chain()))
    assert d.changes == (BindAccount("SAMR", C[3], "oracle"),)


def test_the_oracle_url_is_changed_only_if_given_and_different() -> None:
    on_chain = samr_on_chain(oracle_url="http://old:1")
    assert diff(plan(departments=[SAMR]), state(on_chain)).empty
    assert diff(plan(departments=[dept(oracles=[A[4]], oracle_url="http://old:1")]), state(on_chain)).empty
    assert diff(plan(departments=[dept(oracles=[A[4]], oracle_url="")]), state(on_chain)).changes == (SetOracleUrl("SAMR", ""),)


def test_a_department_is_removed_only_when_the_plan_says_so() -> None:
    tax = DepartmentState(2, "TAX", "Tax", True, False, "", {C[5]: frozenset({"operator"})})
    assert diff(plan(departments=[SAMR]), state(samr_on_chain(), tax)).empty  # TAX left out: left alone
    d = diff(plan(departments=[{"code": "TAX", "name": "Tax", "removed": True}]), state(samr_on_chain(), tax))
    assert d.votes == (RemoveDepartment(2),)
    gone = diff(plan(departments=[{"code": "TAX", "name": "Tax", "removed": True}]), state(replace(tax, active=False, roles={})))
    assert gone.empty
    absent = diff(plan(departments=[{"code": "NONE", "name": "None", "removed": True}]), state())
    assert absent.empty and absent.notes == ("departments[0] (NONE): NONE is not on chain: nothing to remove",)


@pytest.mark.parametrize(("departments", "on_chain", "message"), [
    ([dept(name="Other")], [samr_on_chain()],
     "departments[0] (SAMR).name: SAMR on chain is named 'Market Supervision', the plan says 'Other'; a department's name cannot be changed"),
    ([dept(audit_office=True)], [samr_on_chain()], "departments[0] (SAMR).audit_office: SAMR on chain is not an audit office"),
    ([SAMR], [samr_on_chain(active=False, roles={})], "SAMR was removed from the registry (id 1) and a code is never reused"),
    ([dept("samr", oracles=[A[4]])], [samr_on_chain()], "'samr' differs only in case from 'SAMR' on chain"),
    ([dept("TAX", "Tax", operators=[A[4]])], [samr_on_chain()], f"departments[0] (TAX): account {C[4]} belongs to SAMR (id 1)"),
    ([dept(oracles=[A[4], A[0]])], [samr_on_chain()], f"account {C[0]} is a committee member without a department"),
    ([{"code": "SAMR", "name": "Wrong", "removed": True}], [samr_on_chain()], "not removing a department the plan may not mean"),
    ([dept(oracles=A[4:35])], [samr_on_chain()], None),  # 32 accounts: fine
    ([dept(oracles=A[4:35])], [samr_on_chain(roles={C[3]: frozenset({"operator"}), C[38]: frozenset({"oracle"})})],
     "SAMR would have 33 accounts, more than the registry's 32"),
])
def test_conflicts_with_the_chain_are_named(departments, on_chain, message) -> None:
    d = diff(plan(departments=departments), state(*on_chain))
    if message is None:
        assert not d.conflicts
    else:
        assert any(message in c for c in d.conflicts), d.conflicts
        assert not any(isinstance(v, (AdmitDepartment, RemoveDepartment)) for v in d.votes) or "TAX" in message


def test_a_threshold_larger_than_the_committee_is_a_conflict() -> None:
    d = diff(plan(committee={"threshold": 4}), state())
    assert d.conflicts == ("committee.threshold: a threshold of 4 needs at least 4 committee members; after this plan "
                           "the committee has 3",)
    removing = diff(plan(committee={"members": [A[0]], "exact": True}), state())
    assert removing.conflicts and removing.conflicts[0].startswith("committee.exact: a threshold of 2")


def test_an_account_of_a_department_the_plan_removes_may_join_another() -> None:
    tax = DepartmentState(2, "TAX", "Tax", True, False, "", {C[5]: frozenset({"operator"})})
    p = plan(departments=[{"code": "TAX", "name": "Tax", "removed": True}, dept("STATS", "Stats", operators=[A[5]])])
    d = diff(p, state(tax))
    assert not d.conflicts
    assert d.votes == (RemoveDepartment(2), AdmitDepartment("STATS", "Stats", False, frozenset({(C[5], "operator")})))


def test_open_proposals_that_would_undo_the_plan_are_noted() -> None:
    proposals = [OpenProposal(7, RemoveDepartment(1), "remove SAMR"),
                 OpenProposal(8, AdmitDepartment("TAX", "Tax", False, frozenset({(C[6], "operator")})), "admit TAX"),
                 OpenProposal(9, AdmitDepartment("TAX", "Tax", False, frozenset({(C[5], "operator")})), "admit TAX again")]
    d = diff(plan(departments=[SAMR, dept("TAX", "Tax", operators=[A[5]])]), state(samr_on_chain(), proposals=proposals))
    assert d.notes == ("open proposal 7 ('remove SAMR') would remove SAMR, which the plan keeps; this run does not approve it",
                       "open proposal 8 ('admit TAX') would admit TAX otherwise than the plan says; this run does not approve it")


def test_an_admission_matches_a_proposal_whatever_the_order_of_its_bindings() -> None:
    a = AdmitDepartment("X", "X", False, frozenset({(C[1], "operator"), (C[2], "oracle")}), ((C[1], "operator"), (C[2], "oracle")))
    b = AdmitDepartment("X", "X", False, frozenset({(C[1], "operator"), (C[2], "oracle")}), ((C[2], "oracle"), (C[1], "operator")))
    assert a == b and hash(a) == hash(b)
    assert a != replace(a, name="Y")
