"""Grants: request, list, read, approve (narrowing), reject, revoke, co-approve, cancel.

``POST /v1/grants``                    request fields of another department's dataset (operator)
``GET  /v1/grants?direction=&state=``  the caller department's grants, newest first, paged by ``before``
``GET  /v1/grants/{id}``               one grant
``POST /v1/grants/{id}/approve``       owner's operator; may narrow fields, duration, quota, unmasked fields
``POST /v1/grants/{id}/reject``        owner's operator (or, awaiting co-approval, an independent auditor)
``POST /v1/grants/{id}/revoke``        owner's operator
``POST /v1/grants/{id}/co-approve``    an auditor of an audit office that is neither party (secret datasets)
``POST /v1/grants/{id}/cancel``        the requester's operator, while still requested

Every action checks the caller's on-chain role and the grant's state first and answers 403/409 with
a clear detail before any transaction is sent; if the chain still refuses (its state changed in
between), the contract's custom error comes back as a problem.

Listing reads grants by id (``grantCount``, then ``grant(id)`` from the newest down) rather than from
``GrantRequested`` events: a grant's *current* state needs a ``grant(id)`` read anyway, and an event
scan costs one ``eth_getLogs`` per 2,000 blocks since deployment (thousands on a long-lived chain
with short block times) where the id walk costs one call per grant looked at and stops after
``limit`` matches or ``MAX_SCAN`` grants, with ``next_before`` to continue.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.auth import Caller, CurrentCaller, require_auditor, require_operator
from api.deps import ApiContext, ContextDep
from api.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from api.routes.catalog import dataset_or_404, field_mask
from api.schemas import (
    GrantApprove,
    GrantChange,
    GrantCreate,
    GrantPublic,
    GrantReason,
    GrantsPublic,
    State,
    TransactionRef,
    problem_responses,
)
from ledger.chain import TxResult
from ledger.contracts.grants import AccessGrant, GrantStatus
from ledger.contracts.registry import Department
from ledger.deployment import Consortium

__all__ = ["grant_or_404", "router"]

router = APIRouter(prefix="/v1/grants", tags=["grants"], responses=problem_responses(401, 403, 503))

#: The most grants one listing request reads before it answers with what it found.
MAX_SCAN = 2_000


def grant_or_404(consortium: Consortium, grant_id: int) -> AccessGrant:
    """The grant, or a 404 problem naming the id."""
    if grant_id < 1 or grant_id > consortium.grants.grant_count():
        raise NotFound(f"there is no grant {grant_id}", slug="unknown-grant", title="Unknown grant", grant_id=grant_id)
    return consortium.grants.grant(grant_id)


def _public(context: ApiContext, grants: list[AccessGrant], departments: dict[int, Department] | None = None) -> list[GrantPublic]:
    consortium = context.consortium()
    departments = dict(departments or {})
    for grant in grants:
        for dept_id in (grant.requester_dept, grant.owner_dept):
            if dept_id not in departments:
                departments[dept_id] = consortium.registry.department(dept_id)
    return [GrantPublic.of(g, context.dataset_fields(g.dataset_id), departments) for g in grants]


def _change(context: ApiContext, grant_id: int, result: TxResult) -> GrantChange:
    (grant,) = _public(context, [context.consortium().grants.grant(grant_id)])
    return GrantChange(grant=grant, transaction=TransactionRef(tx_hash=result.tx_hash, block_number=result.block_number))


def _require_party(consortium: Consortium, caller: Caller, grant: AccessGrant, side: Literal["owner", "requester"], action: str) -> None:
    dept_id = grant.owner_dept if side == "owner" else grant.requester_dept
    if caller.department.id != dept_id:
        party = consortium.registry.department(dept_id)
        role = "the dataset's owner" if side == "owner" else "the requester"
        raise Forbidden(f"only an operator of {party.code} ({role}) may {action} grant {grant.id}; "
                        f"{caller.account} acts for {caller.department.code}", slug="wrong-role", title="Wrong role",
                        account=caller.account, grant_id=grant.id)
    require_operator(consortium, caller, f"{action} a grant")


def _require_state(grant: AccessGrant, allowed: tuple[GrantStatus, ...], action: str) -> None:
    if grant.status not in allowed:
        wanted = " or ".join(s.name.lower() for s in allowed)
        raise Conflict(f"grant {grant.id} is {grant.status.name.lower()}; only a {wanted} grant can be {action}",
                       slug="invalid-grant-state", title="Grant not in a state for this action",
                       grant_id=grant.id, state=grant.status.name.lower())


def _require_independent_auditor(consortium: Consortium, caller: Caller, grant: AccessGrant, action: str) -> None:
    require_auditor(consortium, caller, f"{action} a grant")
    if caller.department.id in (grant.owner_dept, grant.requester_dept):
        raise Forbidden(f"{caller.department.code} is a party to grant {grant.id}; only an independent audit office may "
                        f"{action} it", slug="wrong-role", title="Wrong role", account=caller.account, grant_id=grant.id)


# ---------------------------------------------------------------- request, list, read

@router.post("", response_model=GrantPublic, status_code=201, summary="Request a grant",
             responses=problem_responses(404, 409, 422))
def request_grant(body: GrantCreate, caller: CurrentCaller, context: ContextDep, response: Response) -> GrantPublic:
    """Ask the owner of a dataset for some of its fields, for a purpose, a duration and a quota."""
    consortium = context.consortium()
    signer = caller.acting_signer("request a grant")
    require_operator(consortium, caller, "request a grant")
    dataset = dataset_or_404(consortium, body.dataset_id)
    if dataset.owner_dept == caller.department.id:
        raise Conflict(f"dataset {dataset.id} belongs to {caller.department.code} itself; grants are for other "
                       "departments' datasets", slug="own-dataset", title="Own dataset")
    if dataset.retired:
        raise Conflict(f"dataset {dataset.id} is retired", slug="dataset-retired", title="Dataset retired")
    owner = consortium.registry.department(dataset.owner_dept)
    if not owner.active:
        raise Conflict(f"dataset {dataset.id}'s owner {owner.code} is no longer a member", slug="owner-not-member",
                       title="Owner not a member")
    fields = field_mask(dataset.fields, body.fields, dataset.id)
    unmasked = field_mask(dataset.fields, body.unmasked_fields, dataset.id)
    if unmasked & ~fields:
        raise UnprocessableContent("unmasked_fields must be among the requested fields", slug="invalid-fields")
    if body.pinned_version > dataset.version_count:
        raise UnprocessableContent(f"dataset {dataset.id} has {dataset.version_count} versions; cannot pin version "
                                   f"{body.pinned_version}", slug="invalid-version")
    grant_id = consortium.grants.request(signer, dataset.id, fields, body.purpose, body.duration_seconds, body.quota,
                                         body.pinned_version, unmasked_fields=unmasked)
    response.headers["Location"] = f"/v1/grants/{grant_id}"
    (public,) = _public(context, [consortium.grants.grant(grant_id)], {caller.department.id: caller.department, owner.id: owner})
    return public


@router.get("", response_model=GrantsPublic, summary="List grants")
def list_grants(
    caller: CurrentCaller,
    context: ContextDep,
    direction: Annotated[Literal["incoming", "outgoing", "both", "all"], Query(
        description="incoming: of the caller's datasets; outgoing: asked by the caller's department; both (default); "
                    "all: every grant of the consortium (e.g. for auditors)")] = "both",
    state: Annotated[State | None, Query(description="only grants in this state")] = None,
    dataset_id: Annotated[int | None, Query(ge=1, description="only grants on this dataset")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, description="only grants with a smaller id (paging)")] = None,
) -> GrantsPublic:
    """Grants newest first. ``next_before`` is set when there may be more: pass it as ``before``."""
    consortium = context.consortium()
    mine = caller.department.id
    status = state.status() if state is not None else None
    newest = consortium.grants.grant_count()
    if before is not None:
        newest = min(newest, before - 1)
    found: list[AccessGrant] = []
    next_before = None
    scanned = 0
    for grant_id in range(newest, 0, -1):
        if len(found) == limit or scanned == MAX_SCAN:
            next_before = grant_id + 1
            break
        scanned += 1
        grant = consortium.grants.grant(grant_id)
        if direction == "incoming" and grant.owner_dept != mine:
            continue
        if direction == "outgoing" and grant.requester_dept != mine:
            continue
        if direction == "both" and mine not in (grant.owner_dept, grant.requester_dept):
            continue
        if status is not None and grant.status != status:
            continue
        if dataset_id is not None and grant.dataset_id != dataset_id:
            continue
        found.append(grant)
    public = _public(context, found, {mine: caller.department})
    return GrantsPublic(grants=public, count=len(public), next_before=next_before)


@router.get("/{grant_id}", response_model=GrantPublic, summary="One grant", responses=problem_responses(404))
def get_grant(grant_id: int, caller: CurrentCaller, context: ContextDep) -> GrantPublic:
    """A grant as the chain holds it now (its fields by name)."""
    (public,) = _public(context, [grant_or_404(context.consortium(), grant_id)])
    return public


# ---------------------------------------------------------------- actions

@router.post("/{grant_id}/approve", response_model=GrantChange, summary="Approve a grant, optionally narrowing it",
             responses=problem_responses(404, 409, 422))
def approve_grant(grant_id: int, caller: CurrentCaller, context: ContextDep, body: GrantApprove | None = None) -> GrantChange:
    """The owner's operator approves; omitted values keep what was requested, given ones may only narrow
    it (fewer fields, shorter duration, smaller quota). A secret dataset's grant then awaits co-approval."""
    consortium = context.consortium()
    body = body or GrantApprove()
    signer = caller.acting_signer("approve grants")
    grant = grant_or_404(consortium, grant_id)
    _require_party(consortium, caller, grant, "owner", "approve")
    _require_state(grant, (GrantStatus.REQUESTED,), "approved")
    schema = context.dataset_fields(grant.dataset_id)
    fields = field_mask(schema, body.fields, grant.dataset_id) if body.fields is not None else grant.fields
    extra = [name for i, name in enumerate(schema) if (fields & ~grant.fields) >> i & 1]
    if extra:
        raise UnprocessableContent(f"an approval may only narrow the request: {', '.join(extra)} was not requested",
                                   slug="not-narrowing", title="Not narrowing")
    duration = body.duration_seconds if body.duration_seconds is not None else grant.duration
    quota = body.quota if body.quota is not None else grant.quota
    if duration > grant.duration or quota > grant.quota:
        raise UnprocessableContent(f"an approval may only narrow the request: at most {grant.duration} s and "
                                   f"{grant.quota} queries were requested", slug="not-narrowing", title="Not narrowing")
    allowed_unmasked = grant.unmasked_fields & fields
    unmasked = (field_mask(schema, body.unmasked_fields, grant.dataset_id) if body.unmasked_fields is not None
                else allowed_unmasked)
    if unmasked & ~allowed_unmasked:
        raise UnprocessableContent("unmasked_fields may only be among the fields requested unmasked and still granted",
                                   slug="not-narrowing", title="Not narrowing")
    result = consortium.grants.approve(signer, grant_id, fields, duration, quota, unmasked_fields=unmasked)
    return _change(context, grant_id, result)


@router.post("/{grant_id}/reject", response_model=GrantChange, summary="Reject a grant",
             responses=problem_responses(404, 409, 422))
def reject_grant(grant_id: int, body: GrantReason, caller: CurrentCaller, context: ContextDep) -> GrantChange:
    """The owner's operator rejects a requested grant; a grant awaiting co-approval may also be rejected
    by an independent auditor."""
    consortium = context.consortium()
    signer = caller.acting_signer("reject grants")
    grant = grant_or_404(consortium, grant_id)
    if grant.status is GrantStatus.AWAITING_CO_APPROVAL and caller.department.id != grant.owner_dept:
        _require_independent_auditor(consortium, caller, grant, "reject")
    else:
        _require_party(consortium, caller, grant, "owner", "reject")
        _require_state(grant, (GrantStatus.REQUESTED, GrantStatus.AWAITING_CO_APPROVAL), "rejected")
    return _change(context, grant_id, consortium.grants.reject(signer, grant_id, body.reason))


@router.post("/{grant_id}/revoke", response_model=GrantChange, summary="Revoke a grant",
             responses=problem_responses(404, 409, 422))
def revoke_grant(grant_id: int, body: GrantReason, caller: CurrentCaller, context: ContextDep) -> GrantChange:
    """The owner's operator revokes an active grant (or one awaiting co-approval); every later query under
    it is denied, from the block the revocation is mined in."""
    consortium = context.consortium()
    signer = caller.acting_signer("revoke grants")
    grant = grant_or_404(consortium, grant_id)
    _require_party(consortium, caller, grant, "owner", "revoke")
    _require_state(grant, (GrantStatus.ACTIVE, GrantStatus.AWAITING_CO_APPROVAL), "revoked")
    return _change(context, grant_id, consortium.grants.revoke(signer, grant_id, body.reason))


@router.post("/{grant_id}/co-approve", response_model=GrantChange, summary="Co-approve a grant (auditor)",
             responses=problem_responses(404, 409))
def co_approve_grant(grant_id: int, caller: CurrentCaller, context: ContextDep) -> GrantChange:
    """An auditor of an audit office that is neither party activates a secret dataset's approved grant."""
    consortium = context.consortium()
    signer = caller.acting_signer("co-approve grants")
    grant = grant_or_404(consortium, grant_id)
    _require_independent_auditor(consortium, caller, grant, "co-approve")
    _require_state(grant, (GrantStatus.AWAITING_CO_APPROVAL,), "co-approved")
    return _change(context, grant_id, consortium.grants.co_approve(signer, grant_id))


@router.post("/{grant_id}/cancel", response_model=GrantChange, summary="Cancel a request",
             responses=problem_responses(404, 409))
def cancel_grant(grant_id: int, caller: CurrentCaller, context: ContextDep) -> GrantChange:
    """The requester's operator withdraws a request that is not yet decided."""
    consortium = context.consortium()
    signer = caller.acting_signer("cancel requests")
    grant = grant_or_404(consortium, grant_id)
    _require_party(consortium, caller, grant, "requester", "cancel")
    _require_state(grant, (GrantStatus.REQUESTED,), "cancelled")
    return _change(context, grant_id, consortium.grants.cancel(signer, grant_id))
