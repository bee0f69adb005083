"""AccessGrants on a real chain, through ledger.contracts.grants.AccessGrantsClient.

Covers the grant life cycle (request, approve with narrowing, the two-person rule for secret data,
reject, revoke, cancel), expiry by block time, quota use counted through the audit log, every
``checkAccess`` reason, the audit-log binding, and that the Python enums mirror the Solidity ones.
Every refusal is checked for its exact custom error and arguments and for changing nothing (no
block mined, grants as before).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.contracts.audit_log import AuditEntry, Outcome
from ledger.contracts.catalog import Classification, UpdateFrequency
from ledger.contracts.grants import AccessCheck, AccessGrant, AccessReason, GrantStatus
from ledger.contracts.registry import AccountRole, Role
from ledger.errors import ContractRevert
from ledger.events import read_events
from ledger.hashing import keccak
from tests.conftest import admit
from tests.support.assertions import expect_revert

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
DAY = 86_400
MAX_DURATION = 3650 * DAY
FIELDS = ["统一社会信用代码", "企业名称", "法定代表人", "注册资本", "成立日期", "经营状态"]
ALL_FIELDS = 0b111111
REQUESTED = 0b000111  # credit code, name, legal representative
DURATION = 30 * DAY
QUOTA = 100
PURPOSE = "核查纳税人登记信息 — verify taxpayer registrations (税收征管法 第十五条)"


# --------------------------------------------------------------------------- helpers




def grants_state(consortium, *grant_ids: int) -> tuple:
    """Everything a refused grants call could have changed."""
    return consortium.grants.grant_count(), tuple(consortium.grants.grant(g) for g in grant_ids)


def register(consortium, member, classification=Classification.SENSITIVE, *, versions: int = 1, fields=FIELDS) -> int:
    dataset_id = consortium.catalog.register(member.operator, "企业登记信息", fields, classification, UpdateFrequency.DAILY)
    for v in range(versions):
        consortium.catalog.publish_version(member.operator, dataset_id, keccak(b"v%d" % v), keccak(b"root%d" % v), 10)
    return dataset_id


def request(consortium, member, dataset_id: int, fields: int = REQUESTED, purpose: str = PURPOSE,
            duration: int = DURATION, quota: int = QUOTA, pinned: int = 0) -> int:
    return consortium.grants.request(member.operator, dataset_id, fields, purpose, duration, quota, pinned)


def active_grant(consortium, members, dataset_id: int, requester=None, **kw) -> int:
    """A grant of ``requester`` (default TAX) on ``dataset_id``, approved as requested by SAMR."""
    requester = requester or members.tax
    grant_id = request(consortium, requester, dataset_id, **kw)
    g = consortium.grants.grant(grant_id)
    consortium.grants.approve(members.samr.operator, grant_id, g.fields, g.duration, g.quota)
    return grant_id


def check(consortium, member, dataset_id: int, grant_id: int, fields: int = REQUESTED, *, account=None, block=None) -> AccessCheck:
    account = account or member.operator
    return consortium.grants.check_access(account.address, member.id, dataset_id, fields, grant_id, block=block)


def timestamp(consortium, block: int) -> int:
    return consortium.chain.block_timestamp(block)


def events(result) -> list[tuple[str, dict]]:
    return [(e.name, e.args) for e in result.logs]


def served(grant_id: int, requester, dataset_id: int, n: int, block: int, salt: bytes = b"") -> list[AuditEntry]:
    return [
        AuditEntry(grant_id=grant_id, requester=requester.address, dataset_id=dataset_id, dataset_version=1,
                   outcome=Outcome.SERVED, reason=int(AccessReason.GRANTED), checked_at_block=block,
                   request_hash=keccak(b"request %d" % i + salt), response_hash=keccak(b"response %d" % i + salt))
        for i in range(n)
    ]


@pytest.fixture
def dataset(consortium, members) -> int:
    """A sensitive SAMR company-registration dataset with one published version."""
    return register(consortium, members.samr)


@pytest.fixture
def secret(consortium, members) -> int:
    """A SECRET SAMR dataset with one published version (two-person rule)."""
    return register(consortium, members.samr, Classification.SECRET)


# --------------------------------------------------------------------------- enums


def _sol_enum(path: Path, name: str) -> list[str]:
    body = re.search(rf"enum\s+{name}\s*\{{([^}}]*)\}}", path.read_text()).group(1)
    body = re.sub(r"//[^\n]*", "", body)
    return [m.strip() for m in body.split(",") if m.strip()]


def _upper_snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


@pytest.mark.parametrize(
    "sol_file, enum_name, py_enum",
    [
        ("IAccessGrants.sol", "AccessReason", AccessReason),
        ("IAccessGrants.sol", "GrantStatus", GrantStatus),
        ("IDataCatalog.sol", "Classification", Classification),
        ("IDataCatalog.sol", "UpdateFrequency", UpdateFrequency),
    ],
)
def test_python_enums_mirror_solidity(sol_file, enum_name, py_enum):
    """The Python IntEnum has the Solidity enum's members, same names (UPPER_SNAKE) in the same order from 0."""
    sol_members = _sol_enum(CONTRACTS / "interfaces" / sol_file, enum_name)
    assert len(sol_members) >= 3
    assert [_upper_snake(m) for m in sol_members] == [m.name for m in py_enum]
    assert [m.value for m in py_enum] == list(range(len(sol_members)))


def test_enum_parser_sanity():
    """The CamelCase converter is right on the multi-word names it must handle."""
    assert _upper_snake("AwaitingCoApproval") == "AWAITING_CO_APPROVAL"
    assert _upper_snake("NoFieldsRequested") == "NO_FIELDS_REQUESTED"
    assert _sol_enum(CONTRACTS / "interfaces" / "IAuditLog.sol", "Outcome") == ["Served", "Denied", "SourceFailure"]


# --------------------------------------------------------------------------- requestGrant


def test_request_stores_grant_and_emits_purpose(consortium, members, dataset):
    """GrantRequested carries every field and the purpose text; the grant stores keccak(purpose)."""
    result = consortium.grants._transact(members.tax.operator, "requestGrant", dataset, REQUESTED, 0b1, PURPOSE, DURATION, QUOTA, 1)
    assert events(result) == [("GrantRequested", {
        "grantId": 1, "datasetId": dataset, "requesterDept": members.tax.id, "fields": REQUESTED,
        "unmaskedFields": 0b1, "purpose": PURPOSE, "duration": DURATION, "quota": QUOTA, "pinnedVersion": 1,
    })]
    assert consortium.grants.grant(1) == AccessGrant(
        id=1, dataset_id=dataset, requester_dept=members.tax.id, owner_dept=members.samr.id, pinned_version=1,
        status=GrantStatus.REQUESTED, requested_at=timestamp(consortium, result.block_number), activated_at=0,
        expires_at=0, duration=DURATION, quota=QUOTA, used=0, fields=REQUESTED, unmasked_fields=0b1,
        purpose_hash=keccak(PURPOSE.encode()),
    )
    assert consortium.grants.grant_count() == 1


def test_request_limits_accepted(consortium, members):
    """Boundary values accepted: all fields, MAX_DURATION, quota 2**64-1, pinned = latest, no version yet."""
    ds = register(consortium, members.samr, versions=2)
    g = request(consortium, members.tax, ds, fields=ALL_FIELDS, duration=MAX_DURATION, quota=2**64 - 1, pinned=2)
    assert (consortium.grants.grant(g).fields, consortium.grants.grant(g).pinned_version) == (ALL_FIELDS, 2)
    empty = register(consortium, members.samr, versions=0)
    assert request(consortium, members.psb, empty, duration=1, quota=1, purpose="x") == g + 1
    assert consortium.grants.grant(g + 1).purpose_hash == keccak(b"x")
    assert consortium.grants.grant_count() == 2


def test_request_all_256_fields_of_largest_schema(consortium, members):
    """For a 256-field schema every bit is a field: 2**256-1 is a valid request."""
    fields = [f"f{i}" for i in range(256)]
    result = consortium.catalog._transact(members.samr.operator, "registerDataset", "宽表", fields, 0, 0, gas=29_000_000)
    ds = int(result.logs[0].args["datasetId"])
    g = request(consortium, members.tax, ds, fields=2**256 - 1)
    assert consortium.grants.grant(g).fields == 2**256 - 1


def test_request_refuses_non_operator(consortium, members, dataset, committee):
    """Outsider, an oracle, an auditor, a committee member: AccessGrantsNotOperator(caller)."""
    for signer in (members.outsider, members.tax.oracle, members.audit.auditor, committee[1]):
        expect_revert(consortium.chain,
                      lambda: consortium.grants.request(signer, dataset, REQUESTED, PURPOSE, DURATION, QUOTA),
                      "AccessGrantsNotOperator", {"caller": signer.address}, lambda: grants_state(consortium))


def test_request_refuses_unavailable_dataset(consortium, members, dataset):
    """Unknown (0, 99) or retired dataset: AccessGrantsDatasetNotAvailable(datasetId)."""
    for ds in (0, 99):
        expect_revert(consortium.chain, lambda: request(consortium, members.tax, ds),
                      "AccessGrantsDatasetNotAvailable", {"datasetId": ds}, lambda: grants_state(consortium))
    consortium.catalog.retire(members.samr.operator, dataset)
    expect_revert(consortium.chain, lambda: request(consortium, members.tax, dataset),
                  "AccessGrantsDatasetNotAvailable", {"datasetId": dataset}, lambda: grants_state(consortium))


def test_request_refuses_own_dataset(consortium, members, dataset):
    """A department cannot ask itself: AccessGrantsOwnDataset(datasetId, deptId)."""
    expect_revert(consortium.chain, lambda: request(consortium, members.samr, dataset),
                  "AccessGrantsOwnDataset", {"datasetId": dataset, "deptId": members.samr.id}, lambda: grants_state(consortium))


def test_request_refuses_invalid_fields(consortium, members, dataset):
    """No field, or any bit beyond the 6-field schema: AccessGrantsInvalidFields(fields, fieldCount)."""
    for fields in (0, 1 << 6, ALL_FIELDS | 1 << 6, 1 << 255, 2**256 - 1):
        expect_revert(consortium.chain, lambda: request(consortium, members.tax, dataset, fields=fields),
                      "AccessGrantsInvalidFields", {"fields": fields, "fieldCount": 6}, lambda: grants_state(consortium))


def test_request_refuses_invalid_duration_quota_purpose(consortium, members, dataset):
    """Duration 0 or > MAX_DURATION, quota 0, empty purpose: each refused with its own error."""
    for duration in (0, MAX_DURATION + 1, 2**64 - 1):
        expect_revert(consortium.chain, lambda: request(consortium, members.tax, dataset, duration=duration),
                      "AccessGrantsInvalidDuration", {"duration": duration, "max": MAX_DURATION}, lambda: grants_state(consortium))
    expect_revert(consortium.chain, lambda: request(consortium, members.tax, dataset, quota=0),
                  "AccessGrantsInvalidQuota", {"quota": 0}, lambda: grants_state(consortium))
    expect_revert(consortium.chain, lambda: request(consortium, members.tax, dataset, purpose=""),
                  "AccessGrantsPurposeRequired", {}, lambda: grants_state(consortium))


def test_request_refuses_unpublished_pinned_version(consortium, members, dataset):
    """Pinning a version beyond the latest: AccessGrantsInvalidVersion(version, latest)."""
    expect_revert(consortium.chain, lambda: request(consortium, members.tax, dataset, pinned=2),
                  "AccessGrantsInvalidVersion", {"version": 2, "latest": 1}, lambda: grants_state(consortium))
    empty = register(consortium, members.samr, versions=0)
    expect_revert(consortium.chain, lambda: request(consortium, members.tax, empty, pinned=1),
                  "AccessGrantsInvalidVersion", {"version": 1, "latest": 0}, lambda: grants_state(consortium))


# --------------------------------------------------------------------------- approveGrant


def test_approve_as_requested_activates(consortium, members, dataset):
    """GrantApproved then GrantActivated(expiresAt = block time + duration); the grant is Active."""
    g = request(consortium, members.tax, dataset)
    result = consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA)
    now = timestamp(consortium, result.block_number)
    assert events(result) == [
        ("GrantApproved", {"grantId": g, "approver": members.samr.operator.address, "fields": REQUESTED,
                           "unmaskedFields": 0, "duration": DURATION, "quota": QUOTA}),
        ("GrantActivated", {"grantId": g, "expiresAt": now + DURATION}),
    ]
    stored = consortium.grants.grant(g)
    assert (stored.status, stored.activated_at, stored.expires_at) == (GrantStatus.ACTIVE, now, now + DURATION)
    assert (stored.fields, stored.duration, stored.quota, stored.used) == (REQUESTED, DURATION, QUOTA, 0)
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.GRANTED


def test_approve_narrowing_accepted(consortium, members, dataset):
    """Fewer fields, shorter duration, smaller quota: stored as approved; expiry uses the narrowed duration."""
    g = request(consortium, members.tax, dataset)
    result = consortium.grants.approve(members.samr.operator, g, 0b010, DAY, 5)
    now = timestamp(consortium, result.block_number)
    assert consortium.grants.events_named(result, "GrantActivated")[0].args["expiresAt"] == now + DAY
    stored = consortium.grants.grant(g)
    assert (stored.fields, stored.duration, stored.quota, stored.expires_at) == (0b010, DAY, 5, now + DAY)
    assert check(consortium, members.tax, dataset, g, 0b010).reason is AccessReason.GRANTED
    assert check(consortium, members.tax, dataset, g, 0b001).reason is AccessReason.FIELDS_NOT_GRANTED


def test_approve_refuses_widening(consortium, members, dataset):
    """Any field, duration or quota beyond the request (or zero): AccessGrantsNotNarrowing(grantId)."""
    g = request(consortium, members.tax, dataset)
    for fields, duration, quota in [
        (REQUESTED | 0b1000, DURATION, QUOTA),  # an extra field
        (0b1000, DURATION, QUOTA),  # a different field
        (0, DURATION, QUOTA),
        (REQUESTED, DURATION + 1, QUOTA),
        (REQUESTED, 0, QUOTA),
        (REQUESTED, DURATION, QUOTA + 1),
        (REQUESTED, DURATION, 0),
    ]:
        expect_revert(consortium.chain, lambda: consortium.grants.approve(members.samr.operator, g, fields, duration, quota),
                      "AccessGrantsNotNarrowing", {"grantId": g}, lambda: grants_state(consortium, g))
    assert consortium.grants.grant(g).status is GrantStatus.REQUESTED


def test_approve_refuses_wrong_caller(consortium, members, dataset):
    """The requester itself, another department, the owner's oracle, an auditor, an outsider: NotOwnerOperator."""
    g = request(consortium, members.tax, dataset)
    for signer in (members.tax.operator, members.psb.operator, members.samr.oracle, members.audit.auditor, members.outsider):
        expect_revert(consortium.chain, lambda: consortium.grants.approve(signer, g, REQUESTED, DURATION, QUOTA),
                      "AccessGrantsNotOwnerOperator", {"grantId": g, "caller": signer.address}, lambda: grants_state(consortium, g))


def test_approve_refuses_wrong_status_and_unknown_grant(consortium, members, dataset):
    """Approving an Active, Rejected or Cancelled grant: InvalidStatus(grantId, status); unknown id: UnknownGrant."""
    active = active_grant(consortium, members, dataset)
    rejected = request(consortium, members.tax, dataset)
    consortium.grants.reject(members.samr.operator, rejected, "no")
    cancelled = request(consortium, members.tax, dataset)
    consortium.grants.cancel(members.tax.operator, cancelled)
    for g, status in ((active, GrantStatus.ACTIVE), (rejected, GrantStatus.REJECTED), (cancelled, GrantStatus.CANCELLED)):
        expect_revert(consortium.chain, lambda: consortium.grants.approve(members.samr.operator, g, 1, 1, 1),
                      "AccessGrantsInvalidStatus", {"grantId": g, "status": status},
                      lambda: grants_state(consortium, active, rejected, cancelled))
    for g in (0, 4):
        expect_revert(consortium.chain, lambda: consortium.grants.approve(members.samr.operator, g, 1, 1, 1),
                      "AccessGrantsUnknownGrant", {"grantId": g}, lambda: grants_state(consortium, active))


def test_refused_approval_mined_on_chain_changes_nothing(consortium, members, dataset):
    """Sent with fixed gas (no estimate), a refused approval is mined, fails, and is decoded; nothing changes."""
    g = request(consortium, members.tax, dataset)
    before = grants_state(consortium, g)
    block = consortium.chain.block_number()
    with pytest.raises(ContractRevert) as info:
        consortium.grants._transact(members.tax.operator, "approveGrant", g, REQUESTED, 0, DURATION, QUOTA, gas=300_000)
    assert (info.value.name, info.value.args) == ("AccessGrantsNotOwnerOperator", {"grantId": g, "caller": members.tax.operator.address})
    assert consortium.chain.block_number() == block + 1
    assert grants_state(consortium, g) == before


# --------------------------------------------------------------------------- two-person rule (SECRET)


def test_secret_grant_awaits_co_approval_then_auditor_activates(consortium, members, secret, ganache):
    """Owner approval of secret data only moves to AwaitingCoApproval; the audit office's auditor activates
    it (GrantCoApproved, GrantActivated) and the term runs from the co-approval."""
    g = request(consortium, members.tax, secret)
    result = consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA)
    assert [name for name, _ in events(result)] == ["GrantApproved"]
    stored = consortium.grants.grant(g)
    assert (stored.status, stored.activated_at, stored.expires_at) == (GrantStatus.AWAITING_CO_APPROVAL, 0, 0)
    pending = check(consortium, members.tax, secret, g)
    assert (pending.reason, pending.version) == (AccessReason.AWAITING_CO_APPROVAL, 0)

    ganache.increase_time(3 * DAY)
    result = consortium.grants.co_approve(members.audit.auditor, g)
    now = timestamp(consortium, result.block_number)
    assert events(result) == [
        ("GrantCoApproved", {"grantId": g, "auditor": members.audit.auditor.address}),
        ("GrantActivated", {"grantId": g, "expiresAt": now + DURATION}),
    ]
    stored = consortium.grants.grant(g)
    assert (stored.status, stored.activated_at, stored.expires_at) == (GrantStatus.ACTIVE, now, now + DURATION)
    granted = check(consortium, members.tax, secret, g)
    assert (granted.reason, granted.version) == (AccessReason.GRANTED, 1)


def test_co_approval_refused_for_non_independent_callers(consortium, members, secret):
    """Owner's or requester's operator, the audit office's operator or oracle, an outsider:
    AccessGrantsNotIndependentAuditor(grantId, caller)."""
    g = request(consortium, members.tax, secret)
    consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA)
    for signer in (members.samr.operator, members.tax.operator, members.audit.operator, members.audit.oracle,
                   members.outsider):
        expect_revert(consortium.chain, lambda: consortium.grants.co_approve(signer, g),
                      "AccessGrantsNotIndependentAuditor", {"grantId": g, "caller": signer.address},
                      lambda: grants_state(consortium, g))


def test_co_approval_refused_for_auditor_of_owner_or_requester(consortium, members, committee):
    """An audit office that owns the dataset, or requested it, cannot co-approve; an independent one can."""
    op2, auditor2 = members.spare[0], members.spare[1]
    audit2 = admit(consortium, committee, "第二审计局 Audit Office 2", "AUDIT2",
                   [AccountRole(op2.address, Role.OPERATOR), AccountRole(auditor2.address, Role.AUDITOR)], audit_office=True)
    # AUDIT2 as owner: its own secret dataset requested by TAX
    owned = consortium.catalog.register(op2, "审计底稿", ["编号", "结论"], Classification.SECRET)
    consortium.catalog.publish_version(op2, owned, keccak(b"c"), keccak(b"r"), 1)
    g_owned = consortium.grants.request(members.tax.operator, owned, 0b11, PURPOSE, DURATION, QUOTA)
    consortium.grants.approve(op2, g_owned, 0b11, DURATION, QUOTA)
    # AUDIT2 as requester of SAMR's secret dataset
    samr_secret = register(consortium, members.samr, Classification.SECRET)
    g_requested = consortium.grants.request(op2, samr_secret, REQUESTED, PURPOSE, DURATION, QUOTA)
    consortium.grants.approve(members.samr.operator, g_requested, REQUESTED, DURATION, QUOTA)
    for g in (g_owned, g_requested):
        expect_revert(consortium.chain, lambda: consortium.grants.co_approve(auditor2, g),
                      "AccessGrantsNotIndependentAuditor", {"grantId": g, "caller": auditor2.address},
                      lambda: grants_state(consortium, g_owned, g_requested))
    # the independent audit office co-approves both; and AUDIT2 co-approves a grant it is not party to
    for g in (g_owned, g_requested):
        consortium.grants.co_approve(members.audit.auditor, g)
        assert consortium.grants.grant(g).status is GrantStatus.ACTIVE
    g_other = request(consortium, members.psb, samr_secret)
    consortium.grants.approve(members.samr.operator, g_other, REQUESTED, DURATION, QUOTA)
    consortium.grants.co_approve(auditor2, g_other)
    assert consortium.grants.grant(g_other).status is GrantStatus.ACTIVE
    assert consortium.registry.department(audit2).audit_office


def test_co_approval_refused_after_audit_office_removed(consortium, members, committee, secret):
    """A removed audit office's auditor has no role any more: NotIndependentAuditor."""
    g = request(consortium, members.tax, secret)
    consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA)
    consortium.registry.pass_proposal(committee[:2], consortium.registry.remove_department_call(members.audit.id), "remove AUDIT")
    expect_revert(consortium.chain, lambda: consortium.grants.co_approve(members.audit.auditor, g),
                  "AccessGrantsNotIndependentAuditor", {"grantId": g, "caller": members.audit.auditor.address},
                  lambda: grants_state(consortium, g))


def test_co_approval_refused_in_wrong_status(consortium, members, dataset, secret):
    """A non-secret (already Active) grant, a Requested secret one, an already co-approved one: InvalidStatus."""
    active = active_grant(consortium, members, dataset)
    requested = request(consortium, members.tax, secret)
    done = request(consortium, members.psb, secret)
    consortium.grants.approve(members.samr.operator, done, REQUESTED, DURATION, QUOTA)
    consortium.grants.co_approve(members.audit.auditor, done)
    for g, status in ((active, GrantStatus.ACTIVE), (requested, GrantStatus.REQUESTED), (done, GrantStatus.ACTIVE)):
        expect_revert(consortium.chain, lambda: consortium.grants.co_approve(members.audit.auditor, g),
                      "AccessGrantsInvalidStatus", {"grantId": g, "status": status},
                      lambda: grants_state(consortium, active, requested, done))
    expect_revert(consortium.chain, lambda: consortium.grants.co_approve(members.audit.auditor, 9),
                  "AccessGrantsUnknownGrant", {"grantId": 9})


# --------------------------------------------------------------------------- rejectGrant


def test_reject_by_owner_when_requested(consortium, members, dataset):
    """The owner's operator rejects a request: GrantRejected(grantId, by, reason), status Rejected."""
    g = request(consortium, members.tax, dataset)
    result = consortium.grants.reject(members.samr.operator, g, "目的不明确 purpose unclear")
    assert events(result) == [("GrantRejected", {"grantId": g, "by": members.samr.operator.address,
                                                 "reason": "目的不明确 purpose unclear"})]
    assert consortium.grants.grant(g).status is GrantStatus.REJECTED
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.REJECTED


def test_reject_by_auditor_or_owner_when_awaiting_co_approval(consortium, members, secret):
    """While awaiting co-approval, the independent auditor or the owner may reject."""
    by_auditor = request(consortium, members.tax, secret)
    by_owner = request(consortium, members.psb, secret)
    for g in (by_auditor, by_owner):
        consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA)
    result = consortium.grants.reject(members.audit.auditor, by_auditor, "超出必要范围")
    assert events(result) == [("GrantRejected", {"grantId": by_auditor, "by": members.audit.auditor.address, "reason": "超出必要范围"})]
    consortium.grants.reject(members.samr.operator, by_owner, "")
    assert consortium.grants.grant(by_auditor).status is GrantStatus.REJECTED
    assert consortium.grants.grant(by_owner).status is GrantStatus.REJECTED
    expect_revert(consortium.chain, lambda: consortium.grants.co_approve(members.audit.auditor, by_auditor),
                  "AccessGrantsInvalidStatus", {"grantId": by_auditor, "status": GrantStatus.REJECTED})


def test_reject_refused_for_others(consortium, members, dataset, secret):
    """Requested: only the owner (requester, auditor, outsider get NotOwnerOperator). Awaiting co-approval:
    requester and outsider get NotIndependentAuditor. Active or already rejected: InvalidStatus."""
    requested = request(consortium, members.tax, dataset)
    awaiting = request(consortium, members.tax, secret)
    consortium.grants.approve(members.samr.operator, awaiting, REQUESTED, DURATION, QUOTA)
    active = active_grant(consortium, members, dataset)
    rejected = request(consortium, members.tax, dataset)
    consortium.grants.reject(members.samr.operator, rejected, "no")
    state = lambda: grants_state(consortium, requested, awaiting, active, rejected)  # noqa: E731
    for signer in (members.tax.operator, members.audit.auditor, members.outsider):
        expect_revert(consortium.chain, lambda: consortium.grants.reject(signer, requested, "x"),
                      "AccessGrantsNotOwnerOperator", {"grantId": requested, "caller": signer.address}, state)
    for signer in (members.tax.operator, members.psb.operator, members.outsider):
        expect_revert(consortium.chain, lambda: consortium.grants.reject(signer, awaiting, "x"),
                      "AccessGrantsNotIndependentAuditor", {"grantId": awaiting, "caller": signer.address}, state)
    for g, status in ((active, GrantStatus.ACTIVE), (rejected, GrantStatus.REJECTED)):
        expect_revert(consortium.chain, lambda: consortium.grants.reject(members.samr.operator, g, "x"),
                      "AccessGrantsInvalidStatus", {"grantId": g, "status": status}, state)


# --------------------------------------------------------------------------- revokeGrant


def test_revoke_takes_effect_from_its_block(consortium, members, dataset):
    """GrantRevoked; checkAccess at the block before says GRANTED, at the revoke block and after REVOKED."""
    g = active_grant(consortium, members, dataset)
    consortium.chain.w3.provider.make_request("evm_mine", [])
    result = consortium.grants.revoke(members.samr.operator, g, "数据泄露调查 leak investigation")
    assert events(result) == [("GrantRevoked", {"grantId": g, "by": members.samr.operator.address,
                                                "reason": "数据泄露调查 leak investigation"})]
    before = check(consortium, members.tax, dataset, g, block=result.block_number - 1)
    at = check(consortium, members.tax, dataset, g, block=result.block_number)
    assert (before.reason, before.version, before.block_number) == (AccessReason.GRANTED, 1, result.block_number - 1)
    assert before.grant.status is GrantStatus.ACTIVE
    assert (at.reason, at.version, at.grant.status) == (AccessReason.REVOKED, 0, GrantStatus.REVOKED)
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.REVOKED
    assert consortium.grants.grant(g, block=result.block_number - 1).status is GrantStatus.ACTIVE


def test_revoke_awaiting_co_approval(consortium, members, secret):
    """A secret grant can be revoked before co-approval; co-approval is then refused."""
    g = request(consortium, members.tax, secret)
    consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA)
    consortium.grants.revoke(members.samr.operator, g, "changed mind")
    assert consortium.grants.grant(g).status is GrantStatus.REVOKED
    expect_revert(consortium.chain, lambda: consortium.grants.co_approve(members.audit.auditor, g),
                  "AccessGrantsInvalidStatus", {"grantId": g, "status": GrantStatus.REVOKED})


def test_revoke_refused(consortium, members, dataset):
    """Only the owner's operator (NotOwnerOperator otherwise), only Active/AwaitingCoApproval (InvalidStatus)."""
    active = active_grant(consortium, members, dataset)
    requested = request(consortium, members.tax, dataset)
    revoked = active_grant(consortium, members, dataset)
    consortium.grants.revoke(members.samr.operator, revoked, "r")
    state = lambda: grants_state(consortium, active, requested, revoked)  # noqa: E731
    for signer in (members.tax.operator, members.audit.auditor, members.samr.oracle, members.outsider):
        expect_revert(consortium.chain, lambda: consortium.grants.revoke(signer, active, "x"),
                      "AccessGrantsNotOwnerOperator", {"grantId": active, "caller": signer.address}, state)
    for g, status in ((requested, GrantStatus.REQUESTED), (revoked, GrantStatus.REVOKED)):
        expect_revert(consortium.chain, lambda: consortium.grants.revoke(members.samr.operator, g, "x"),
                      "AccessGrantsInvalidStatus", {"grantId": g, "status": status}, state)
    expect_revert(consortium.chain, lambda: consortium.grants.revoke(members.samr.operator, 77, "x"),
                  "AccessGrantsUnknownGrant", {"grantId": 77}, state)


# --------------------------------------------------------------------------- cancelRequest


def test_cancel_by_requester(consortium, members, dataset):
    """Any operator of the requesting department cancels a Requested grant: GrantCancelled, status Cancelled."""
    g1 = request(consortium, members.tax, dataset)
    g2 = request(consortium, members.tax, dataset)
    result = consortium.grants.cancel(members.tax.operator, g1)
    assert events(result) == [("GrantCancelled", {"grantId": g1, "by": members.tax.operator.address})]
    assert consortium.grants.grant(g1).status is GrantStatus.CANCELLED
    assert check(consortium, members.tax, dataset, g1).reason is AccessReason.REJECTED
    second_operator = members.spare[2]
    consortium.registry.add_account(members.tax.operator, second_operator.address, Role.OPERATOR)
    consortium.grants.cancel(second_operator, g2)
    assert consortium.grants.grant(g2).status is GrantStatus.CANCELLED


def test_cancel_refused(consortium, members, dataset):
    """Owner, other department, requester's oracle, outsider: NotRequesterOperator; not Requested: InvalidStatus."""
    requested = request(consortium, members.tax, dataset)
    active = active_grant(consortium, members, dataset)
    cancelled = request(consortium, members.tax, dataset)
    consortium.grants.cancel(members.tax.operator, cancelled)
    state = lambda: grants_state(consortium, requested, active, cancelled)  # noqa: E731
    for signer in (members.samr.operator, members.psb.operator, members.tax.oracle, members.outsider):
        expect_revert(consortium.chain, lambda: consortium.grants.cancel(signer, requested),
                      "AccessGrantsNotRequesterOperator", {"grantId": requested, "caller": signer.address}, state)
    for g, status in ((active, GrantStatus.ACTIVE), (cancelled, GrantStatus.CANCELLED)):
        expect_revert(consortium.chain, lambda: consortium.grants.cancel(members.tax.operator, g),
                      "AccessGrantsInvalidStatus", {"grantId": g, "status": status}, state)
    expect_revert(consortium.chain, lambda: consortium.grants.cancel(members.tax.operator, 50),
                  "AccessGrantsUnknownGrant", {"grantId": 50}, state)


# --------------------------------------------------------------------------- expiry


def test_expiry_boundary_by_block_time(consortium, members, dataset, ganache):
    """GRANTED in a block at expiresAt - 1, EXPIRED in the block at expiresAt; status stays Active."""
    g = active_grant(consortium, members, dataset, duration=DAY)
    expires_at = consortium.grants.grant(g).expires_at
    ganache.rpc("evm_mine", [{"timestamp": expires_at - 1}])
    last_second = consortium.chain.block_number()
    assert timestamp(consortium, last_second) == expires_at - 1
    ganache.rpc("evm_mine", [{"timestamp": expires_at}])
    expired_block = consortium.chain.block_number()
    assert check(consortium, members.tax, dataset, g, block=last_second).reason is AccessReason.GRANTED
    at = check(consortium, members.tax, dataset, g, block=expired_block)
    assert (at.reason, at.version, at.grant.status) == (AccessReason.EXPIRED, 0, GrantStatus.ACTIVE)


def test_expiry_after_increase_time(consortium, members, dataset, ganache):
    """Moving time past expiresAt expires the grant; an expired grant can be neither approved nor cancelled."""
    g = active_grant(consortium, members, dataset, duration=2 * DAY)
    ganache.increase_time(DAY)
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.GRANTED
    ganache.increase_time(DAY + 1)
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.EXPIRED
    assert consortium.grants.grant(g).status is GrantStatus.ACTIVE
    # still revocable (Active), after which REVOKED takes precedence over EXPIRED
    consortium.grants.revoke(members.samr.operator, g, "cleanup")
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.REVOKED


# --------------------------------------------------------------------------- quota through the audit log


def test_quota_counted_through_audit_log(consortium, members, dataset):
    """Served records anchored by the owner's oracle count against the quota (GrantUsed); at the quota
    checkAccess says QUOTA_EXHAUSTED, and overruns are still counted."""
    g = active_grant(consortium, members, dataset, quota=3)
    block = consortium.chain.block_number()
    first = consortium.audit_log.append(members.samr.oracle, 1, served(g, members.tax.operator, dataset, 2, block))
    receipt = consortium.chain.w3.eth.get_transaction_receipt(first.tx_hash)
    used_events = [e for e in consortium.events.decode_all(receipt["logs"]) if e.name == "GrantUsed"]
    assert [(e.args, e.address) for e in used_events] == [({"grantId": g, "count": 2, "used": 2, "quota": 3}, consortium.grants.address)]
    ok = check(consortium, members.tax, dataset, g)
    assert (ok.reason, ok.version, ok.grant.used) == (AccessReason.GRANTED, 1, 2)
    consortium.audit_log.append(members.samr.oracle, 3, served(g, members.tax.operator, dataset, 1, block, b"b"))
    exhausted = check(consortium, members.tax, dataset, g)
    assert (exhausted.reason, exhausted.version, exhausted.grant.used) == (AccessReason.QUOTA_EXHAUSTED, 0, 3)
    consortium.audit_log.append(members.samr.oracle, 4, served(g, members.tax.operator, dataset, 2, block, b"c"))
    assert consortium.grants.grant(g).used == 5
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.QUOTA_EXHAUSTED


def test_denied_records_do_not_count(consortium, members, dataset):
    """Only SERVED records use quota: denials and source failures leave `used` alone."""
    g = active_grant(consortium, members, dataset, quota=1)
    block = consortium.chain.block_number()
    entries = [AuditEntry(grant_id=g, requester=members.tax.operator.address, dataset_id=dataset, dataset_version=1,
                          outcome=outcome, reason=reason, checked_at_block=block,
                          request_hash=keccak(b"q%d" % i), response_hash=b"\x00" * 32)
               for i, (outcome, reason) in enumerate([(Outcome.DENIED, int(AccessReason.FIELDS_NOT_GRANTED)),
                                                       (Outcome.SOURCE_FAILURE, 70)])]
    consortium.audit_log.append(members.samr.oracle, 1, entries)
    assert consortium.grants.grant(g).used == 0
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.GRANTED


# --------------------------------------------------------------------------- checkAccess


def test_check_access_covers_every_reason(consortium, members, committee, ganache):
    """One consortium walked through a scenario for every AccessReason value; each answer is exact
    (reason, version 0 on refusal, the grant as stored) and together they cover the whole enum."""
    seen: set[AccessReason] = set()

    def expect(reason, member, dataset_id, grant_id, fields=REQUESTED, account=None, version=0):
        result = check(consortium, member, dataset_id, grant_id, fields, account=account)
        assert (result.reason, result.version) == (reason, version), reason.name
        if grant_id and grant_id <= consortium.grants.grant_count():
            assert result.grant == consortium.grants.grant(grant_id)
        else:
            assert result.grant.id == 0 and result.grant.status is GrantStatus.NONE
        assert result.granted is (reason is AccessReason.GRANTED)
        seen.add(reason)

    tax, psb = members.tax, members.psb
    ds = register(consortium, members.samr)
    no_version = register(consortium, members.samr, versions=0)
    secret_ds = register(consortium, members.samr, Classification.SECRET)
    to_retire = register(consortium, members.samr)

    g = active_grant(consortium, members, ds)
    expect(AccessReason.GRANTED, tax, ds, g, version=1)
    expect(AccessReason.UNKNOWN_GRANT, tax, ds, 999)
    expect(AccessReason.UNKNOWN_GRANT, tax, ds, 0)
    expect(AccessReason.UNKNOWN_DATASET, tax, 999, g)
    expect(AccessReason.DATASET_MISMATCH, tax, no_version, g)
    expect(AccessReason.WRONG_DEPARTMENT, psb, ds, g)
    expect(AccessReason.ACCOUNT_NOT_OPERATOR, tax, ds, g, account=tax.oracle)
    expect(AccessReason.ACCOUNT_NOT_OPERATOR, tax, ds, g, account=members.outsider)
    expect(AccessReason.ACCOUNT_NOT_OPERATOR, tax, ds, g, account=members.samr.operator)
    expect(AccessReason.NO_FIELDS_REQUESTED, tax, ds, g, fields=0)
    expect(AccessReason.FIELDS_NOT_GRANTED, tax, ds, g, fields=0b1000)
    expect(AccessReason.FIELDS_NOT_GRANTED, tax, ds, g, fields=REQUESTED | 1 << 200)

    expect(AccessReason.NOT_APPROVED, tax, ds, request(consortium, tax, ds))
    awaiting = request(consortium, tax, secret_ds)
    consortium.grants.approve(members.samr.operator, awaiting, REQUESTED, DURATION, QUOTA)
    expect(AccessReason.AWAITING_CO_APPROVAL, tax, secret_ds, awaiting)
    rejected = request(consortium, tax, ds)
    consortium.grants.reject(members.samr.operator, rejected, "no")
    expect(AccessReason.REJECTED, tax, ds, rejected)
    revoked = active_grant(consortium, members, ds)
    consortium.grants.revoke(members.samr.operator, revoked, "no")
    expect(AccessReason.REVOKED, tax, ds, revoked)
    expect(AccessReason.VERSION_UNAVAILABLE, tax, no_version, active_grant(consortium, members, no_version))
    retired = active_grant(consortium, members, to_retire)
    consortium.catalog.retire(members.samr.operator, to_retire)
    expect(AccessReason.DATASET_RETIRED, tax, to_retire, retired)
    quota = active_grant(consortium, members, ds, quota=1)
    consortium.audit_log.append(members.samr.oracle, 1, served(quota, tax.operator, ds, 1, consortium.chain.block_number()))
    expect(AccessReason.QUOTA_EXHAUSTED, tax, ds, quota)
    short = active_grant(consortium, members, ds, duration=60)
    ganache.increase_time(61)
    expect(AccessReason.EXPIRED, tax, ds, short)
    expect(AccessReason.GRANTED, tax, ds, g, version=1)

    psb_grant = active_grant(consortium, members, ds, requester=psb)
    consortium.registry.pass_proposal(committee[:2], consortium.registry.remove_department_call(psb.id), "remove PSB")
    expect(AccessReason.REQUESTER_NOT_MEMBER, psb, ds, psb_grant)
    consortium.registry.pass_proposal(committee[:2], consortium.registry.remove_department_call(members.samr.id), "remove SAMR")
    expect(AccessReason.OWNER_NOT_MEMBER, tax, ds, g)

    assert seen == set(AccessReason), f"not covered: {sorted(r.name for r in set(AccessReason) - seen)}"


def test_check_access_follows_latest_or_pinned_version(consortium, members, dataset):
    """Unpinned grants serve the latest version (moving with new versions); pinned ones stay on theirs."""
    follow = active_grant(consortium, members, dataset)
    pinned = active_grant(consortium, members, dataset, pinned=1)
    assert check(consortium, members.tax, dataset, follow).version == 1
    for v in (2, 3):
        consortium.catalog.publish_version(members.samr.operator, dataset, keccak(b"n%d" % v), keccak(b"r"), 1)
        follow_check = check(consortium, members.tax, dataset, follow)
        pinned_check = check(consortium, members.tax, dataset, pinned)
        assert (follow_check.reason, follow_check.version) == (AccessReason.GRANTED, v)
        assert (pinned_check.reason, pinned_check.version) == (AccessReason.GRANTED, 1)
    pinned3 = active_grant(consortium, members, dataset, pinned=3)
    assert check(consortium, members.tax, dataset, pinned3).version == 3


def test_check_access_version_unavailable_until_first_publication(consortium, members):
    """A grant on a dataset without versions says VERSION_UNAVAILABLE until version 1 is published."""
    ds = register(consortium, members.samr, versions=0)
    g = active_grant(consortium, members, ds)
    assert check(consortium, members.tax, ds, g).reason is AccessReason.VERSION_UNAVAILABLE
    consortium.catalog.publish_version(members.samr.operator, ds, keccak(b"c"), keccak(b"r"), 1)
    result = check(consortium, members.tax, ds, g)
    assert (result.reason, result.version) == (AccessReason.GRANTED, 1)


def test_check_access_any_operator_of_requester_and_account_changes(consortium, members, dataset):
    """Access is the department's: a newly added operator is GRANTED; a removed one is ACCOUNT_NOT_OPERATOR."""
    g = active_grant(consortium, members, dataset)
    extra = members.spare[3]
    assert check(consortium, members.tax, dataset, g, account=extra).reason is AccessReason.ACCOUNT_NOT_OPERATOR
    consortium.registry.add_account(members.tax.operator, extra.address, Role.OPERATOR)
    assert check(consortium, members.tax, dataset, g, account=extra).reason is AccessReason.GRANTED
    consortium.registry.remove_account(members.tax.operator, extra.address, Role.OPERATOR)
    assert check(consortium, members.tax, dataset, g, account=extra).reason is AccessReason.ACCOUNT_NOT_OPERATOR
    assert check(consortium, members.tax, dataset, g).reason is AccessReason.GRANTED


def test_check_access_default_block_is_pinned_latest(consortium, members, dataset):
    """Without ``block`` the client asks at the latest block and reports that block number."""
    g = active_grant(consortium, members, dataset)
    result = check(consortium, members.tax, dataset, g)
    assert result.block_number == consortium.chain.block_number()
    assert result.grant == consortium.grants.grant(g)


# --------------------------------------------------------------------------- bindAuditLog / recordUse


def test_audit_log_bound_once_at_deployment(consortium, members, accounts):
    """Deployment bound the audit log (AuditLogBound); a second bind by the deployer is AlreadyBound,
    by anyone else NotDeployer."""
    assert consortium.grants.contract.functions.auditLog().call() == consortium.audit_log.address
    bound = [e for e in read_events(consortium.chain, consortium.events, [consortium.grants.address],
                                    consortium.grants.from_block) if e.name == "AuditLogBound"]
    assert [e.args for e in bound] == [{"auditLog": consortium.audit_log.address}]
    state = lambda: consortium.grants.contract.functions.auditLog().call()  # noqa: E731
    expect_revert(consortium.chain, lambda: consortium.grants.bind_audit_log(accounts[0], members.outsider.address),
                  "AccessGrantsAuditLogAlreadyBound", {"auditLog": consortium.audit_log.address}, state)
    for signer in (accounts[1], members.samr.operator, members.outsider):
        expect_revert(consortium.chain, lambda: consortium.grants.bind_audit_log(signer, signer.address),
                      "AccessGrantsNotDeployer", {"caller": signer.address}, state)


def test_bind_audit_log_refuses_the_zero_address(consortium, accounts, compilation):
    """A fresh AccessGrants: binding the zero address is InvalidAuditLog (slither's missing-zero-check,
    issue 15); the deployer can then bind a real audit log, once (AuditLogBound with the address indexed)."""
    w3 = consortium.chain.w3
    art = compilation["AccessGrants"]
    address, _ = consortium.chain.deploy(accounts[0], w3.eth.contract(abi=art.abi, bytecode=art.bytecode),
                                         consortium.registry.address, consortium.catalog.address)
    fresh = w3.eth.contract(address=address, abi=art.abi)
    state = lambda: fresh.functions.auditLog().call()  # noqa: E731
    zero = "0x" + "00" * 20
    expect_revert(consortium.chain, lambda: consortium.chain.transact(accounts[0], fresh.functions.bindAuditLog(zero)),
                  "AccessGrantsInvalidAuditLog", {"auditLog": zero}, state)
    assert state() == zero
    result = consortium.chain.transact(accounts[0], fresh.functions.bindAuditLog(consortium.audit_log.address))
    assert state() == consortium.audit_log.address
    (log,) = w3.eth.get_transaction_receipt(result.tx_hash)["logs"]
    assert log["topics"][1] == bytes(12) + bytes.fromhex(consortium.audit_log.address[2:])  # indexed


def test_record_use_only_from_audit_log(consortium, members, dataset, accounts):
    """recordUse called directly (deployer, owner's oracle, owner's operator, outsider): NotAuditLog(caller)."""
    g = active_grant(consortium, members, dataset)
    for signer in (accounts[0], members.samr.oracle, members.samr.operator, members.outsider):
        expect_revert(consortium.chain,
                      lambda: consortium.chain.transact(signer, consortium.grants.contract.functions.recordUse(g, dataset, 1)),
                      "AccessGrantsNotAuditLog", {"caller": signer.address}, lambda: grants_state(consortium, g))


def test_served_record_for_wrong_dataset_or_unknown_grant_refused(consortium, members, dataset):
    """Through the audit log, a served record naming a grant of another dataset (or no such grant) is
    refused by recordUse: AccessGrantsDatasetMismatch(grantId, datasetId); nothing is anchored."""
    other = register(consortium, members.samr)
    g = active_grant(consortium, members, dataset)
    block = consortium.chain.block_number()
    state = lambda: (grants_state(consortium, g), consortium.audit_log.oracle_state(members.samr.oracle.address))  # noqa: E731
    for grant_id, ds in ((g, other), (42, dataset)):
        expect_revert(consortium.chain,
                      lambda: consortium.audit_log.append(members.samr.oracle, 1, served(grant_id, members.tax.operator, ds, 1, block)),
                      "AccessGrantsDatasetMismatch", {"grantId": grant_id, "datasetId": ds}, state)


# --------------------------------------------------------------------------- unmasked fields, retired and removed owners


def test_unmasked_fields_requested_narrowed_and_stored(consortium, members, dataset):
    """A grant may name granted fields to be shown unmasked; approval may narrow that set (the client
    keeps the requested set by default) but never widen it."""
    g = request(consortium, members.tax, dataset)
    consortium.grants._transact(members.tax.operator, "cancelRequest", g)
    g = consortium.grants.request(members.tax.operator, dataset, REQUESTED, PURPOSE, DURATION, QUOTA, unmasked_fields=0b011)
    assert consortium.grants.grant(g).unmasked_fields == 0b011
    expect_revert(consortium.chain, lambda: consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA, unmasked_fields=0b111),
                  "AccessGrantsNotNarrowing", {"grantId": g}, lambda: grants_state(consortium, g))
    # narrowing fields drops unmasked fields outside them by default
    result = consortium.grants.approve(members.samr.operator, g, 0b110, DURATION, QUOTA)
    assert events(result)[0] == ("GrantApproved", {"grantId": g, "approver": members.samr.operator.address, "fields": 0b110,
                                                   "unmaskedFields": 0b010, "duration": DURATION, "quota": QUOTA})
    assert consortium.grants.grant(g).unmasked_fields == 0b010


def test_unmasked_fields_outside_requested_fields_refused(consortium, members, dataset):
    expect_revert(consortium.chain,
                  lambda: consortium.grants.request(members.tax.operator, dataset, 0b001, PURPOSE, DURATION, QUOTA, unmasked_fields=0b011),
                  "AccessGrantsInvalidUnmaskedFields", {"unmaskedFields": 0b011, "fields": 0b001},
                  lambda: consortium.grants.grant_count())


def test_approval_after_retirement_refused(consortium, members, dataset):
    """A retired dataset takes no new grants: a pending request can no longer be approved."""
    g = request(consortium, members.tax, dataset)
    consortium.catalog.retire(members.samr.operator, dataset)
    expect_revert(consortium.chain, lambda: consortium.grants.approve(members.samr.operator, g, REQUESTED, DURATION, QUOTA),
                  "AccessGrantsDatasetNotAvailable", {"datasetId": dataset}, lambda: grants_state(consortium, g))


def test_request_to_removed_owner_refused(consortium, members, committee, dataset):
    consortium.registry.pass_proposal(committee[:2], consortium.registry.remove_department_call(members.samr.id), "remove SAMR")
    expect_revert(consortium.chain, lambda: request(consortium, members.tax, dataset),
                  "AccessGrantsDatasetNotAvailable", {"datasetId": dataset}, lambda: consortium.grants.grant_count())
