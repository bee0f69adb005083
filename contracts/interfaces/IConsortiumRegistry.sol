// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAccessControlEnumerable} from "@openzeppelin/contracts/access/extensions/IAccessControlEnumerable.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ICommitteeGovernance} from "./ICommitteeGovernance.sol";

/// @title IConsortiumRegistry
/// @notice The consortium's members (departments), the accounts that act for them and their roles.
/// @dev Roles are OpenZeppelin AccessControl roles. Every account belongs to at most one department
/// (committee members may belong to none: the consortium secretariat). Admitting or removing a
/// department and changing the committee happen only through an M-of-N committee proposal.
interface IConsortiumRegistry is IAccessControlEnumerable, IERC165, ICommitteeGovernance {
    /// @notice A member department. `id` 0 means "no department".
    struct Department {
        uint32 id;
        bool active;
        bool auditOffice;
        bytes32 code;
        string name;
        string oracleUrl;
    }

    /// @notice Emitted when the committee admits a department.
    event DepartmentAdmitted(uint32 indexed deptId, bytes32 indexed code, string name, bool auditOffice);
    /// @notice Emitted when the committee removes a department; all its accounts lose every role.
    event DepartmentRemoved(uint32 indexed deptId);
    /// @notice Emitted when an account is bound to a department.
    event AccountBound(uint32 indexed deptId, address indexed account);
    /// @notice Emitted when an account stops belonging to a department.
    event AccountUnbound(uint32 indexed deptId, address indexed account);
    /// @notice Emitted when a department publishes or changes the URL of its oracle.
    event OracleUrlChanged(uint32 indexed deptId, string url);
    /// @notice Emitted when the consortium's bound on a served record's decision age changes (and once
    /// at deployment, from 0), so auditors can replay which bound held at every block.
    event MaxDecisionAgeChanged(uint64 previous, uint64 current);

    error ConsortiumRegistryUnknownDepartment(uint32 deptId);
    error ConsortiumRegistryDepartmentCodeTaken(bytes32 code, uint32 deptId);
    error ConsortiumRegistryInvalidDepartment(string name, bytes32 code);
    error ConsortiumRegistryAccountTaken(address account, uint32 deptId);
    error ConsortiumRegistryInvalidAccount(address account);
    error ConsortiumRegistryCommitteeMemberNotBindable(address account);
    error ConsortiumRegistryRoleNotAssignable(bytes32 role, uint32 deptId);
    error ConsortiumRegistryRoleNotHeld(address account, bytes32 role);
    error ConsortiumRegistryNotDepartmentOperator(address caller, uint32 deptId);
    error ConsortiumRegistryLastOperator(uint32 deptId, address account);
    error ConsortiumRegistryTooManyAccounts(uint32 deptId, uint256 max);
    error ConsortiumRegistryArrayLengthMismatch(uint256 accounts, uint256 roles);
    error ConsortiumRegistryAlreadyCommitteeMember(address account);
    error ConsortiumRegistryNotCommitteeMember(address account);
    error ConsortiumRegistryDirectRoleChange(address account, bytes32 role);
    error ConsortiumRegistryUrlTooLong(uint256 length, uint256 max);
    error ConsortiumRegistryDecisionAgeOutOfRange(uint64 blocks, uint64 min, uint64 max);

    /// @notice Votes on admitting and removing departments and on the committee itself.
    /// @return The role's id, keccak256("govshare.role.COMMITTEE").
    function COMMITTEE_ROLE() external view returns (bytes32);

    /// @notice Acts for its department: registers and publishes datasets, requests and approves grants.
    /// @return The role's id, keccak256("govshare.role.OPERATOR").
    function OPERATOR_ROLE() external view returns (bytes32);

    /// @notice Co-approves grants on secret datasets; held only by accounts of an audit office.
    /// @return The role's id, keccak256("govshare.role.AUDITOR").
    function AUDITOR_ROLE() external view returns (bytes32);

    /// @notice The department's oracle: the only account that appends its audit records.
    /// @return The role's id, keccak256("govshare.role.ORACLE").
    function ORACLE_ROLE() external view returns (bytes32);

    /// @notice Most accounts one department may bind.
    /// @return The limit.
    function MAX_ACCOUNTS_PER_DEPARTMENT() external view returns (uint256);

    /// @notice Longest oracle URL, in bytes.
    /// @return The limit, in bytes.
    function MAX_URL_LENGTH() external view returns (uint256);

    /// @notice Smallest value `maxDecisionAgeBlocks` may take: fewer blocks leave an oracle no room to
    /// batch its records and wait for one block.
    /// @return The limit, in blocks.
    function MIN_DECISION_AGE_BLOCKS() external view returns (uint64);

    /// @notice Largest value `maxDecisionAgeBlocks` may take, so that the bound can never be switched off.
    /// @return The limit, in blocks.
    function MAX_DECISION_AGE_BLOCKS() external view returns (uint64);

    /// @notice How many blocks a served audit record's decision block may lie before the block that
    /// anchors it: `AuditLog.appendRecords` refuses a served record with
    /// `block.number - checkedAtBlock > maxDecisionAgeBlocks()` (a back-dated decision), and auditors
    /// check the bound in force at each record's anchoring block.
    /// @return The bound, in blocks.
    function maxDecisionAgeBlocks() external view returns (uint64);

    /// @notice Sets the consortium's bound on a served record's decision age. Governance only.
    /// Requirements: MIN_DECISION_AGE_BLOCKS <= `blocks` <= MAX_DECISION_AGE_BLOCKS.
    /// Emits {MaxDecisionAgeChanged} if the value changes.
    /// @param blocks The new bound, in blocks.
    function setMaxDecisionAgeBlocks(uint64 blocks) external;

    /// @notice Admits a department with its first accounts. Governance only.
    /// Requirements: non-empty name and code; the code is unused; `accounts` and `roles` have the
    /// same length; each account is free or already in this department; each role is OPERATOR,
    /// ORACLE, or AUDITOR for an audit office; at least one OPERATOR.
    /// Emits {DepartmentAdmitted}, {AccountBound} and {RoleGranted} for each binding.
    /// @param name The department's name.
    /// @param code The department's short code, unique in the consortium.
    /// @param auditOffice Whether the department is an audit office (its accounts may hold AUDITOR).
    /// @param accounts The department's first accounts.
    /// @param roles The role of each of `accounts`, at the same index.
    /// @return deptId The new department's id (ids run from 1).
    function admitDepartment(
        string calldata name,
        bytes32 code,
        bool auditOffice,
        address[] calldata accounts,
        bytes32[] calldata roles
    ) external returns (uint32 deptId);

    /// @notice Removes a department: every role of every one of its accounts is revoked at once.
    /// Governance only. Requirements: the department is active; the committee keeps at least
    /// `threshold()` members. Emits {RoleRevoked} and {AccountUnbound} per account, then {DepartmentRemoved}.
    /// @param deptId The department to remove.
    function removeDepartment(uint32 deptId) external;

    /// @notice Adds `account` to the committee. Governance only.
    /// Requirements: not yet a member; if it belongs to a department, that department is active.
    /// Emits {RoleGranted}.
    /// @param account The new committee member.
    function addCommitteeMember(address account) external;

    /// @notice Removes `account` from the committee. Governance only.
    /// Requirements: it is a member; the committee keeps at least `threshold()` members. Emits {RoleRevoked}.
    /// @param account The committee member to remove.
    function removeCommitteeMember(address account) external;

    /// @notice Binds `account` to the caller's department with `role` (key rotation, a new oracle...).
    /// Requirements: the caller is an operator of an active department; `role` is OPERATOR or ORACLE,
    /// or AUDITOR in an audit office; `account` is free or already in this department, and is not a
    /// committee member without a department (only a committee vote may bind one).
    /// Emits {AccountBound} (first binding) and {RoleGranted}.
    /// @param account The account to bind.
    /// @param role The role it gets in the caller's department.
    function addDepartmentAccount(address account, bytes32 role) external;

    /// @notice Takes `role` from `account` of the caller's department; an account left with no role is unbound.
    /// Requirements: the caller is an operator of that department; `account` holds `role` there;
    /// the department keeps at least one operator. Emits {RoleRevoked} and possibly {AccountUnbound}.
    /// @param account The account that loses `role`.
    /// @param role The role to take.
    function removeDepartmentAccount(address account, bytes32 role) external;

    /// @notice Publishes the URL at which the caller's department's oracle answers queries.
    /// Requirements: the caller is an operator of an active department; the URL is at most
    /// MAX_URL_LENGTH bytes. Emits {OracleUrlChanged}.
    /// @param url The oracle's URL.
    function setOracleUrl(string calldata url) external;

    /// @notice Disabled: roles change only through governance or department rotation.
    /// @dev Always reverts {ConsortiumRegistryDirectRoleChange}.
    /// @param role Any role (the call reverts).
    /// @param account Any account (the call reverts).
    function grantRole(bytes32 role, address account) external override(IAccessControl);

    /// @notice Disabled: roles change only through governance or department rotation.
    /// @dev Always reverts {ConsortiumRegistryDirectRoleChange}.
    /// @param role Any role (the call reverts).
    /// @param account Any account (the call reverts).
    function revokeRole(bytes32 role, address account) external override(IAccessControl);

    /// @notice Disabled: roles change only through governance or department rotation.
    /// @dev Always reverts {ConsortiumRegistryDirectRoleChange}.
    /// @param role Any role (the call reverts).
    /// @param account Any account (the call reverts).
    function renounceRole(bytes32 role, address account) external override(IAccessControl);

    /// @notice The department `account` belongs to, if it holds `role` there; 0 otherwise.
    /// @param role The role asked about.
    /// @param account The account asked about.
    /// @return deptId The account's department, or 0.
    function departmentWithRole(bytes32 role, address account) external view returns (uint32 deptId);

    /// @notice The department `account` belongs to (0: none).
    /// @param account The account asked about.
    /// @return deptId The account's department, or 0.
    function departmentOf(address account) external view returns (uint32 deptId);

    /// @notice Whether `deptId` is a current member.
    /// @param deptId The department asked about.
    /// @return True if it was admitted and not removed.
    function isActiveDepartment(uint32 deptId) external view returns (bool);

    /// @notice Whether `deptId` is an active department acting as audit office.
    /// @param deptId The department asked about.
    /// @return True if it is active and an audit office.
    function isAuditOffice(uint32 deptId) external view returns (bool);

    /// @notice A department by id (its `id` is 0 if it never existed).
    /// @param deptId The department.
    /// @return The department as stored.
    function department(uint32 deptId) external view returns (Department memory);

    /// @notice The department with short code `code` (0 if none).
    /// @param code The short code.
    /// @return The department's id, or 0.
    function departmentIdByCode(bytes32 code) external view returns (uint32);

    /// @notice How many departments were ever admitted (ids run from 1).
    /// @return The number of departments, removed ones included.
    function departmentCount() external view returns (uint32);

    /// @notice The accounts currently bound to `deptId`.
    /// @param deptId The department.
    /// @return The accounts, in no particular order.
    function departmentAccounts(uint32 deptId) external view returns (address[] memory);
}
