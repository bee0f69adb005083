// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAccessGrants
/// @notice Who may read which fields of which dataset, for what purpose, until when and how often.
interface IAccessGrants {
    enum GrantStatus {
        None,
        Requested,
        AwaitingCoApproval,
        Active,
        Rejected,
        Revoked,
        Cancelled
    }

    /// @notice Why `checkAccess` said yes (Granted) or no. Values 0..63 are the chain's; audit records
    /// use 64..255 for refusals decided off chain by an oracle (bad signature, replay, source down...).
    enum AccessReason {
        Granted,
        UnknownGrant,
        UnknownDataset,
        DatasetMismatch,
        DatasetRetired,
        RequesterNotMember,
        OwnerNotMember,
        AccountNotOperator,
        WrongDepartment,
        NotApproved,
        AwaitingCoApproval,
        Rejected,
        Revoked,
        Expired,
        QuotaExhausted,
        FieldsNotGranted,
        NoFieldsRequested,
        VersionUnavailable
    }

    struct Grant {
        uint64 id;
        uint64 datasetId;
        uint32 requesterDept;
        uint32 ownerDept;
        uint32 pinnedVersion; // 0: follow the latest published version
        GrantStatus status;
        uint64 requestedAt;
        uint64 activatedAt;
        uint64 expiresAt; // 0 until active
        uint64 duration; // seconds, from activation
        uint64 quota; // most served queries
        uint64 used; // served queries anchored in the audit log
        uint256 fields; // bit i: field i of the dataset's schema
        uint256 unmaskedFields; // granted fields the oracle shows in clear despite its masking policy
        bytes32 purposeHash; // keccak256 of the stated purpose (emitted in full in {GrantRequested})
    }

    event GrantRequested(
        uint64 indexed grantId,
        uint64 indexed datasetId,
        uint32 indexed requesterDept,
        uint256 fields,
        uint256 unmaskedFields,
        string purpose,
        uint64 duration,
        uint64 quota,
        uint32 pinnedVersion
    );
    event GrantApproved(
        uint64 indexed grantId, address indexed approver, uint256 fields, uint256 unmaskedFields, uint64 duration, uint64 quota
    );
    event GrantCoApproved(uint64 indexed grantId, address indexed auditor);
    event GrantActivated(uint64 indexed grantId, uint64 expiresAt);
    event GrantRejected(uint64 indexed grantId, address indexed by, string reason);
    event GrantRevoked(uint64 indexed grantId, address indexed by, string reason);
    event GrantCancelled(uint64 indexed grantId, address indexed by);
    event GrantUsed(uint64 indexed grantId, uint64 count, uint64 used, uint64 quota);
    event AuditLogBound(address auditLog);

    error AccessGrantsNotOperator(address caller);
    error AccessGrantsNotOwnerOperator(uint64 grantId, address caller);
    error AccessGrantsNotRequesterOperator(uint64 grantId, address caller);
    error AccessGrantsNotIndependentAuditor(uint64 grantId, address caller);
    error AccessGrantsUnknownGrant(uint64 grantId);
    error AccessGrantsInvalidStatus(uint64 grantId, GrantStatus status);
    error AccessGrantsDatasetNotAvailable(uint64 datasetId);
    error AccessGrantsOwnDataset(uint64 datasetId, uint32 deptId);
    error AccessGrantsInvalidFields(uint256 fields, uint16 fieldCount);
    error AccessGrantsInvalidUnmaskedFields(uint256 unmaskedFields, uint256 fields);
    error AccessGrantsInvalidDuration(uint64 duration, uint64 max);
    error AccessGrantsInvalidQuota(uint64 quota);
    error AccessGrantsInvalidVersion(uint32 version, uint32 latest);
    error AccessGrantsPurposeRequired();
    error AccessGrantsNotNarrowing(uint64 grantId);
    error AccessGrantsNotAuditLog(address caller);
    error AccessGrantsAuditLogAlreadyBound(address auditLog);
    error AccessGrantsNotDeployer(address caller);
    error AccessGrantsDatasetMismatch(uint64 grantId, uint64 datasetId);

    /// @notice May `account`, acting for department `deptId`, read `fields` of `datasetId` under `grantId` now?
    /// @return reason Granted, or why not.
    /// @return version The dataset version to serve: the pinned one, or the latest (0 if none).
    /// @return grant The grant as stored (empty if unknown).
    function checkAccess(address account, uint32 deptId, uint64 datasetId, uint256 fields, uint64 grantId)
        external
        view
        returns (AccessReason reason, uint32 version, Grant memory grant);

    /// @notice Counts `count` served queries against `grantId`. Only the bound audit log calls this.
    function recordUse(uint64 grantId, uint64 datasetId, uint64 count) external;
}
