"""Shared fixtures: one real ganache per session, fresh contracts per test, departments admitted by vote,
and the two sample department APIs served over real HTTP.

Fixtures build on each other: ganache -> chain -> consortium (fresh deployment) -> members
(market supervision, tax, public security and an audit office, admitted by committee vote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pytest

from devtools.devnet import GanacheNode, dev_accounts, free_port
from devtools.sample_apis import company_registry_app, resident_registry_app
from devtools.sample_consortium import OUTSIDER, SAMPLE_DEPARTMENTS, admit_department, admit_sample_departments
from ledger.chain import Chain
from ledger.compiler import CompilationResult, compile_contracts
from ledger.contracts.registry import AccountRole
from ledger.deployment import Consortium, Deployment, deploy_consortium
from ledger.keys import Signer
from serving import ServerThread
from tests.support.properties import load_profile

load_profile()  # hypothesis: derandomized by default (tests/support/properties.py)


@pytest.fixture(scope="session")
def company_api() -> Iterator[ServerThread]:
    server = ServerThread(company_registry_app(), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def resident_api() -> Iterator[ServerThread]:
    server = ServerThread(resident_registry_app(), free_port()).start()
    yield server
    server.stop()


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
    return admit_department(consortium, committee, name, code, roles, audit_office=audit_office)


def admit_members(consortium: Consortium, committee: list[Signer], accounts: list[Signer]) -> Members:
    """Admit the sample departments (``devtools.sample_consortium``: market supervision, tax, public
    security and an audit office) by committee vote."""
    ids = admit_sample_departments(consortium, committee, accounts)
    member = {
        d.code: Member(ids[d.code], d.code, accounts[d.operator], accounts[d.oracle], None if d.auditor is None else accounts[d.auditor])
        for d in SAMPLE_DEPARTMENTS
    }
    return Members(
        samr=member["SAMR"], tax=member["TAX"], psb=member["PSB"], audit=member["AUDIT"],
        outsider=accounts[OUTSIDER], spare=accounts[OUTSIDER + 1:],
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
