"""Checks before a transaction is sent: does the thing exist, and may this account do this to it?

The contracts are the authority and refuse anything these checks would let through; the checks
exist to say *why not* in words, before anything is signed ("account 0x… is not an operator of SAMR,
the owner of dataset 3"), and without spending a transaction. Every check reads the chain as it is
now; a refusal raises :class:`NotPermitted`, an unknown id one of the :class:`NotFound` errors.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.contracts.catalog import Dataset
from ledger.contracts.grants import AccessGrant, GrantStatus
from ledger.contracts.registry import Department, ProposalState, Role
from ledger.deployment import Consortium
from ledger.errors import LedgerError

__all__ = [
    "NotFound",
    "NotPermitted",
    "UnknownDataset",
    "UnknownDepartment",
    "UnknownGrant",
    "UnknownProposal",
    "find_dataset",
    "find_department",
    "find_grant",
    "find_open_proposal",
    "grant_state",
    "operator_department",
    "require_committee_member",
    "require_grant_status",
    "require_independent_auditor",
    "require_operator_of",
]


class NotPermitted(LedgerError, PermissionError):
    """The acting account may not do what it asked; the message says which role it lacks and where."""


class NotFound(LedgerError, LookupError):
    """An id or code names nothing on chain."""


class UnknownDepartment(NotFound):
    """No department has this id or code."""


class UnknownDataset(NotFound):
    """No dataset has this id."""


class UnknownGrant(NotFound):
    """No grant has this id."""


class UnknownProposal(NotFound):
    """No committee proposal has this id, or it is no longer open."""


def find_department(consortium: Consortium, ref: str | int) -> Department:
    """The department with id ``ref`` (an int or a string of digits) or short code ``ref``
    (exact, else upper-cased)."""
    registry = consortium.registry
    text = str(ref).strip()
    if text.isdigit():
        dept_id = int(text)
        if not 1 <= dept_id <= registry.department_count():
            raise UnknownDepartment(f"unknown department {dept_id} (the registry has {registry.department_count()})")
        return registry.department(dept_id)
    for code in dict.fromkeys((text, text.upper())):
        if 0 < len(code.encode()) <= 32:
            dept = registry.department_by_code(code)
            if dept is not None:
                return dept
    raise UnknownDepartment(f"unknown department {text!r}")


def find_dataset(consortium: Consortium, dataset_id: int) -> Dataset:
    count = consortium.catalog.dataset_count()
    if not 1 <= dataset_id <= count:
        raise UnknownDataset(f"unknown dataset {dataset_id} (the catalog has {count})")
    return consortium.catalog.dataset(dataset_id)


def find_grant(consortium: Consortium, grant_id: int) -> AccessGrant:
    count = consortium.grants.grant_count()
    if not 1 <= grant_id <= count:
        raise UnknownGrant(f"unknown grant {grant_id} (there are {count})")
    return consortium.grants.grant(grant_id)


def find_open_proposal(consortium: Consortium, proposal_id: int) -> ProposalState:
    """The state of an open proposal; :class:`UnknownProposal` if it does not exist or is closed."""
    state = consortium.registry.proposal_state(proposal_id)
    if state is ProposalState.NONE:
        raise UnknownProposal(f"unknown proposal {proposal_id}")
    if state is not ProposalState.OPEN:
        raise UnknownProposal(f"proposal {proposal_id} is {state.name.lower()}, no longer open")
    return state


def _code(consortium: Consortium, dept_id: int) -> str:
    return consortium.registry.department(dept_id).code if dept_id else "no department"


def operator_department(consortium: Consortium, account: str) -> Department:
    """The active department ``account`` is an operator of; :class:`NotPermitted` if none."""
    registry = consortium.registry
    dept_id = registry.department_with_role(Role.OPERATOR, account)
    if dept_id:
        dept = registry.department(dept_id)
        if dept.active:
            return dept
    member_of = registry.department_of(account)
    if not member_of:
        raise NotPermitted(f"account {account} is not an account of any member department")
    dept = registry.department(member_of)
    if not dept.active:
        raise NotPermitted(f"account {account} belongs to {dept.code}, which is no longer a member")
    raise NotPermitted(f"account {account} of {dept.code} is not one of its operators")


def require_operator_of(consortium: Consortium, account: str, dept_id: int, context: str) -> Department:
    """``account`` must be an operator of the active department ``dept_id``; ``context`` finishes the
    refusal ("the owner of dataset 3")."""
    registry = consortium.registry
    dept = registry.department(dept_id)
    if registry.department_with_role(Role.OPERATOR, account) != dept_id:
        raise NotPermitted(f"account {account} is not an operator of {dept.code}, {context}")
    if not dept.active:
        raise NotPermitted(f"{dept.code}, {context}, is no longer a member")
    return dept


def require_committee_member(consortium: Consortium, account: str) -> None:
    if not consortium.registry.has_role(Role.COMMITTEE, account):
        raise NotPermitted(f"account {account} is not a member of the committee")


def require_independent_auditor(consortium: Consortium, account: str, grant: AccessGrant) -> Department:
    """``account`` must be an auditor of an audit office that is neither the grant's owner nor its requester."""
    registry = consortium.registry
    dept_id = registry.department_with_role(Role.AUDITOR, account)
    dept = registry.department(dept_id) if dept_id else None
    if dept is None or not dept.active or not dept.audit_office:
        raise NotPermitted(f"account {account} is not an auditor of a member audit office")
    if dept_id in (grant.owner_dept, grant.requester_dept):
        raise NotPermitted(f"{dept.code} is a party to grant {grant.id}; co-approval needs an independent audit office")
    return dept


def grant_state(grant: AccessGrant, now: int) -> str:
    """The grant's state in words, with an active grant past its expiry (block time ``now``) as "expired"."""
    if grant.status is GrantStatus.ACTIVE and grant.expires_at <= now:
        return "expired"
    if grant.status is GrantStatus.ACTIVE and grant.used >= grant.quota:
        return "exhausted"
    return grant.status.name.lower().replace("_", "-")


def require_grant_status(grant: AccessGrant, allowed: Iterable[GrantStatus], action: str) -> None:
    allowed = tuple(allowed)
    if grant.status not in allowed:
        wanted = " or ".join(s.name.lower().replace("_", "-") for s in allowed)
        raise NotPermitted(f"cannot {action} grant {grant.id}: it is {grant.status.name.lower().replace('_', '-')}, not {wanted}")


def describe_department(consortium: Consortium, dept_id: int) -> str:
    """A department's code (or "no department" for 0), for messages."""
    return _code(consortium, dept_id)
