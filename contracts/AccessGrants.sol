// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";
import {IDataCatalog} from "./interfaces/IDataCatalog.sol";
import {IAccessGrants} from "./interfaces/IAccessGrants.sol";

/// @title AccessGrants
/// @notice The life of a grant: requested by a department, approved (possibly narrowed), rejected or
/// revoked by the dataset's owner, co-approved by an independent auditor for secret data, expired
/// by block time. `checkAccess` is the single source of truth an oracle consults before serving.
contract AccessGrants is IAccessGrants {
    /// @inheritdoc IAccessGrants
    uint64 public constant MAX_DURATION = 3650 days;

    /// @inheritdoc IAccessGrants
    IConsortiumRegistry public immutable i_registry;
    /// @inheritdoc IAccessGrants
    IDataCatalog public immutable i_catalog;
    address private immutable i_deployer;
    bytes32 private immutable i_operatorRole;
    bytes32 private immutable i_auditorRole;

    address private s_auditLog;
    uint64 private s_grantCount;
    mapping(uint64 grantId => Grant) private s_grants;

    /// @param registry The consortium registry (departments and roles).
    /// @param catalog The data catalog (datasets and their owners).
    constructor(IConsortiumRegistry registry, IDataCatalog catalog) {
        i_registry = registry;
        i_catalog = catalog;
        i_deployer = msg.sender;
        i_operatorRole = registry.OPERATOR_ROLE();
        i_auditorRole = registry.AUDITOR_ROLE();
    }

    /// @inheritdoc IAccessGrants
    function bindAuditLog(address auditLogAddress) external {
        if (msg.sender != i_deployer) revert AccessGrantsNotDeployer(msg.sender);
        if (s_auditLog != address(0)) revert AccessGrantsAuditLogAlreadyBound(s_auditLog);
        if (auditLogAddress == address(0)) revert AccessGrantsInvalidAuditLog(auditLogAddress);
        s_auditLog = auditLogAddress;
        emit AuditLogBound(auditLogAddress);
    }

    /// @inheritdoc IAccessGrants
    function requestGrant(
        uint64 datasetId,
        uint256 fields,
        uint256 unmaskedFields,
        string calldata purpose,
        uint64 duration,
        uint64 quota,
        uint32 pinnedVersion
    ) external returns (uint64 grantId) {
        uint32 requesterDept = i_registry.departmentWithRole(i_operatorRole, msg.sender);
        if (requesterDept == 0) revert AccessGrantsNotOperator(msg.sender);
        uint32 ownerDept = i_catalog.ownerOf(datasetId);
        if (ownerDept == 0) revert AccessGrantsDatasetNotAvailable(datasetId);
        IDataCatalog.Dataset memory ds = i_catalog.dataset(datasetId);
        if (ds.retired || !i_registry.isActiveDepartment(ownerDept)) revert AccessGrantsDatasetNotAvailable(datasetId);
        if (ownerDept == requesterDept) revert AccessGrantsOwnDataset(datasetId, requesterDept);
        if (fields == 0 || (ds.fieldCount < 256 && fields >> ds.fieldCount != 0)) {
            revert AccessGrantsInvalidFields(fields, ds.fieldCount);
        }
        if (unmaskedFields & ~fields != 0) revert AccessGrantsInvalidUnmaskedFields(unmaskedFields, fields);
        if (duration == 0 || duration > MAX_DURATION) revert AccessGrantsInvalidDuration(duration, MAX_DURATION);
        if (quota == 0) revert AccessGrantsInvalidQuota(quota);
        if (bytes(purpose).length == 0) revert AccessGrantsPurposeRequired();
        if (pinnedVersion > ds.versionCount) revert AccessGrantsInvalidVersion(pinnedVersion, ds.versionCount);

        grantId = ++s_grantCount;
        Grant storage g = s_grants[grantId];
        g.id = grantId;
        g.datasetId = datasetId;
        g.requesterDept = requesterDept;
        g.ownerDept = ownerDept;
        g.pinnedVersion = pinnedVersion;
        g.status = GrantStatus.Requested;
        g.requestedAt = uint64(block.timestamp);
        g.duration = duration;
        g.quota = quota;
        g.fields = fields;
        g.unmaskedFields = unmaskedFields;
        g.purposeHash = keccak256(bytes(purpose));
        emit GrantRequested(grantId, datasetId, requesterDept, fields, unmaskedFields, purpose, duration, quota, pinnedVersion);
    }

    /// @inheritdoc IAccessGrants
    function approveGrant(uint64 grantId, uint256 fields, uint256 unmaskedFields, uint64 duration, uint64 quota)
        external
    {
        Grant storage g = _grant(grantId);
        _requireOwnerOperator(g);
        _requireStatus(g, GrantStatus.Requested);
        if (
            fields == 0 || fields & ~g.fields != 0 || unmaskedFields & ~(g.unmaskedFields & fields) != 0
                || duration == 0 || duration > g.duration || quota == 0 || quota > g.quota
        ) revert AccessGrantsNotNarrowing(grantId);
        IDataCatalog.Dataset memory ds = i_catalog.dataset(g.datasetId);
        if (ds.retired) revert AccessGrantsDatasetNotAvailable(g.datasetId);
        g.fields = fields;
        g.unmaskedFields = unmaskedFields;
        g.duration = duration;
        g.quota = quota;
        emit GrantApproved(grantId, msg.sender, fields, unmaskedFields, duration, quota);
        if (ds.classification == IDataCatalog.Classification.Secret) {
            g.status = GrantStatus.AwaitingCoApproval;
        } else {
            _activate(g);
        }
    }

    /// @inheritdoc IAccessGrants
    function coApproveGrant(uint64 grantId) external {
        Grant storage g = _grant(grantId);
        _requireIndependentAuditor(g);
        _requireStatus(g, GrantStatus.AwaitingCoApproval);
        emit GrantCoApproved(grantId, msg.sender);
        _activate(g);
    }

    /// @inheritdoc IAccessGrants
    function rejectGrant(uint64 grantId, string calldata reason) external {
        Grant storage g = _grant(grantId);
        if (g.status == GrantStatus.AwaitingCoApproval) {
            if (!_isOwnerOperator(g)) _requireIndependentAuditor(g);
        } else {
            _requireOwnerOperator(g);
            _requireStatus(g, GrantStatus.Requested);
        }
        g.status = GrantStatus.Rejected;
        emit GrantRejected(grantId, msg.sender, reason);
    }

    /// @inheritdoc IAccessGrants
    function revokeGrant(uint64 grantId, string calldata reason) external {
        Grant storage g = _grant(grantId);
        _requireOwnerOperator(g);
        if (g.status != GrantStatus.Active && g.status != GrantStatus.AwaitingCoApproval) {
            revert AccessGrantsInvalidStatus(grantId, g.status);
        }
        g.status = GrantStatus.Revoked;
        emit GrantRevoked(grantId, msg.sender, reason);
    }

    /// @inheritdoc IAccessGrants
    function cancelRequest(uint64 grantId) external {
        Grant storage g = _grant(grantId);
        if (i_registry.departmentWithRole(i_operatorRole, msg.sender) != g.requesterDept) {
            revert AccessGrantsNotRequesterOperator(grantId, msg.sender);
        }
        _requireStatus(g, GrantStatus.Requested);
        g.status = GrantStatus.Cancelled;
        emit GrantCancelled(grantId, msg.sender);
    }

    /// @inheritdoc IAccessGrants
    function recordUse(uint64 grantId, uint64 datasetId, uint64 count) external {
        if (msg.sender != s_auditLog || msg.sender == address(0)) revert AccessGrantsNotAuditLog(msg.sender);
        Grant storage g = s_grants[grantId];
        if (g.id == 0 || g.datasetId != datasetId) revert AccessGrantsDatasetMismatch(grantId, datasetId);
        uint64 used = g.used + count;
        g.used = used;
        emit GrantUsed(grantId, count, used, g.quota);
    }

    /// @inheritdoc IAccessGrants
    function checkAccess(address account, uint32 deptId, uint64 datasetId, uint256 fields, uint64 grantId)
        external
        view
        returns (AccessReason reason, uint32 version, Grant memory stored)
    {
        stored = s_grants[grantId];
        if (stored.id == 0) return (AccessReason.UnknownGrant, 0, stored);
        if (i_catalog.ownerOf(datasetId) == 0) return (AccessReason.UnknownDataset, 0, stored);
        if (stored.datasetId != datasetId) return (AccessReason.DatasetMismatch, 0, stored);
        if (stored.requesterDept != deptId) return (AccessReason.WrongDepartment, 0, stored);
        if (!i_registry.isActiveDepartment(deptId)) return (AccessReason.RequesterNotMember, 0, stored);
        if (!i_registry.isActiveDepartment(stored.ownerDept)) return (AccessReason.OwnerNotMember, 0, stored);
        if (i_registry.departmentWithRole(i_operatorRole, account) != deptId) {
            return (AccessReason.AccountNotOperator, 0, stored);
        }
        reason = _statusReason(stored);
        if (reason != AccessReason.Granted) return (reason, 0, stored);
        IDataCatalog.Dataset memory ds = i_catalog.dataset(datasetId);
        if (ds.retired) return (AccessReason.DatasetRetired, 0, stored);
        if (fields == 0) return (AccessReason.NoFieldsRequested, 0, stored);
        if (fields & ~stored.fields != 0) return (AccessReason.FieldsNotGranted, 0, stored);
        version = stored.pinnedVersion == 0 ? ds.versionCount : stored.pinnedVersion;
        if (version == 0) return (AccessReason.VersionUnavailable, 0, stored);
        return (AccessReason.Granted, version, stored);
    }

    /// @inheritdoc IAccessGrants
    function grant(uint64 grantId) external view returns (Grant memory) {
        return _grant(grantId);
    }

    /// @inheritdoc IAccessGrants
    function grantCount() external view returns (uint64) {
        return s_grantCount;
    }

    /// @inheritdoc IAccessGrants
    function auditLog() external view returns (address) {
        return s_auditLog;
    }

    function _statusReason(Grant memory g) private view returns (AccessReason) {
        if (g.status == GrantStatus.Requested) return AccessReason.NotApproved;
        if (g.status == GrantStatus.AwaitingCoApproval) return AccessReason.AwaitingCoApproval;
        if (g.status == GrantStatus.Rejected || g.status == GrantStatus.Cancelled) return AccessReason.Rejected;
        if (g.status == GrantStatus.Revoked) return AccessReason.Revoked;
        if (block.timestamp >= g.expiresAt) return AccessReason.Expired;
        if (g.used >= g.quota) return AccessReason.QuotaExhausted;
        return AccessReason.Granted;
    }

    function _activate(Grant storage g) private {
        uint64 expiresAt = uint64(block.timestamp) + g.duration;
        g.status = GrantStatus.Active;
        g.activatedAt = uint64(block.timestamp);
        g.expiresAt = expiresAt;
        emit GrantActivated(g.id, expiresAt);
    }

    function _grant(uint64 grantId) private view returns (Grant storage g) {
        g = s_grants[grantId];
        if (g.id == 0) revert AccessGrantsUnknownGrant(grantId);
    }

    function _isOwnerOperator(Grant storage g) private view returns (bool) {
        return i_registry.departmentWithRole(i_operatorRole, msg.sender) == g.ownerDept;
    }

    function _requireOwnerOperator(Grant storage g) private view {
        if (!_isOwnerOperator(g)) revert AccessGrantsNotOwnerOperator(g.id, msg.sender);
    }

    function _requireIndependentAuditor(Grant storage g) private view {
        uint32 auditorDept = i_registry.departmentWithRole(i_auditorRole, msg.sender);
        if (
            auditorDept == 0 || !i_registry.isAuditOffice(auditorDept) || auditorDept == g.ownerDept
                || auditorDept == g.requesterDept
        ) revert AccessGrantsNotIndependentAuditor(g.id, msg.sender);
    }

    function _requireStatus(Grant storage g, GrantStatus expected) private view {
        if (g.status != expected) revert AccessGrantsInvalidStatus(g.id, g.status);
    }
}
