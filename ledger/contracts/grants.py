"""Access grants: request, approve (narrowing), co-approve, reject, revoke, and the on-chain check."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ledger.chain import TxResult
from ledger.contracts.base import ContractClient
from ledger.keys import Signer


class GrantStatus(IntEnum):
    NONE = 0
    REQUESTED = 1
    AWAITING_CO_APPROVAL = 2
    ACTIVE = 3
    REJECTED = 4
    REVOKED = 5
    CANCELLED = 6


class AccessReason(IntEnum):
    """Why the chain said yes (GRANTED) or no; mirrors IAccessGrants.AccessReason (0..63)."""

    GRANTED = 0
    UNKNOWN_GRANT = 1
    UNKNOWN_DATASET = 2
    DATASET_MISMATCH = 3
    DATASET_RETIRED = 4
    REQUESTER_NOT_MEMBER = 5
    OWNER_NOT_MEMBER = 6
    ACCOUNT_NOT_OPERATOR = 7
    WRONG_DEPARTMENT = 8
    NOT_APPROVED = 9
    AWAITING_CO_APPROVAL = 10
    REJECTED = 11
    REVOKED = 12
    EXPIRED = 13
    QUOTA_EXHAUSTED = 14
    FIELDS_NOT_GRANTED = 15
    NO_FIELDS_REQUESTED = 16
    VERSION_UNAVAILABLE = 17


@dataclass(frozen=True)
class AccessGrant:
    id: int
    dataset_id: int
    requester_dept: int
    owner_dept: int
    pinned_version: int
    status: GrantStatus
    requested_at: int
    activated_at: int
    expires_at: int
    duration: int
    quota: int
    used: int
    fields: int
    unmasked_fields: int
    purpose_hash: bytes

    @classmethod
    def from_abi(cls, raw: tuple) -> AccessGrant:
        return cls(
            id=int(raw[0]),
            dataset_id=int(raw[1]),
            requester_dept=int(raw[2]),
            owner_dept=int(raw[3]),
            pinned_version=int(raw[4]),
            status=GrantStatus(raw[5]),
            requested_at=int(raw[6]),
            activated_at=int(raw[7]),
            expires_at=int(raw[8]),
            duration=int(raw[9]),
            quota=int(raw[10]),
            used=int(raw[11]),
            fields=int(raw[12]),
            unmasked_fields=int(raw[13]),
            purpose_hash=bytes(raw[14]),
        )


@dataclass(frozen=True)
class AccessCheck:
    """The chain's answer to "may this account read these fields now?" and the block it was asked at."""

    reason: AccessReason
    version: int
    grant: AccessGrant
    block_number: int

    @property
    def granted(self) -> bool:
        return self.reason is AccessReason.GRANTED


class AccessGrantsClient(ContractClient):
    """Typed access to AccessGrants."""

    def request(
        self,
        signer: Signer,
        dataset_id: int,
        fields: int,
        purpose: str,
        duration: int,
        quota: int,
        pinned_version: int = 0,
        *,
        unmasked_fields: int = 0,
    ) -> int:
        """Request ``fields`` (a bitmask) of a dataset; ``unmasked_fields`` (a subset) asks to see those
        in clear where the provider's masking policy would mask them."""
        result = self._transact(
            signer, "requestGrant", dataset_id, fields, unmasked_fields, purpose, duration, quota, pinned_version
        )
        return int(self.event(result, "GrantRequested").args["grantId"])

    def approve(
        self, signer: Signer, grant_id: int, fields: int, duration: int, quota: int, *, unmasked_fields: int | None = None
    ) -> TxResult:
        """Approve, possibly narrowing; ``unmasked_fields`` defaults to the requested unmasked fields
        that are still granted."""
        if unmasked_fields is None:
            unmasked_fields = self.grant(grant_id).unmasked_fields & fields
        return self._transact(signer, "approveGrant", grant_id, fields, unmasked_fields, duration, quota)

    def co_approve(self, signer: Signer, grant_id: int) -> TxResult:
        return self._transact(signer, "coApproveGrant", grant_id)

    def reject(self, signer: Signer, grant_id: int, reason: str) -> TxResult:
        return self._transact(signer, "rejectGrant", grant_id, reason)

    def revoke(self, signer: Signer, grant_id: int, reason: str) -> TxResult:
        return self._transact(signer, "revokeGrant", grant_id, reason)

    def cancel(self, signer: Signer, grant_id: int) -> TxResult:
        return self._transact(signer, "cancelRequest", grant_id)

    def bind_audit_log(self, signer: Signer, audit_log: str) -> TxResult:
        return self._transact(signer, "bindAuditLog", audit_log)

    def grant(self, grant_id: int, *, block: int | str = "latest") -> AccessGrant:
        return AccessGrant.from_abi(self._call("grant", grant_id, block=block))

    def grant_count(self) -> int:
        return int(self._call("grantCount"))

    def check_access(
        self, account: str, dept_id: int, dataset_id: int, fields: int, grant_id: int, *, block: int | None = None
    ) -> AccessCheck:
        """The single source of truth: asked at ``block`` (default: the latest block, pinned first so
        the answer says exactly which block it is valid for)."""
        at = self.chain.block_number() if block is None else block
        reason, version, raw = self._plain_call("checkAccess", account, dept_id, dataset_id, fields, grant_id, block=at)
        return AccessCheck(AccessReason(reason), int(version), AccessGrant.from_abi(raw), at)
