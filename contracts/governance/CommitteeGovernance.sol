// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ICommitteeGovernance} from "../interfaces/ICommitteeGovernance.sol";

/// @title CommitteeGovernance
/// @notice M-of-N committee voting. A committee member proposes a call of this contract to itself
/// (for example `admitDepartment(...)`); when at least `threshold()` current members approved it,
/// anyone on the committee executes it. Functions that only governance may call use `onlyGovernance`.
/// @dev Approvals are recounted at execution against the *current* committee, so a member removed
/// after approving no longer counts. The proposer's approval is counted at creation.
abstract contract CommitteeGovernance is ICommitteeGovernance {
    /// @inheritdoc ICommitteeGovernance
    uint64 public constant VOTING_PERIOD = 14 days;

    uint256 private s_threshold;
    uint256 private s_proposalCount;
    mapping(uint256 proposalId => Proposal) private s_proposals;
    mapping(uint256 proposalId => address[]) private s_approvers;
    mapping(uint256 proposalId => mapping(address member => bool)) private s_approved;

    modifier onlyGovernance() {
        if (msg.sender != address(this)) revert GovernanceOnlySelf(msg.sender);
        _;
    }

    modifier onlyCommittee() {
        if (!_isCommitteeMember(msg.sender)) revert GovernanceNotCommitteeMember(msg.sender);
        _;
    }

    /// @inheritdoc ICommitteeGovernance
    function propose(bytes calldata data, string calldata description)
        external
        onlyCommittee
        returns (uint256 proposalId)
    {
        if (data.length < 4) revert GovernanceEmptyProposal();
        proposalId = ++s_proposalCount;
        uint64 deadline = uint64(block.timestamp) + VOTING_PERIOD;
        s_proposals[proposalId] = Proposal({
            proposer: msg.sender,
            createdAt: uint64(block.timestamp),
            deadline: deadline,
            executed: false,
            cancelled: false,
            data: data,
            description: description
        });
        emit ProposalCreated(proposalId, msg.sender, data, description, deadline);
        _approve(proposalId, msg.sender);
    }

    /// @inheritdoc ICommitteeGovernance
    function approve(uint256 proposalId) external onlyCommittee {
        _requireOpen(proposalId);
        if (s_approved[proposalId][msg.sender]) revert GovernanceAlreadyApproved(proposalId, msg.sender);
        _approve(proposalId, msg.sender);
    }

    /// @inheritdoc ICommitteeGovernance
    function execute(uint256 proposalId) external onlyCommittee {
        _requireOpen(proposalId);
        uint256 count = approvals(proposalId);
        if (count < s_threshold) revert GovernanceQuorumNotReached(proposalId, count, s_threshold);
        Proposal storage p = s_proposals[proposalId];
        p.executed = true;
        emit ProposalExecuted(proposalId, msg.sender);
        (bool ok, bytes memory returndata) = address(this).call(p.data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returndata, 0x20), mload(returndata))
            }
        }
    }

    /// @inheritdoc ICommitteeGovernance
    function cancel(uint256 proposalId) external {
        _requireOpen(proposalId);
        if (s_proposals[proposalId].proposer != msg.sender) revert GovernanceNotProposer(proposalId, msg.sender);
        s_proposals[proposalId].cancelled = true;
        emit ProposalCancelled(proposalId);
    }

    /// @inheritdoc ICommitteeGovernance
    function setThreshold(uint256 newThreshold) external onlyGovernance {
        _setThreshold(newThreshold);
    }

    /// @inheritdoc ICommitteeGovernance
    function approvals(uint256 proposalId) public view returns (uint256 count) {
        address[] storage approvers = s_approvers[proposalId];
        for (uint256 i = 0; i < approvers.length; ++i) {
            if (_isCommitteeMember(approvers[i])) ++count;
        }
    }

    /// @inheritdoc ICommitteeGovernance
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        Proposal storage p = s_proposals[proposalId];
        if (p.proposer == address(0)) return ProposalState.None;
        if (p.executed) return ProposalState.Executed;
        if (p.cancelled) return ProposalState.Cancelled;
        if (block.timestamp >= p.deadline) return ProposalState.Expired;
        return ProposalState.Open;
    }

    /// @inheritdoc ICommitteeGovernance
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        if (s_proposals[proposalId].proposer == address(0)) revert GovernanceUnknownProposal(proposalId);
        return s_proposals[proposalId];
    }

    /// @inheritdoc ICommitteeGovernance
    function hasApproved(uint256 proposalId, address member) external view returns (bool) {
        return s_approved[proposalId][member];
    }

    /// @inheritdoc ICommitteeGovernance
    function threshold() public view returns (uint256) {
        return s_threshold;
    }

    /// @inheritdoc ICommitteeGovernance
    function proposalCount() external view returns (uint256) {
        return s_proposalCount;
    }

    function _setThreshold(uint256 newThreshold) internal {
        uint256 size = _committeeSize();
        if (newThreshold == 0 || newThreshold > size) revert GovernanceThresholdOutOfRange(newThreshold, size);
        uint256 previous = s_threshold;
        if (previous == newThreshold) return;
        s_threshold = newThreshold;
        emit ThresholdChanged(previous, newThreshold);
    }

    function _approve(uint256 proposalId, address member) private {
        s_approved[proposalId][member] = true;
        s_approvers[proposalId].push(member);
        emit ProposalApproved(proposalId, member, approvals(proposalId));
    }

    function _requireOpen(uint256 proposalId) private view {
        ProposalState state = proposalState(proposalId);
        if (state == ProposalState.None) revert GovernanceUnknownProposal(proposalId);
        if (state != ProposalState.Open) revert GovernanceProposalNotOpen(proposalId, state);
    }

    function _isCommitteeMember(address account) internal view virtual returns (bool);

    function _committeeSize() internal view virtual returns (uint256);
}
