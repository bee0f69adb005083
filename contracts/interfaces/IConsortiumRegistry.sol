// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IConsortiumRegistry
/// @notice The consortium's members (departments), the accounts that act for them and their roles.
/// @dev Roles are OpenZeppelin AccessControl roles. Every account belongs to at most one department
/// (committee members may belong to none: the consortium secretariat). Admitting or removing a
/// department and changing the committee happen only through an M-of-N committee proposal.
interface IConsortiumRegistry {
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

    /// @notice The department `account` belongs to, if it holds `role` there; 0 otherwise.
    function departmentWithRole(bytes32 role, address account) external view returns (uint32 deptId);

    /// @notice The department `account` belongs to (0: none).
    function departmentOf(address account) external view returns (uint32 deptId);

    /// @notice Whether `deptId` is a current member.
    function isActiveDepartment(uint32 deptId) external view returns (bool);

    /// @notice Whether `deptId` is an active department acting as audit office.
    function isAuditOffice(uint32 deptId) external view returns (bool);
}
