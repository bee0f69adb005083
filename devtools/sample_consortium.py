"""The sample consortium of the devnet, the demo and the tests: a committee of three dev accounts
(two must approve) and four departments admitted by committee vote.

Accounts are indices into ganache's deterministic dev accounts (:func:`devtools.devnet.dev_accounts`):
public test keys from a published mnemonic, never for a real chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.deployment import Consortium
from ledger.keys import Signer
from ledger.contracts.registry import AccountRole, Role

__all__ = [
    "OUTSIDER",
    "SAMPLE_COMMITTEE",
    "SAMPLE_DEPARTMENTS",
    "SAMPLE_THRESHOLD",
    "SampleDepartment",
    "admit_department",
    "admit_sample_departments",
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


def admit_sample_departments(consortium: Consortium, committee: Sequence[Signer], accounts: Sequence[Signer]) -> dict[str, int]:
    """Admit :data:`SAMPLE_DEPARTMENTS` by committee vote, each with its operator, oracle (and auditor)
    from ``accounts`` (the dev accounts, by index); the department ids by code."""
    ids = {}
    for dept in SAMPLE_DEPARTMENTS:
        roles = [AccountRole(accounts[dept.operator].address, Role.OPERATOR), AccountRole(accounts[dept.oracle].address, Role.ORACLE)]
        if dept.auditor is not None:
            roles.append(AccountRole(accounts[dept.auditor].address, Role.AUDITOR))
        ids[dept.code] = admit_department(consortium, committee, dept.name, dept.code, roles, audit_office=dept.audit_office)
    return ids
