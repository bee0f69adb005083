"""Shared fixtures: one real ganache per session, fresh contracts per test, departments admitted by vote.

Fixtures build on each other: ganache -> chain -> consortium (fresh deployment) -> members
(market supervision, tax, public security and an audit office, admitted by committee vote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pytest
from ledger.chain import Chain
from ledger.compiler import CompilationResult, compile_contracts
from ledger.deployment import Consortium, Deployment, deploy_consortium
from ledger.keys import Signer
from ledger.registry import AccountRole, Role
from ledger.devnet import GanacheNode, dev_accounts


@pytest.fixture(scope="session")
def ganache() -> Iterator[GanacheNode]:
    node = GanacheNode()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def compilation() -> CompilationResult:
    return compile_contracts()


@pytest.fixture(scope="session")
def accounts() -> list[Signer]:
    """Ganache's deterministic accounts. test keys: derived from a public mnemonic, not secrets."""
    return dev_accounts(30)


@pytest.fixture
def chain(ganache: GanacheNode) -> Chain:
    return Chain(ganache.url)


@pytest.fixture
def committee(accounts: list[Signer]) -> list[Signer]:
    """Three founding committee members; two must approve."""
    return accounts[0:3]


@dataclass(frozen=True)
class Member:
    """A department admitted in the fixture, with the accounts acting for it."""

    id: int
    code: str
    operator: Signer
    oracle: Signer
    auditor: Signer | None = None


@dataclass(frozen=True)
class Members:
    samr: Member  # market supervision: holds company registrations
    tax: Member
    psb: Member  # public security: holds residents
    audit: Member  # the audit office
    outsider: Signer  # an account that belongs to no department
    spare: list[Signer]


def admit(consortium: Consortium, committee: list[Signer], name: str, code: str, roles: list[AccountRole], *, audit_office: bool = False) -> int:
    call = consortium.registry.admit_department_call(name, code, roles, audit_office=audit_office)
    result = consortium.registry.pass_proposal(committee[:2], call, f"admit {code}")
    return int(consortium.registry.event(result, "DepartmentAdmitted").args["deptId"])


def admit_members(consortium: Consortium, committee: list[Signer], accounts: list[Signer]) -> Members:
    """Admit market supervision, tax, public security and an audit office by committee vote."""

    def dept(name: str, code: str, operator: Signer, oracle: Signer, auditor: Signer | None = None) -> Member:
        roles = [AccountRole(operator.address, Role.OPERATOR), AccountRole(oracle.address, Role.ORACLE)]
        if auditor is not None:
            roles.append(AccountRole(auditor.address, Role.AUDITOR))
        dept_id = admit(consortium, committee, name, code, roles, audit_office=auditor is not None)
        return Member(dept_id, code, operator, oracle, auditor)

    return Members(
        samr=dept("市场监督管理局 Market Supervision", "SAMR", accounts[3], accounts[4]),
        tax=dept("税务局 Tax Bureau", "TAX", accounts[5], accounts[6]),
        psb=dept("公安局 Public Security", "PSB", accounts[7], accounts[8]),
        audit=dept("审计局 Audit Office", "AUDIT", accounts[9], accounts[10], auditor=accounts[11]),
        outsider=accounts[12],
        spare=accounts[13:],
    )


@dataclass
class Template:
    """Deployments made once per session, and the chain snapshot every test starts from."""

    bare: Deployment  # freshly deployed, no department yet
    populated: Deployment  # freshly deployed, four departments admitted by vote
    members: Members
    snapshot: str


@pytest.fixture(scope="session")
def template(ganache: GanacheNode, accounts: list[Signer], compilation: CompilationResult) -> Template:
    chain = Chain(ganache.url)
    committee = [m.address for m in accounts[0:3]]
    bare = deploy_consortium(chain, accounts[0], committee, 2, compilation)
    populated = deploy_consortium(chain, accounts[0], committee, 2, compilation)
    members = admit_members(Consortium(chain, populated, compilation), accounts[0:3], accounts)
    return Template(bare, populated, members, str(ganache.rpc("evm_snapshot")))


@pytest.fixture
def consortium(request: pytest.FixtureRequest, ganache: GanacheNode, template: Template, chain: Chain, compilation: CompilationResult) -> Consortium:
    """Contracts exactly as freshly deployed: the chain is reverted to the snapshot taken right after
    the session's deployments (deploying and admitting four departments per test took ~1 s each).
    Tests that also ask for ``members`` get the deployment where the departments are admitted."""
    assert ganache.rpc("evm_revert", [template.snapshot]) is True
    template.snapshot = str(ganache.rpc("evm_snapshot"))
    deployment = template.populated if "members" in request.fixturenames else template.bare
    return Consortium(chain, deployment, compilation)


@pytest.fixture
def members(consortium: Consortium, template: Template) -> Members:
    return template.members
