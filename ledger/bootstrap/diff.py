"""What separates the chain from a plan: a pure function of the plan and the chain's state, so it is
tested without a chain.

The changes come out in the order they can be made in: committee members added, the threshold,
members removed (``exact``), departments removed (``removed = true``), departments admitted, then
each department operator's own changes (accounts bound, the oracle URL, roles taken away with
``exact_accounts``). That order keeps every step valid: the threshold is set while the committee is
at its largest, a member leaves only once the threshold fits the smaller committee, and an account
is unbound only after its replacement is bound.

A conflict is what no sequence of allowed changes could reconcile (a code held by a department of
another name, a removed department's code, an account of another department, a threshold larger
than the committee): :func:`diff` lists them all, and nothing is sent while there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_typing import ChecksumAddress

from ledger.bootstrap.plan import MAX_ACCOUNTS_PER_DEPARTMENT, DepartmentPlan, Plan
from ledger.bootstrap.state import (
    AddMember,
    AdmitDepartment,
    BindAccount,
    ChainState,
    DepartmentState,
    OperatorChange,
    RemoveDepartment,
    RemoveMember,
    SetOracleUrl,
    SetThreshold,
    UnbindAccount,
    Vote,
)

__all__ = ["Diff", "diff"]


@dataclass(frozen=True)
class Diff:
    """The committee votes and operator changes that bring the chain to the plan, in order; the
    conflicts that forbid it; notes worth reading (nothing to do about them)."""

    votes: tuple[Vote, ...]
    changes: tuple[OperatorChange, ...]
    conflicts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the chain is in the plan's state."""
        return not self.votes and not self.changes

    def describe(self) -> list[str]:
        return [v.describe() for v in self.votes] + [c.describe() for c in self.changes]


def diff(plan: Plan, state: ChainState) -> Diff:
    """The changes from ``state`` to ``plan`` (see the module docstring)."""
    votes: list[Vote] = []
    changes: list[OperatorChange] = []
    conflicts: list[str] = []
    notes: list[str] = []
    leaving: set[ChecksumAddress] = set()  # committee members this plan removes
    final_committee = set(state.committee)

    committee = plan.committee
    if committee is not None:
        listed = list(committee.members or ())
        votes += [AddMember(m) for m in listed if m not in state.committee]
        if committee.exact:
            leaving = {m for m in state.committee if m not in listed}
            final_committee = set(listed)
        else:
            final_committee |= set(listed)
        threshold = committee.threshold if committee.threshold is not None else state.threshold
        if threshold > len(final_committee):
            key = "committee.threshold" if committee.threshold is not None else "committee.exact"
            conflicts.append(f"{key}: a threshold of {threshold} needs at least {threshold} committee members; "
                             f"after this plan the committee has {len(final_committee)}")
        if committee.threshold is not None and committee.threshold != state.threshold:
            votes.append(SetThreshold(committee.threshold))
        votes += [RemoveMember(m) for m in state.committee if m in leaving]

    to_remove = {d.code for d in plan.departments if d.removed}
    chain_codes = {code.casefold(): code for code in state.departments}
    admissions: list[Vote] = []
    for index, dept in enumerate(plan.departments):
        where = f"departments[{index}] ({dept.code})"
        on_chain = state.departments.get(dept.code)
        near = chain_codes.get(dept.code.casefold())
        if on_chain is None and near is not None:
            conflicts.append(f"{where}.code: {dept.code!r} differs only in case from {near!r} on chain; "
                             "write the code as the registry has it")
            continue
        if dept.removed:
            if on_chain is None:
                notes.append(f"{where}: {dept.code} is not on chain: nothing to remove")
            elif on_chain.name != dept.name:
                conflicts.append(f"{where}.name: {dept.code} on chain is named {on_chain.name!r}, the plan says "
                                 f"{dept.name!r}; not removing a department the plan may not mean")
            elif on_chain.active:
                votes.append(RemoveDepartment(on_chain.id, dept.code))
            continue
        if on_chain is None:
            conflicts += _foreign_accounts(where, dept, state, to_remove, None)
            admissions.append(AdmitDepartment(dept.code, dept.name, dept.audit_office, frozenset(dept.bindings()),
                                              dept.bindings()))
            if dept.oracle_url:
                changes.append(SetOracleUrl(dept.code, dept.oracle_url))
            continue
        if not on_chain.active:
            conflicts.append(f"{where}.code: {dept.code} was removed from the registry (id {on_chain.id}) and a code "
                             "is never reused: give the department another code")
            continue
        found = len(conflicts)
        if on_chain.name != dept.name:
            conflicts.append(f"{where}.name: {dept.code} on chain is named {on_chain.name!r}, the plan says "
                             f"{dept.name!r}; a department's name cannot be changed")
        if on_chain.audit_office != dept.audit_office:
            conflicts.append(f"{where}.audit_office: {dept.code} on chain is "
                             f"{'an audit office' if on_chain.audit_office else 'not an audit office'}; that cannot be changed")
        conflicts += _foreign_accounts(where, dept, state, to_remove, on_chain)
        conflicts += _committee_accounts(where, dept, on_chain, final_committee)
        new_accounts = {a for a in dept.accounts() if a not in on_chain.roles}
        if not dept.exact_accounts and len(on_chain.roles) + len(new_accounts) > MAX_ACCOUNTS_PER_DEPARTMENT:
            conflicts.append(f"{where}: {dept.code} would have {len(on_chain.roles) + len(new_accounts)} accounts, more "
                             f"than the registry's {MAX_ACCOUNTS_PER_DEPARTMENT} (exact_accounts = true drops those not listed)")
        if len(conflicts) > found:
            continue
        wanted = set(dept.bindings())
        changes += [BindAccount(dept.code, a, r) for a, r in dept.bindings() if r not in on_chain.roles.get(a, ())]
        if dept.oracle_url is not None and dept.oracle_url != on_chain.oracle_url:
            changes.append(SetOracleUrl(dept.code, dept.oracle_url))
        if dept.exact_accounts:
            changes += [UnbindAccount(dept.code, a, r) for a, roles in on_chain.roles.items()
                        for r in sorted(roles) if (a, r) not in wanted]
    votes += admissions
    notes += _conflicting_proposals(plan, state)
    return Diff(tuple(votes), tuple(changes), tuple(conflicts), tuple(notes))


def _foreign_accounts(where: str, dept: DepartmentPlan, state: ChainState, to_remove: set[str],
                      on_chain: DepartmentState | None) -> list[str]:
    """Accounts of ``dept`` that belong to another department (one the plan removes is fine)."""
    found = []
    for account in dept.accounts():
        other_id = state.account_department.get(account, 0)
        if not other_id or (on_chain is not None and other_id == on_chain.id):
            continue
        other = state.department_by_id(other_id)
        other_code = other.code if other else f"department {other_id}"
        if other is not None and other.code in to_remove:
            continue
        found.append(f"{where}: account {account} belongs to {other_code} (id {other_id}); an account belongs to one "
                     "department")
    return found


def _committee_accounts(where: str, dept: DepartmentPlan, on_chain: DepartmentState,
                        final_committee: set[ChecksumAddress]) -> list[str]:
    """Accounts an operator would have to bind that are (and stay) committee members without a
    department: the registry lets only a committee vote admitting a department bind those."""
    return [f"{where}: account {account} is a committee member without a department; only the vote admitting a "
            "department binds one, so its operator cannot add it to the existing department"
            for account in dept.accounts() if account not in on_chain.roles and account in final_committee]


def _conflicting_proposals(plan: Plan, state: ChainState) -> list[str]:
    """Open proposals that, if others execute them, would undo part of the plan."""
    notes = []
    keep = {d.code: d for d in plan.departments if not d.removed}
    members = set(plan.committee.members or ()) if plan.committee else set()
    for proposal in state.open_proposals:
        vote = proposal.vote
        undoes = None
        if isinstance(vote, RemoveDepartment):
            dept = state.department_by_id(vote.dept_id)
            if dept is not None and dept.code in keep:
                undoes = f"would remove {dept.code}, which the plan keeps"
        elif isinstance(vote, RemoveMember) and vote.account in members:
            undoes = f"would remove {vote.account} from the committee, which the plan keeps"
        elif isinstance(vote, AdmitDepartment) and vote.code in keep:
            wanted = keep[vote.code]
            if (vote.name, vote.audit_office, vote.bindings) != (wanted.name, wanted.audit_office, frozenset(wanted.bindings())):
                undoes = f"would admit {vote.code} otherwise than the plan says"
        elif (isinstance(vote, SetThreshold) and plan.committee and plan.committee.threshold is not None
              and vote.threshold != plan.committee.threshold):
            undoes = f"would set the threshold to {vote.threshold}, not the plan's {plan.committee.threshold}"
        if undoes:
            notes.append(f"open proposal {proposal.id} ({proposal.description!r}) {undoes}; this run does not approve it")
    return notes
