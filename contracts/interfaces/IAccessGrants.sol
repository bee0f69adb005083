// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";
import {IDataCatalog} from "./IDataCatalog.sol";

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
    event AuditLogBound(address indexed auditLog);

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
    error AccessGrantsInvalidAuditLog(address auditLog);
    error AccessGrantsNotDeployer(address caller);
    error AccessGrantsDatasetMismatch(uint64 grantId, uint64 datasetId);

    /// @notice Longest grant: ten years.
    /// @return The limit, in seconds.
    function MAX_DURATION() external view returns (uint64);

    /// @notice The registry whose departments and roles this contract checks.
    /// @return The registry's address.
    function i_registry() external view returns (IConsortiumRegistry);

    /// @notice The catalog of the datasets grants are for.
    /// @return The catalog's address.
    function i_catalog() external view returns (IDataCatalog);

    /// @notice Names the audit log that counts quota use. Once, by the deployer, right after deployment.
    /// Requirements: the caller deployed this contract; no audit log is bound yet; `auditLogAddress`
    /// is not the zero address. Emits {AuditLogBound}.
    /// @param auditLogAddress The audit log contract.
    function bindAuditLog(address auditLogAddress) external;

    /// @notice Asks the owner of `datasetId` for `fields` of it, for `purpose`, for `duration` seconds
    /// from activation and at most `quota` served queries; `pinnedVersion` 0 follows the latest version.
    /// `unmaskedFields` (a subset of `fields`) asks to see those fields in clear where the provider's
    /// masking policy would otherwise mask them.
    /// Requirements: the caller is an operator of an active department other than the owner; the
    /// dataset exists, is not retired and its owner is a member; `fields` is a non-empty subset of its
    /// schema and `unmaskedFields` a subset of `fields`; 0 < duration
    /// <= MAX_DURATION; quota > 0; a non-empty purpose; `pinnedVersion` is 0 or a published version.
    /// Emits {GrantRequested}.
    /// @param datasetId The dataset asked for.
    /// @param fields The fields asked for (bit i: field i of the dataset's schema).
    /// @param unmaskedFields The fields asked for in clear.
    /// @param purpose Why the data is needed (only its hash is stored; the text is emitted).
    /// @param duration How long the grant lasts once active, in seconds.
    /// @param quota The most served queries.
    /// @param pinnedVersion The dataset version to read, or 0 for the latest.
    /// @return grantId The new grant's id (ids run from 1).
    function requestGrant(
        uint64 datasetId,
        uint256 fields,
        uint256 unmaskedFields,
        string calldata purpose,
        uint64 duration,
        uint64 quota,
        uint32 pinnedVersion
    ) external returns (uint64 grantId);

    /// @notice Approves a requested grant, possibly narrowing its fields, unmasked fields, duration or
    /// quota. For a secret dataset the grant then awaits an auditor's co-approval; otherwise it is
    /// active at once.
    /// Requirements: the caller is an operator of the owner department; the grant is Requested; the
    /// dataset is not retired; `fields` is a non-empty subset of the requested fields, `unmaskedFields`
    /// a subset of both the requested unmasked fields and `fields`; `duration` and `quota` are non-zero
    /// and no larger than requested. Emits {GrantApproved}, and {GrantActivated} unless co-approval is needed.
    /// @param grantId The grant.
    /// @param fields The fields granted.
    /// @param unmaskedFields The fields granted in clear.
    /// @param duration How long the grant lasts once active, in seconds.
    /// @param quota The most served queries.
    function approveGrant(uint64 grantId, uint256 fields, uint256 unmaskedFields, uint64 duration, uint64 quota)
        external;

    /// @notice An auditor's co-approval of a grant on a secret dataset (the two-person rule).
    /// Requirements: the caller is an auditor of an audit office that is neither the owner nor the
    /// requester; the grant is AwaitingCoApproval. Emits {GrantCoApproved} and {GrantActivated}.
    /// @param grantId The grant.
    function coApproveGrant(uint64 grantId) external;

    /// @notice Rejects a grant before it is active: the owner's operator (Requested or
    /// AwaitingCoApproval) or an independent auditor (AwaitingCoApproval).
    /// Emits {GrantRejected}.
    /// @param grantId The grant.
    /// @param reason Why, for the requester (emitted, not stored).
    function rejectGrant(uint64 grantId, string calldata reason) external;

    /// @notice Revokes an approved grant; refused from the next block on.
    /// Requirements: the caller is an operator of the owner department; the grant is Active or
    /// AwaitingCoApproval. Emits {GrantRevoked}.
    /// @param grantId The grant.
    /// @param reason Why, for the requester (emitted, not stored).
    function revokeGrant(uint64 grantId, string calldata reason) external;

    /// @notice Withdraws a request that has not been decided.
    /// Requirements: the caller is an operator of the requesting department; the grant is Requested.
    /// Emits {GrantCancelled}.
    /// @param grantId The grant.
    function cancelRequest(uint64 grantId) external;

    /// @notice Counts `count` served queries against `grantId`. Only the bound audit log calls this.
    /// @dev Served records are evidence and are never refused for quota: an overrun is counted
    /// (`used` > `quota`) and left for auditors to flag. Requirements: the caller is the bound audit
    /// log; the grant exists and is for `datasetId`. Emits {GrantUsed}.
    /// @param grantId The grant the queries were served under.
    /// @param datasetId The dataset they read.
    /// @param count How many served queries to count.
    function recordUse(uint64 grantId, uint64 datasetId, uint64 count) external;

    /// @notice May `account`, acting for department `deptId`, read `fields` of `datasetId` under `grantId` now?
    /// @param account The requesting account.
    /// @param deptId The department it acts for.
    /// @param datasetId The dataset it asks to read.
    /// @param fields The fields it asks for (bit i: field i of the dataset's schema).
    /// @param grantId The grant it relies on.
    /// @return reason Granted, or why not.
    /// @return version The dataset version to serve: the pinned one, or the latest (0 if none).
    /// @return stored The grant as stored (empty if unknown).
    function checkAccess(address account, uint32 deptId, uint64 datasetId, uint256 fields, uint64 grantId)
        external
        view
        returns (AccessReason reason, uint32 version, Grant memory stored);

    /// @notice A grant by id (reverts {AccessGrantsUnknownGrant}).
    /// @param grantId The grant.
    /// @return The grant as stored.
    function grant(uint64 grantId) external view returns (Grant memory);

    /// @notice How many grants were ever requested (ids run from 1).
    /// @return The number of grants.
    function grantCount() external view returns (uint64);

    /// @notice The audit log allowed to count quota use.
    /// @return The bound audit log (0 until `bindAuditLog`).
    function auditLog() external view returns (address);
}
