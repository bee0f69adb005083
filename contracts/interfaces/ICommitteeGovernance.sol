// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ICommitteeGovernance
/// @notice M-of-N committee proposals, executed on chain as calls of the governed contract to itself.
interface ICommitteeGovernance {
    enum ProposalState {
        None,
        Open,
        Executed,
        Cancelled,
        Expired
    }

    /// @notice A proposal: the call the contract will make to itself once enough members approved.
    struct Proposal {
        address proposer;
        uint64 createdAt;
        uint64 deadline;
        bool executed;
        bool cancelled;
        bytes data;
        string description;
    }

    event ProposalCreated(uint256 indexed proposalId, address indexed proposer, bytes data, string description, uint64 deadline);
    event ProposalApproved(uint256 indexed proposalId, address indexed member, uint256 approvals);
    event ProposalExecuted(uint256 indexed proposalId, address indexed executor);
    event ProposalCancelled(uint256 indexed proposalId);
    event ThresholdChanged(uint256 previousThreshold, uint256 newThreshold);

    error GovernanceNotCommitteeMember(address account);
    error GovernanceOnlySelf(address caller);
    error GovernanceUnknownProposal(uint256 proposalId);
    error GovernanceProposalNotOpen(uint256 proposalId, ProposalState state);
    error GovernanceAlreadyApproved(uint256 proposalId, address member);
    error GovernanceQuorumNotReached(uint256 proposalId, uint256 approvals, uint256 threshold);
    error GovernanceNotProposer(uint256 proposalId, address caller);
    error GovernanceEmptyProposal();
    error GovernanceThresholdOutOfRange(uint256 threshold, uint256 committeeSize);

    function propose(bytes calldata data, string calldata description) external returns (uint256 proposalId);
    function approve(uint256 proposalId) external;
    function execute(uint256 proposalId) external;
    function cancel(uint256 proposalId) external;
    function proposalState(uint256 proposalId) external view returns (ProposalState);
    function approvals(uint256 proposalId) external view returns (uint256);
    function threshold() external view returns (uint256);
}
