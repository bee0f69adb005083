"""The sample consortium of the devnet, the demo and the tests: a committee of three dev accounts
(two must approve) and four departments admitted by committee vote.

Accounts are indices into ganache's deterministic dev accounts (:func:`devtools.devnet.dev_accounts`):
public test keys from a published mnemonic, never for a real chain. :func:`sample_plan` is the same
consortium as a bootstrap plan (:mod:`ledger.bootstrap`); ``scripts/examples/consortium.toml`` is it
written out, with oracle URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.bootstrap import CommitteePlan, DepartmentPlan, Plan, apply_plan
from ledger.contracts.registry import AccountRole
from ledger.deployment import Consortium
from ledger.keys import Signer

__all__ = [
    "OUTSIDER",
    "SAMPLE_COMMITTEE",
    "SAMPLE_DEPARTMENTS",
    "SAMPLE_THRESHOLD",
    "SampleDepartment",
    "admit_department",
    "admit_sample_departments",
    "sample_plan",
]


@dataclass(frozen=True)
class SampleDepartment:
    """A department of the sample consortium; ``operator``, ``oracle``, ``auditor`` are dev account indices."""

    name: str
    code: str
    operator: int
    oracle: int
    auditor: int | None = None

    @property
    def audit_office(self) -> bool:
        return self.auditor is not None


#: Dev account indices of the founding committee, and how many of them must approve a proposal.
SAMPLE_COMMITTEE = (0, 1, 2)
SAMPLE_THRESHOLD = 2

SAMPLE_DEPARTMENTS = (
    SampleDepartment("市场监督管理局 Market Supervision", "SAMR", operator=3, oracle=4),
    SampleDepartment("税务局 Tax Bureau", "TAX", operator=5, oracle=6),
    SampleDepartment("公安局 Public Security", "PSB", operator=7, oracle=8),
    SampleDepartment("审计局 Audit Office", "AUDIT", operator=9, oracle=10, auditor=11),
)

#: A dev account that belongs to no department (refusals).
OUTSIDER = 12


def admit_department(
    consortium: Consortium, committee: Sequence[Signer], name: str, code: str, roles: Sequence[AccountRole],
    *, audit_office: bool = False,
) -> int:
    """Admit a department by committee vote and return its id: ``committee[0]`` proposes, the next
    members approve until the registry's threshold is reached, ``committee[0]`` executes.

    Precondition: ``committee`` holds at least ``threshold()`` current committee members."""
    registry = consortium.registry
    voters = list(committee[: registry.threshold()])
    call = registry.admit_department_call(name, code, roles, audit_office=audit_office)
    result = registry.pass_proposal(voters, call, f"admit {code}")
    return int(registry.event(result, "DepartmentAdmitted").args["deptId"])


def sample_plan(accounts: Sequence[Signer], *, committee: bool = True) -> Plan:
    """:data:`SAMPLE_DEPARTMENTS` (and, with ``committee``, :data:`SAMPLE_COMMITTEE` and
    :data:`SAMPLE_THRESHOLD`) as a bootstrap plan, ``accounts`` being the dev accounts by index."""
    departments = tuple(
        DepartmentPlan(code=d.code, name=d.name, audit_office=d.audit_office, operators=(accounts[d.operator].address,),
                       oracles=(accounts[d.oracle].address,),
                       auditors=() if d.auditor is None else (accounts[d.auditor].address,))
        for d in SAMPLE_DEPARTMENTS
    )
    members = CommitteePlan(tuple(accounts[i].address for i in SAMPLE_COMMITTEE), SAMPLE_THRESHOLD) if committee else None
    return Plan(members, departments, "the sample consortium")


def admit_sample_departments(consortium: Consortium, committee: Sequence[Signer], accounts: Sequence[Signer]) -> dict[str, int]:
    """Admit :data:`SAMPLE_DEPARTMENTS` by committee vote, each with its operator, oracle (and auditor)
    from ``accounts`` (the dev accounts, by index); the department ids by code. Each admission is one
    proposal: ``committee[0]`` proposes, the next members approve up to the threshold, ``committee[0]``
    executes (:func:`ledger.bootstrap.apply_plan`; departments already admitted are left as they are).

    Precondition: ``committee`` holds at least ``threshold()`` current committee members."""
    report = apply_plan(consortium, sample_plan(accounts, committee=False), committee)
    if not report.converged:
        raise RuntimeError(f"the sample departments were not all admitted: {[t.what for t in report.todo]}")
    return {d.code: consortium.registry.department_by_code(d.code).id for d in SAMPLE_DEPARTMENTS}
