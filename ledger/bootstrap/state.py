"""What the chain holds that a plan speaks of, read once (:func:`read_state`), and the changes a plan
can ask for: committee votes (:class:`Vote` kinds, each one proposal) and a department operator's
own changes (:class:`OperatorChange` kinds, each one transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from ledger.bootstrap.plan import Plan
from ledger.contracts.registry import AccountRole, ConsortiumRegistryClient, Role, decode_code

__all__ = [
    "ROLE_NAMES",
    "AddMember",
    "AdmitDepartment",
    "BindAccount",
    "ChainState",
    "DepartmentState",
    "OpenProposal",
    "OperatorChange",
    "RemoveDepartment",
    "RemoveMember",
    "SetOracleUrl",
    "SetThreshold",
    "UnbindAccount",
    "Vote",
    "decode_vote",
    "read_state",
]

#: The department roles a plan binds, by name, as the registry's role ids.
ROLE_NAMES = ("operator", "oracle", "auditor")
_ROLE_BY_ID = {Role.by_name(name): name for name in ROLE_NAMES}


# ---------------------------------------------------------------------------- committee votes


@dataclass(frozen=True)
class AddMember:
    account: ChecksumAddress

    def describe(self) -> str:
        return f"add {self.account} to the committee"

    def call_data(self, registry: ConsortiumRegistryClient) -> bytes:
        return registry.add_committee_member_call(self.account)


@dataclass(frozen=True)
class SetThreshold:
    threshold: int

    def describe(self) -> str:
        return f"set the threshold to {self.threshold}"

    def call_data(self, registry: ConsortiumRegistryClient) -> bytes:
        return registry.set_threshold_call(self.threshold)


@dataclass(frozen=True)
class RemoveMember:
    account: ChecksumAddress

    def describe(self) -> str:
        return f"remove {self.account} from the committee"

    def call_data(self, registry: ConsortiumRegistryClient) -> bytes:
        return registry.remove_committee_member_call(self.account)


@dataclass(frozen=True)
class AdmitDepartment:
    code: str
    name: str
    audit_office: bool
    bindings: frozenset[tuple[ChecksumAddress, str]] = field(compare=True)
    order: tuple[tuple[ChecksumAddress, str], ...] = field(default=(), compare=False)  # the plan's order, for the call

    def describe(self) -> str:
        kind = "an audit office" if self.audit_office else "a department"
        return f"admit {self.code} ({self.name}) as {kind} with {len(self.bindings)} account role(s)"

    def call_data(self, registry: ConsortiumRegistryClient) -> bytes:
        order = self.order or tuple(sorted(self.bindings))
        return registry.admit_department_call(self.name, self.code, [AccountRole(a, Role.by_name(r)) for a, r in order],
                                              audit_office=self.audit_office)


@dataclass(frozen=True)
class RemoveDepartment:
    dept_id: int
    code: str = field(default="", compare=False)

    def describe(self) -> str:
        return f"remove department {self.code or self.dept_id} (id {self.dept_id}): its accounts lose every role"

    def call_data(self, registry: ConsortiumRegistryClient) -> bytes:
        return registry.remove_department_call(self.dept_id)


Vote = Union[AddMember, SetThreshold, RemoveMember, AdmitDepartment, RemoveDepartment]


def decode_vote(registry: ConsortiumRegistryClient, data: bytes) -> Vote | None:
    """The vote a proposal's call data stands for (None: a call a plan never makes, or undecodable);
    two proposals with the same effect decode equal whatever the order of their bindings."""
    try:
        function, args = registry.contract.decode_function_input(data)
    except (ValueError, TypeError, KeyError):
        return None
    name = function.fn_name
    if name == "addCommitteeMember":
        return AddMember(to_checksum_address(args["account"]))
    if name == "removeCommitteeMember":
        return RemoveMember(to_checksum_address(args["account"]))
    if name == "setThreshold":
        return SetThreshold(int(args["newThreshold"]))
    if name == "removeDepartment":
        return RemoveDepartment(int(args["deptId"]))
    if name == "admitDepartment":
        roles = [_ROLE_BY_ID.get(bytes(r)) for r in args["roles"]]
        if None in roles:
            return None
        bindings = tuple((to_checksum_address(a), r) for a, r in zip(args["accounts"], roles))
        try:
            code = decode_code(args["code"])
        except UnicodeDecodeError:
            return None
        return AdmitDepartment(code, args["name"], bool(args["auditOffice"]), frozenset(bindings), bindings)
    return None


# ---------------------------------------------------------------------------- a department operator's changes


@dataclass(frozen=True)
class BindAccount:
    code: str
    account: ChecksumAddress
    role: str

    def describe(self) -> str:
        return f"{self.code}: bind {self.account} as {self.role}"


@dataclass(frozen=True)
class UnbindAccount:
    code: str
    account: ChecksumAddress
    role: str

    def describe(self) -> str:
        return f"{self.code}: take the {self.role} role from {self.account}"


@dataclass(frozen=True)
class SetOracleUrl:
    code: str
    url: str

    def describe(self) -> str:
        return f"{self.code}: publish the oracle URL {self.url!r}" if self.url else f"{self.code}: clear the oracle URL"


OperatorChange = Union[BindAccount, UnbindAccount, SetOracleUrl]


# ---------------------------------------------------------------------------- the chain's state


@dataclass(frozen=True)
class DepartmentState:
    id: int
    code: str
    name: str
    active: bool
    audit_office: bool
    oracle_url: str
    roles: Mapping[ChecksumAddress, frozenset[str]] = field(default_factory=dict)  # read for the plan's departments

    def holders(self, role: str) -> list[ChecksumAddress]:
        return [a for a, roles in self.roles.items() if role in roles]


@dataclass(frozen=True)
class OpenProposal:
    id: int
    vote: Vote | None
    description: str


@dataclass(frozen=True)
class ChainState:
    """The registry as a plan sees it: committee, threshold, every department (accounts and roles of
    those the plan names), which department each account of the plan belongs to, open proposals."""

    committee: tuple[ChecksumAddress, ...]
    threshold: int
    departments: Mapping[str, DepartmentState]  # by code, all of them
    account_department: Mapping[ChecksumAddress, int]  # the plan's accounts; 0: none
    open_proposals: tuple[OpenProposal, ...] = ()

    def department_by_id(self, dept_id: int) -> DepartmentState | None:
        return next((d for d in self.departments.values() if d.id == dept_id), None)


def read_state(registry: ConsortiumRegistryClient, plan: Plan) -> ChainState:
    """Read what ``plan`` speaks of from the registry (views only)."""
    planned = {d.code for d in plan.departments}
    departments: dict[str, DepartmentState] = {}
    for dept in registry.departments():
        roles: dict[ChecksumAddress, frozenset[str]] = {}
        if dept.code in planned and dept.active:
            for account in registry.department_accounts(dept.id):
                roles[account] = frozenset(n for n in ROLE_NAMES if registry.has_role(Role.by_name(n), account))
        departments[dept.code] = DepartmentState(dept.id, dept.code, dept.name, dept.active, dept.audit_office,
                                                 dept.oracle_url, roles)
    accounts = dict.fromkeys(a for d in plan.departments for a in d.accounts())
    return ChainState(
        committee=tuple(registry.committee()),
        threshold=registry.threshold(),
        departments=departments,
        account_department={a: registry.department_of(a) for a in accounts},
        open_proposals=tuple(open_proposals(registry)),
    )


def open_proposals(registry: ConsortiumRegistryClient) -> list[OpenProposal]:
    """The proposals still open, newest first. Deadlines grow with ids (creation time plus a fixed
    voting period), so the scan stops at the first proposal whose deadline has passed."""
    now = registry.chain.block_timestamp()
    found = []
    for proposal_id in range(registry.proposal_count(), 0, -1):
        proposal = registry.proposal(proposal_id)
        if proposal.deadline <= now:
            break
        if not proposal.executed and not proposal.cancelled:
            found.append(OpenProposal(proposal_id, decode_vote(registry, proposal.data), proposal.description))
    return found
