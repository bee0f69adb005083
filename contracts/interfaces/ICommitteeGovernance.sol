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

    /// @notice How long a proposal stays open.
    /// @return The voting period, in seconds.
    function VOTING_PERIOD() external view returns (uint64);

    /// @notice Proposes that this contract call itself with `data`.
    /// Requirements: the caller is a committee member; `data` is not empty.
    /// Emits {ProposalCreated} and {ProposalApproved} (the proposer's approval).
    /// @param data The call this contract will make to itself: a function selector and its arguments.
    /// @param description What the proposal is for, for the members who vote on it.
    /// @return proposalId The new proposal's id (ids run from 1).
    function propose(bytes calldata data, string calldata description) external returns (uint256 proposalId);

    /// @notice Approves an open proposal.
    /// Requirements: the caller is a committee member who has not approved it yet; the proposal is open.
    /// Emits {ProposalApproved}.
    /// @param proposalId The proposal to approve.
    function approve(uint256 proposalId) external;

    /// @notice Executes an open proposal that current committee members approved at least `threshold()` times.
    /// Requirements: the caller is a committee member; the proposal is open; quorum is reached; the
    /// proposed call succeeds (its own custom error is bubbled up otherwise).
    /// Emits {ProposalExecuted} and whatever the proposed call emits.
    /// @param proposalId The proposal to execute.
    function execute(uint256 proposalId) external;

    /// @notice Withdraws an open proposal.
    /// Requirements: the caller is its proposer; the proposal is open. Emits {ProposalCancelled}.
    /// @param proposalId The proposal to withdraw.
    function cancel(uint256 proposalId) external;

    /// @notice Changes how many approvals a proposal needs. Governance only.
    /// Requirements: 1 <= newThreshold <= committee size. Emits {ThresholdChanged} if it changes.
    /// @param newThreshold The number of approvals a proposal will need.
    function setThreshold(uint256 newThreshold) external;

    /// @notice The number of approvals from *current* committee members.
    /// @param proposalId The proposal.
    /// @return count How many current committee members approved it.
    function approvals(uint256 proposalId) external view returns (uint256 count);

    /// @notice The proposal's current state.
    /// @param proposalId The proposal (None if it does not exist).
    /// @return The state: None, Open, Executed, Cancelled or Expired.
    function proposalState(uint256 proposalId) external view returns (ProposalState);

    /// @notice The proposal itself.
    /// @param proposalId The proposal (reverts {GovernanceUnknownProposal} if it does not exist).
    /// @return The proposal as stored.
    function proposal(uint256 proposalId) external view returns (Proposal memory);

    /// @notice Whether `member` approved `proposalId`.
    /// @param proposalId The proposal.
    /// @param member The account asked about.
    /// @return True if `member` approved it (whether or not it is still on the committee).
    function hasApproved(uint256 proposalId, address member) external view returns (bool);

    /// @notice How many approvals a proposal needs.
    /// @return The current threshold.
    function threshold() external view returns (uint256);

    /// @notice How many proposals were ever created.
    /// @return The number of proposals (ids run from 1).
    function proposalCount() external view returns (uint256);
}
