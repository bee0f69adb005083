// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlEnumerable} from "@openzeppelin/contracts/access/extensions/AccessControlEnumerable.sol";
import {AccessControl, IAccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {CommitteeGovernance} from "./governance/CommitteeGovernance.sol";
import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";

/// @title ConsortiumRegistry
/// @notice Who belongs to the consortium and what each account may do.
/// @dev Roles are AccessControl roles that nobody administers directly (no account holds
/// DEFAULT_ADMIN_ROLE): they change only through committee proposals (`admitDepartment`,
/// `removeDepartment`, committee changes) or a department's own rotation of its accounts.
/// Removing a department revokes every role of every one of its accounts in the same transaction.
contract ConsortiumRegistry is AccessControlEnumerable, CommitteeGovernance, IConsortiumRegistry {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @inheritdoc IConsortiumRegistry
    bytes32 public constant COMMITTEE_ROLE = keccak256("govshare.role.COMMITTEE");
    /// @inheritdoc IConsortiumRegistry
    bytes32 public constant OPERATOR_ROLE = keccak256("govshare.role.OPERATOR");
    /// @inheritdoc IConsortiumRegistry
    bytes32 public constant AUDITOR_ROLE = keccak256("govshare.role.AUDITOR");
    /// @inheritdoc IConsortiumRegistry
    bytes32 public constant ORACLE_ROLE = keccak256("govshare.role.ORACLE");

    /// @inheritdoc IConsortiumRegistry
    uint256 public constant MAX_ACCOUNTS_PER_DEPARTMENT = 32;
    /// @inheritdoc IConsortiumRegistry
    uint256 public constant MAX_URL_LENGTH = 512;
    /// @inheritdoc IConsortiumRegistry
    uint64 public constant MIN_DECISION_AGE_BLOCKS = 8;
    /// @inheritdoc IConsortiumRegistry
    uint64 public constant MAX_DECISION_AGE_BLOCKS = 1_000_000;

    uint32 private s_departmentCount;
    mapping(uint32 deptId => Department) private s_departments;
    mapping(bytes32 code => uint32 deptId) private s_deptByCode;
    mapping(address account => uint32 deptId) private s_accountDept;
    mapping(uint32 deptId => EnumerableSet.AddressSet) private s_deptAccounts;
    uint64 private s_maxDecisionAgeBlocks;

    /// @param committee The founding committee members (they belong to no department).
    /// @param initialThreshold How many of them must approve a proposal.
    /// @param initialMaxDecisionAgeBlocks The first `maxDecisionAgeBlocks` (derived at deployment from
    /// the oracles' batching limits and the chain's block period; see docs/PROTOCOL.md).
    constructor(address[] memory committee, uint256 initialThreshold, uint64 initialMaxDecisionAgeBlocks) {
        for (uint256 i = 0; i < committee.length; ++i) {
            if (committee[i] == address(0)) revert ConsortiumRegistryInvalidAccount(committee[i]);
            if (!_grantRole(COMMITTEE_ROLE, committee[i])) {
                revert ConsortiumRegistryAlreadyCommitteeMember(committee[i]);
            }
        }
        _setThreshold(initialThreshold);
        _setMaxDecisionAge(initialMaxDecisionAgeBlocks);
    }

    // ------------------------------------------------------------------ governance-only

    /// @inheritdoc IConsortiumRegistry
    function admitDepartment(
        string calldata name,
        bytes32 code,
        bool auditOffice,
        address[] calldata accounts,
        bytes32[] calldata roles
    ) external onlyGovernance returns (uint32 deptId) {
        if (bytes(name).length == 0 || code == bytes32(0)) revert ConsortiumRegistryInvalidDepartment(name, code);
        if (s_deptByCode[code] != 0) revert ConsortiumRegistryDepartmentCodeTaken(code, s_deptByCode[code]);
        if (accounts.length != roles.length) revert ConsortiumRegistryArrayLengthMismatch(accounts.length, roles.length);
        deptId = ++s_departmentCount;
        Department storage dept = s_departments[deptId];
        dept.id = deptId;
        dept.active = true;
        dept.auditOffice = auditOffice;
        dept.code = code;
        dept.name = name;
        s_deptByCode[code] = deptId;
        emit DepartmentAdmitted(deptId, code, name, auditOffice);
        for (uint256 i = 0; i < accounts.length; ++i) {
            _addAccountRole(deptId, accounts[i], roles[i], true);
        }
        if (_operatorCount(deptId) == 0) revert ConsortiumRegistryLastOperator(deptId, address(0));
    }

    /// @inheritdoc IConsortiumRegistry
    function removeDepartment(uint32 deptId) external onlyGovernance {
        Department storage dept = _activeDepartment(deptId);
        EnumerableSet.AddressSet storage accounts = s_deptAccounts[deptId];
        while (accounts.length() > 0) {
            address account = accounts.at(accounts.length() - 1);
            _revokeRole(COMMITTEE_ROLE, account);
            _revokeRole(OPERATOR_ROLE, account);
            _revokeRole(AUDITOR_ROLE, account);
            _revokeRole(ORACLE_ROLE, account);
            _unbind(deptId, account);
        }
        dept.active = false;
        emit DepartmentRemoved(deptId);
        _requireQuorumPossible();
    }

    /// @inheritdoc IConsortiumRegistry
    function addCommitteeMember(address account) external onlyGovernance {
        if (account == address(0)) revert ConsortiumRegistryInvalidAccount(account);
        if (!_grantRole(COMMITTEE_ROLE, account)) revert ConsortiumRegistryAlreadyCommitteeMember(account);
    }

    /// @inheritdoc IConsortiumRegistry
    function removeCommitteeMember(address account) external onlyGovernance {
        if (!_revokeRole(COMMITTEE_ROLE, account)) revert ConsortiumRegistryNotCommitteeMember(account);
        _requireQuorumPossible();
    }

    /// @inheritdoc IConsortiumRegistry
    function setMaxDecisionAgeBlocks(uint64 blocks) external onlyGovernance {
        _setMaxDecisionAge(blocks);
    }

    // ------------------------------------------------------------------ department self-service

    /// @inheritdoc IConsortiumRegistry
    function addDepartmentAccount(address account, bytes32 role) external {
        _addAccountRole(_callerDepartment(), account, role, false);
    }

    /// @inheritdoc IConsortiumRegistry
    function removeDepartmentAccount(address account, bytes32 role) external {
        uint32 deptId = _callerDepartment();
        if (s_accountDept[account] != deptId || role == COMMITTEE_ROLE || !_revokeRole(role, account)) {
            revert ConsortiumRegistryRoleNotHeld(account, role);
        }
        if (role == OPERATOR_ROLE && _operatorCount(deptId) == 0) revert ConsortiumRegistryLastOperator(deptId, account);
        if (!_hasAnyRole(account)) _unbind(deptId, account);
    }

    /// @inheritdoc IConsortiumRegistry
    function setOracleUrl(string calldata url) external {
        uint32 deptId = _callerDepartment();
        if (bytes(url).length > MAX_URL_LENGTH) revert ConsortiumRegistryUrlTooLong(bytes(url).length, MAX_URL_LENGTH);
        s_departments[deptId].oracleUrl = url;
        emit OracleUrlChanged(deptId, url);
    }

    /// @inheritdoc IConsortiumRegistry
    function grantRole(bytes32 role, address account) public pure override(AccessControl, IAccessControl, IConsortiumRegistry) {
        revert ConsortiumRegistryDirectRoleChange(account, role);
    }

    /// @inheritdoc IConsortiumRegistry
    function revokeRole(bytes32 role, address account) public pure override(AccessControl, IAccessControl, IConsortiumRegistry) {
        revert ConsortiumRegistryDirectRoleChange(account, role);
    }

    /// @inheritdoc IConsortiumRegistry
    function renounceRole(bytes32 role, address account) public pure override(AccessControl, IAccessControl, IConsortiumRegistry) {
        revert ConsortiumRegistryDirectRoleChange(account, role);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IConsortiumRegistry
    function maxDecisionAgeBlocks() external view returns (uint64) {
        return s_maxDecisionAgeBlocks;
    }

    /// @inheritdoc IConsortiumRegistry
    function departmentWithRole(bytes32 role, address account) external view returns (uint32 deptId) {
        deptId = s_accountDept[account];
        if (deptId == 0 || !hasRole(role, account)) return 0;
    }

    /// @inheritdoc IConsortiumRegistry
    function departmentOf(address account) external view returns (uint32) {
        return s_accountDept[account];
    }

    /// @inheritdoc IConsortiumRegistry
    function isActiveDepartment(uint32 deptId) external view returns (bool) {
        return s_departments[deptId].active;
    }

    /// @inheritdoc IConsortiumRegistry
    function isAuditOffice(uint32 deptId) external view returns (bool) {
        Department storage dept = s_departments[deptId];
        return dept.active && dept.auditOffice;
    }

    /// @inheritdoc IConsortiumRegistry
    function department(uint32 deptId) external view returns (Department memory) {
        return s_departments[deptId];
    }

    /// @inheritdoc IConsortiumRegistry
    function departmentIdByCode(bytes32 code) external view returns (uint32) {
        return s_deptByCode[code];
    }

    /// @inheritdoc IConsortiumRegistry
    function departmentCount() external view returns (uint32) {
        return s_departmentCount;
    }

    /// @inheritdoc IConsortiumRegistry
    function departmentAccounts(uint32 deptId) external view returns (address[] memory) {
        return s_deptAccounts[deptId].values();
    }

    // ------------------------------------------------------------------ internals

    function _addAccountRole(uint32 deptId, address account, bytes32 role, bool byGovernance) private {
        if (account == address(0)) revert ConsortiumRegistryInvalidAccount(account);
        bool assignable = role == OPERATOR_ROLE || role == ORACLE_ROLE
            || (role == AUDITOR_ROLE && s_departments[deptId].auditOffice);
        if (!assignable) revert ConsortiumRegistryRoleNotAssignable(role, deptId);
        uint32 current = s_accountDept[account];
        if (current == 0) {
            // A committee member without a department joins one only by a committee vote: a
            // department binding it on its own would tie the member's seat to that department.
            if (!byGovernance && hasRole(COMMITTEE_ROLE, account)) revert ConsortiumRegistryCommitteeMemberNotBindable(account);
            if (s_deptAccounts[deptId].length() >= MAX_ACCOUNTS_PER_DEPARTMENT) {
                revert ConsortiumRegistryTooManyAccounts(deptId, MAX_ACCOUNTS_PER_DEPARTMENT);
            }
            s_accountDept[account] = deptId;
            s_deptAccounts[deptId].add(account);
            emit AccountBound(deptId, account);
        } else if (current != deptId) {
            revert ConsortiumRegistryAccountTaken(account, current);
        }
        _grantRole(role, account);
    }

    function _setMaxDecisionAge(uint64 blocks) private {
        if (blocks < MIN_DECISION_AGE_BLOCKS || blocks > MAX_DECISION_AGE_BLOCKS) {
            revert ConsortiumRegistryDecisionAgeOutOfRange(blocks, MIN_DECISION_AGE_BLOCKS, MAX_DECISION_AGE_BLOCKS);
        }
        uint64 previous = s_maxDecisionAgeBlocks;
        if (previous == blocks) return;
        s_maxDecisionAgeBlocks = blocks;
        emit MaxDecisionAgeChanged(previous, blocks);
    }

    function _unbind(uint32 deptId, address account) private {
        s_deptAccounts[deptId].remove(account);
        delete s_accountDept[account];
        emit AccountUnbound(deptId, account);
    }

    function _callerDepartment() private view returns (uint32 deptId) {
        deptId = s_accountDept[msg.sender];
        if (deptId == 0 || !s_departments[deptId].active || !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert ConsortiumRegistryNotDepartmentOperator(msg.sender, deptId);
        }
    }

    function _activeDepartment(uint32 deptId) private view returns (Department storage dept) {
        dept = s_departments[deptId];
        if (!dept.active) revert ConsortiumRegistryUnknownDepartment(deptId);
    }

    function _operatorCount(uint32 deptId) private view returns (uint256 count) {
        EnumerableSet.AddressSet storage accounts = s_deptAccounts[deptId];
        for (uint256 i = 0; i < accounts.length(); ++i) {
            if (hasRole(OPERATOR_ROLE, accounts.at(i))) ++count;
        }
    }

    function _hasAnyRole(address account) private view returns (bool) {
        return hasRole(COMMITTEE_ROLE, account) || hasRole(OPERATOR_ROLE, account) || hasRole(AUDITOR_ROLE, account)
            || hasRole(ORACLE_ROLE, account);
    }

    function _requireQuorumPossible() private view {
        uint256 size = _committeeSize();
        if (threshold() > size) revert GovernanceThresholdOutOfRange(threshold(), size);
    }

    function _isCommitteeMember(address account) internal view override returns (bool) {
        return hasRole(COMMITTEE_ROLE, account);
    }

    function _committeeSize() internal view override returns (uint256) {
        return getRoleMemberCount(COMMITTEE_ROLE);
    }
}
