"""Queries: the requesting side asks a provider's oracle for data under a grant.

``POST /v1/queries {grant_id, fields?, params, dataset_id?}`` — the service signs the EIP-712 query
with the caller's key (``requester.client.OracleClient``), sends it to the oracle of the grant's owner
(its URL from the consortium registry, or the ``oracle_urls`` setting for that department's code),
and answers the records with the oracle's signed receipt. The receipt must be signed by an account
holding the ORACLE role for the owner department, else 502.

An oracle's refusal comes back as a problem with the oracle's ``reason`` and signed ``receipt`` (the
refusal is on the audit trail too): 403 for a denial by the chain (revoked, expired, fields not
granted...), 404/409 as the oracle said, 422 for parameters the oracle refused, 502/503/504 for the
oracle's own source or chain failures. An answer or refusal without a receipt signed by a registered
oracle of the provider is not taken as one (502), an oracle that cannot be reached is a 502, one that
does not answer in time a 504.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from api.auth import CurrentCaller, require_operator
from api.deps import ContextDep
from api.errors import ApiError, BadGateway, Forbidden, UnprocessableContent
from api.routes.catalog import field_mask
from api.routes.grants import grant_or_404
from api.schemas import QueryCreate, QueryPublic, problem_responses
from ledger.contracts.registry import Role
from protocol.receipt import InvalidReceipt, receipt_signer
from requester.client import (
    InconsistentReceipt,
    OracleClient,
    OracleTimeout,
    OracleUnreachable,
    QueryRefused,
    save_receipt,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/queries", tags=["queries"], responses=problem_responses(401, 403, 503))

#: The oracle's status → this API's status for a refusal (anything else: 502, the oracle misbehaved).
_REFUSAL_STATUS = {400: 422, 403: 403, 404: 404, 409: 409, 413: 422, 429: 429, 502: 502, 503: 503, 504: 504}


class OracleRefused(ApiError):
    """The provider's oracle refused the query; the problem carries its reason and signed receipt."""

    slug, title = "oracle-refused", "The provider's oracle refused the query"

    def __init__(self, status: int, detail: str, **extensions: Any) -> None:
        self.status = status
        super().__init__(detail, **extensions)


@router.post("", response_model=QueryPublic, summary="Query a provider's oracle under a grant",
             responses=problem_responses(404, 409, 422, 502, 504))
def query(body: QueryCreate, caller: CurrentCaller, context: ContextDep) -> QueryPublic:
    """Sign the query with the caller's key, send it to the provider's oracle, return records and receipt."""
    consortium = context.consortium()
    signer = caller.acting_signer("query a provider's oracle")
    require_operator(consortium, caller, "query a provider's oracle")
    grant = grant_or_404(consortium, body.grant_id)
    if grant.requester_dept != caller.department.id:
        grantee = consortium.registry.department(grant.requester_dept)
        raise Forbidden(f"grant {grant.id} was given to {grantee.code}; {caller.account} acts for {caller.department.code}",
                        slug="not-grantee", title="Not the grantee", grant_id=grant.id)
    if body.dataset_id is not None and body.dataset_id != grant.dataset_id:
        raise UnprocessableContent(f"grant {grant.id} is for dataset {grant.dataset_id}, not {body.dataset_id}",
                                   slug="dataset-mismatch", title="Dataset mismatch")
    schema = context.dataset_fields(grant.dataset_id)
    fields = field_mask(schema, body.fields, grant.dataset_id) if body.fields is not None else grant.fields
    owner = consortium.registry.department(grant.owner_dept)
    url = context.oracle_url(owner)
    if not url:
        raise BadGateway(f"{owner.code} has published no oracle URL in the registry and none is configured",
                         slug="oracle-unknown", title="Provider's oracle unknown")
    oracles = {a for a in consortium.registry.department_accounts(owner.id) if consortium.registry.has_role(Role.ORACLE, a)}
    client = OracleClient(url, consortium.chain.chain_id, consortium.deployment.addresses["QueryRequests"],
                          timeout=context.settings.oracle_timeout_seconds, ssl_context=context.oracle_ssl_context())
    outcome = "bad_answer"  # unless one of the outcomes below (api.metrics.ORACLE_OUTCOMES)
    started = time.perf_counter()
    try:
        result = client.query(signer, caller.department.id, grant.dataset_id, grant.id, fields, body.params)
    except QueryRefused as refused:
        receipt = refused.receipt if isinstance(refused.receipt, Mapping) else None
        if receipt is None:  # the oracle's own refusals carry a signed receipt; anything else is no answer
            raise BadGateway(f"{owner.code}'s oracle at {url} answered {refused.status} without a receipt: "
                             f"{str(refused.problem.get('detail', ''))[:200]}", slug="oracle-bad-answer",
                             title="Provider's oracle answered badly", oracle_url=url, oracle_status=refused.status) from None
        signed_by = _check_receipt(receipt, oracles, owner.code)
        _keep(context.settings.receipts_dir, receipt)
        outcome = "refused"
        status = _REFUSAL_STATUS.get(refused.status, 502)
        wait = {"Retry-After": str(max(1, refused.retry_after or 1))} if status == 429 else None  # the oracle's limit
        raise OracleRefused(status, f"{owner.code}'s oracle refused: {refused.problem.get('detail') or refused.reason}",
                            headers=wait, reason=refused.reason, receipt=receipt, oracle=signed_by,
                            oracle_status=refused.status, oracle_url=url) from None
    except OracleTimeout:
        outcome = "timeout"
        raise BadGateway(f"{owner.code}'s oracle at {url} did not answer within {context.settings.oracle_timeout_seconds} s",
                         slug="oracle-timeout", title="Provider's oracle timed out", oracle_url=url) from None
    except OracleUnreachable as exc:
        outcome = "unreachable"
        raise BadGateway(f"cannot reach {owner.code}'s oracle at {url} ({type(exc).__name__})",
                         slug="oracle-unreachable", title="Provider's oracle unreachable", oracle_url=url) from None
    except InconsistentReceipt as exc:  # signed, but its record binding or response hash does not hold
        raise BadGateway(f"{owner.code}'s oracle at {url}: {exc}", slug="receipt-inconsistent",
                         title="Inconsistent receipt from the provider's oracle", oracle_url=url) from None
    except (ValueError, KeyError, TypeError, AttributeError):  # a reply that is not the oracle's JSON shape
        raise BadGateway(f"{owner.code}'s oracle at {url} answered something that is not a query answer",
                         slug="oracle-bad-answer", title="Provider's oracle answered badly", oracle_url=url) from None
    else:
        signed_by = _check_receipt(result.receipt, oracles, owner.code)
        _keep(context.settings.receipts_dir, result.receipt)
        outcome = "served"
    finally:
        client.close()
        context.metrics.oracle_called(outcome, time.perf_counter() - started)
    return QueryPublic(records=result.records, receipt=result.receipt, grant_id=grant.id, dataset_id=grant.dataset_id,
                       fields=[name for i, name in enumerate(schema) if fields >> i & 1], oracle=signed_by,
                       oracle_url=url)


def _keep(receipts_dir: Path | None, receipt: Mapping[str, Any]) -> None:
    """Keep a receipt (checked: signed by the provider's oracle) in ``receipts_dir``, if configured."""
    if receipts_dir is not None:
        save_receipt(receipt, receipts_dir)


def _check_receipt(receipt: Mapping[str, Any] | None, oracles: set[str], owner_code: str) -> str:
    """The receipt's signer, which must be a registered oracle of the provider (else 502)."""
    try:
        signer = receipt_signer(receipt) if isinstance(receipt, Mapping) else None
    except InvalidReceipt:
        signer = None
    if signer is None or signer not in oracles:
        raise BadGateway(f"the answer's receipt is not signed by a registered oracle of {owner_code}",
                         slug="receipt-not-from-oracle", title="Receipt not from the provider's oracle")
    return signer
