"""ConsortiumRegistry (with CommitteeGovernance) on a real ganache chain, through ConsortiumRegistryClient.

Every refusal is checked by its custom error name *and* arguments, every success by the exact list of
events it emitted (in log order) and by the state read back afterwards. A refused transaction is
rejected at gas estimation, so it is never mined: nothing is emitted and the tests read the state back
to show nothing changed.

Sections follow the contract: constructor, governance (propose / approve / execute / cancel / expiry /
setThreshold / onlyGovernance), admitDepartment and the views, removeDepartment, committee changes,
department self-service (addDepartmentAccount / removeDepartmentAccount / setOracleUrl) and the disabled
AccessControl entry points.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import pytest
from eth_utils import keccak

from ledger.chain import TxResult
from ledger.contracts.catalog import Classification
from ledger.contracts.registry import (
    DEFAULT_MAX_DECISION_AGE_BLOCKS,
    MAX_DECISION_AGE_BLOCKS,
    MIN_DECISION_AGE_BLOCKS,
    AccountRole,
    Department,
    ProposalState,
    Role,
    decode_code,
    encode_code,
)
from ledger.deployment import Consortium, deploy_consortium
from ledger.errors import ContractRevert
from ledger.events import EventDecoder
from ledger.keys import Signer, generate_signer
from tests.conftest import Members, admit

ZERO = "0x0000000000000000000000000000000000000000"
DEFAULT_ADMIN_ROLE = b"\x00" * 32
VOTING_PERIOD = 14 * 24 * 3600
MAX_ACCOUNTS = 32
MAX_URL = 512
ALL_ROLES = (Role.COMMITTEE, Role.OPERATOR, Role.AUDITOR, Role.ORACLE)


# ---------------------------------------------------------------------------------------------- helpers


@contextmanager
def reverts(error: str, /, **args: Any) -> Iterator[pytest.ExceptionInfo[ContractRevert]]:
    """Expect a ContractRevert with exactly this custom error name and these arguments."""
    with pytest.raises(ContractRevert) as info:
        yield info
    assert info.value.name == error, f"expected {error}, got {info.value}"
    assert info.value.args == args, f"expected {error}{args}, got {info.value}"


def send(consortium: Consortium, signer: Signer, fn: str, *args: Any) -> TxResult:
    """Send any registry function (typed client methods exist only for some) and decode its events."""
    return consortium.registry._transact(signer, fn, *args)


def view(consortium: Consortium, fn: str, *args: Any) -> Any:
    return consortium.registry._call(fn, *args)


def view_of(registry: Any, fn: str, *args: Any) -> Any:
    return registry._call(fn, *args)


def logs(consortium: Consortium, result: TxResult) -> list[tuple[str, dict[str, Any]]]:
    """The transaction's events as (name, args), after checking they all come from the registry."""
    assert all(e.address == consortium.registry.address for e in result.logs), result.logs
    return [(e.name, e.args) for e in result.logs]


def propose(consortium: Consortium, signer: Signer, call: bytes, description: str = "") -> tuple[int, TxResult]:
    result = send(consortium, signer, "propose", call, description)
    return int(consortium.registry.event(result, "ProposalCreated").args["proposalId"]), result


def pass_(consortium: Consortium, voters: Sequence[Signer], call: bytes, description: str = "") -> TxResult:
    """Propose with voters[0], approve with the others, execute with voters[0]."""
    return consortium.registry.pass_proposal(list(voters), call, description)


def executed(consortium: Consortium, result: TxResult) -> list[tuple[str, dict[str, Any]]]:
    """The events of an execute() transaction after its leading ProposalExecuted."""
    events = logs(consortium, result)
    assert events[0][0] == "ProposalExecuted"
    return events[1:]


def granted(role: bytes, account: str, sender: str) -> tuple[str, dict[str, Any]]:
    return ("RoleGranted", {"role": role, "account": account, "sender": sender})


def revoked(role: bytes, account: str, sender: str) -> tuple[str, dict[str, Any]]:
    return ("RoleRevoked", {"role": role, "account": account, "sender": sender})


def roles_of(consortium: Consortium, account: str, block: int | str = "latest") -> set[bytes]:
    return {r for r in ALL_ROLES if consortium.registry.has_role(r, account, block=block)}


def admit_call(consortium: Consortium, name: str, code: str, bindings: Sequence[tuple[str, bytes]], audit: bool = False) -> bytes:
    return consortium.registry.admit_department_call(
        name, code, [AccountRole(a, r) for a, r in bindings], audit_office=audit
    )


def register_dataset(consortium: Consortium, signer: Signer) -> int:
    return consortium.catalog.register(signer, "companies", ["uscc", "name"], Classification.INTERNAL)


# ---------------------------------------------------------------------------------------------- constructor


class TestConstructor:
    def test_founding_committee_and_threshold(self, consortium: Consortium, committee: list[Signer]) -> None:
        """The deployment grants COMMITTEE to exactly the founders, sets the threshold, and admits no department."""
        registry = consortium.registry
        assert registry.committee() == [m.address for m in committee]
        assert registry.threshold() == 2
        assert registry.department_count() == 0
        assert registry.departments() == []
        assert view(consortium, "proposalCount") == 0
        for member in committee:
            assert roles_of(consortium, member.address) == {Role.COMMITTEE}
            assert registry.department_of(member.address) == 0  # the secretariat belongs to no department

    def test_constructor_events(self, chain, accounts: list[Signer], compilation) -> None:
        """The constructor emits RoleGranted for each founder (sender: the deployer), ThresholdChanged(0, t),
        then MaxDecisionAgeChanged(0, bound) (auditors replay the bound from block one)."""
        founders = [a.address for a in accounts[0:3]]
        deployment = deploy_consortium(chain, accounts[0], founders, 3, compilation, max_decision_age_blocks=77)
        receipt = chain.w3.eth.get_transaction_receipt(
            chain.w3.eth.get_block(deployment.deployment_block, full_transactions=True)["transactions"][0]["hash"]
        )
        events = [(e.name, e.args) for e in EventDecoder(compilation.all_abis()).decode_all(receipt["logs"])]
        assert events == [
            *(granted(Role.COMMITTEE, f, accounts[0].address) for f in founders),
            ("ThresholdChanged", {"previousThreshold": 0, "newThreshold": 3}),
            ("MaxDecisionAgeChanged", {"previous": 0, "current": 77}),
        ]
        registry = Consortium(chain, deployment, compilation).registry
        assert registry.max_decision_age_blocks() == 77
        assert (view_of(registry, "MIN_DECISION_AGE_BLOCKS"), view_of(registry, "MAX_DECISION_AGE_BLOCKS")) == (
            MIN_DECISION_AGE_BLOCKS, MAX_DECISION_AGE_BLOCKS)

    def test_default_decision_age_bound(self, consortium: Consortium) -> None:
        assert consortium.registry.max_decision_age_blocks() == DEFAULT_MAX_DECISION_AGE_BLOCKS

    @pytest.mark.parametrize("blocks", [0, MIN_DECISION_AGE_BLOCKS - 1, MAX_DECISION_AGE_BLOCKS + 1, 2**64 - 1])
    def test_decision_age_out_of_range_refused(self, chain, accounts: list[Signer], compilation, blocks: int) -> None:
        with reverts("ConsortiumRegistryDecisionAgeOutOfRange", blocks=blocks, min=MIN_DECISION_AGE_BLOCKS,
                     max=MAX_DECISION_AGE_BLOCKS):
            deploy_consortium(chain, accounts[0], [accounts[0].address], 1, compilation, max_decision_age_blocks=blocks)

    @pytest.mark.parametrize("threshold", [0, 4])
    def test_threshold_out_of_range_refused(self, chain, accounts: list[Signer], compilation, threshold: int) -> None:
        """Deploying with threshold 0 or above the committee size fails with GovernanceThresholdOutOfRange."""
        with reverts("GovernanceThresholdOutOfRange", threshold=threshold, committeeSize=3):
            deploy_consortium(chain, accounts[0], [a.address for a in accounts[0:3]], threshold, compilation)

    def test_empty_committee_refused(self, chain, accounts: list[Signer], compilation) -> None:
        """A registry without committee can never be governed: refused even with threshold 1."""
        with reverts("GovernanceThresholdOutOfRange", threshold=1, committeeSize=0):
            deploy_consortium(chain, accounts[0], [], 1, compilation)

    def test_duplicate_founder_refused(self, chain, accounts: list[Signer], compilation) -> None:
        """A founder listed twice would inflate the size checked against the threshold: refused."""
        a, b = accounts[0].address, accounts[1].address
        with reverts("ConsortiumRegistryAlreadyCommitteeMember", account=a):
            deploy_consortium(chain, accounts[0], [a, b, a], 3, compilation)

    def test_zero_address_founder_refused(self, chain, accounts: list[Signer], compilation) -> None:
        with reverts("ConsortiumRegistryInvalidAccount", account=ZERO):
            deploy_consortium(chain, accounts[0], [accounts[0].address, ZERO], 1, compilation)


# ---------------------------------------------------------------------------------------------- propose


class TestPropose:
    def test_propose_emits_created_and_counts_proposer_approval(self, consortium: Consortium, committee, accounts) -> None:
        """propose stores the proposal, emits ProposalCreated + ProposalApproved(approvals=1), and counts the proposer."""
        call = consortium.registry.add_committee_member_call(accounts[20].address)
        pid, result = propose(consortium, committee[1], call, "add a member")
        assert pid == 1
        timestamp = consortium.chain.block_timestamp(result.block_number)
        assert logs(consortium, result) == [
            ("ProposalCreated", {"proposalId": 1, "proposer": committee[1].address, "data": call,
                                 "description": "add a member", "deadline": timestamp + VOTING_PERIOD}),
            ("ProposalApproved", {"proposalId": 1, "member": committee[1].address, "approvals": 1}),
        ]
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN
        assert consortium.registry.approvals(pid) == 1
        assert view(consortium, "hasApproved", pid, committee[1].address) is True
        assert view(consortium, "hasApproved", pid, committee[0].address) is False
        assert view(consortium, "proposalCount") == 1
        stored = view(consortium, "proposal", pid)
        assert tuple(stored) == (committee[1].address, timestamp, timestamp + VOTING_PERIOD, False, False, call, "add a member")

    def test_proposal_ids_increase(self, consortium: Consortium, committee, accounts) -> None:
        call = consortium.registry.add_committee_member_call(accounts[20].address)
        assert [propose(consortium, committee[i % 3], call)[0] for i in range(3)] == [1, 2, 3]
        assert view(consortium, "proposalCount") == 3

    def test_non_member_refused(self, consortium: Consortium, members: Members) -> None:
        """Only committee members propose; department accounts (even an audit office's) and outsiders are refused."""
        before = view(consortium, "proposalCount")
        for signer in (members.outsider, members.samr.operator, members.samr.oracle, members.audit.auditor):
            call = consortium.registry.add_committee_member_call(signer.address)
            with reverts("GovernanceNotCommitteeMember", account=signer.address):
                consortium.registry.propose(signer, call, "self promotion")
        assert view(consortium, "proposalCount") == before

    @pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03"])
    def test_empty_or_short_data_refused(self, consortium: Consortium, committee, data: bytes) -> None:
        """Call data shorter than a 4-byte selector is refused with GovernanceEmptyProposal."""
        with reverts("GovernanceEmptyProposal"):
            consortium.registry.propose(committee[0], data, "nothing")
        assert view(consortium, "proposalCount") == 0

    def test_unknown_proposal_views(self, consortium: Consortium) -> None:
        """An id never created is state None, has no approvals, and proposal() refuses it."""
        assert consortium.registry.proposal_state(7) is ProposalState.NONE
        assert consortium.registry.approvals(7) == 0
        with reverts("GovernanceUnknownProposal", proposalId=7):
            view(consortium, "proposal", 7)


# ---------------------------------------------------------------------------------------------- approve


class TestApprove:
    def test_approve_emits_running_count(self, consortium: Consortium, committee, accounts) -> None:
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(accounts[20].address))
        result = consortium.registry.approve(committee[2], pid)
        assert logs(consortium, result) == [
            ("ProposalApproved", {"proposalId": pid, "member": committee[2].address, "approvals": 2})
        ]
        assert consortium.registry.approvals(pid) == 2
        assert view(consortium, "hasApproved", pid, committee[2].address) is True
        # approving does not execute, even at quorum
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN
        assert consortium.registry.committee() == [m.address for m in committee]

    def test_double_approval_refused(self, consortium: Consortium, committee, accounts) -> None:
        """Neither the proposer nor a member who already approved can approve again."""
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(accounts[20].address))
        with reverts("GovernanceAlreadyApproved", proposalId=pid, member=committee[0].address):
            consortium.registry.approve(committee[0], pid)
        consortium.registry.approve(committee[1], pid)
        with reverts("GovernanceAlreadyApproved", proposalId=pid, member=committee[1].address):
            consortium.registry.approve(committee[1], pid)
        assert consortium.registry.approvals(pid) == 2

    def test_non_member_refused(self, consortium: Consortium, committee, members: Members) -> None:
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(members.outsider.address))
        for signer in (members.outsider, members.samr.operator):
            with reverts("GovernanceNotCommitteeMember", account=signer.address):
                consortium.registry.approve(signer, pid)
        assert consortium.registry.approvals(pid) == 1

    def test_unknown_proposal_refused(self, consortium: Consortium, committee) -> None:
        with reverts("GovernanceUnknownProposal", proposalId=42):
            consortium.registry.approve(committee[0], 42)


# ---------------------------------------------------------------------------------------------- execute


class TestExecute:
    def test_below_quorum_does_nothing(self, consortium: Consortium, committee, accounts) -> None:
        """With only the proposer's approval, execute is refused and the department is NOT admitted."""
        call = admit_call(consortium, "Tax", "TAX", [(accounts[5].address, Role.OPERATOR)])
        pid, _ = propose(consortium, committee[0], call)
        with reverts("GovernanceQuorumNotReached", proposalId=pid, approvals=1, threshold=2):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN
        assert consortium.registry.department_count() == 0
        assert consortium.registry.department_by_code("TAX") is None
        assert roles_of(consortium, accounts[5].address) == set()

    def test_at_quorum_executes_with_inner_events(self, consortium: Consortium, committee, accounts) -> None:
        """At quorum, execute emits ProposalExecuted then the proposed call's events, and the state changes."""
        operator = accounts[5].address
        call = admit_call(consortium, "Tax", "TAX", [(operator, Role.OPERATOR)])
        pid, _ = propose(consortium, committee[0], call)
        consortium.registry.approve(committee[1], pid)
        # any committee member may execute, not only the proposer or an approver
        result = consortium.registry.execute(committee[2], pid)
        registry = consortium.registry.address
        assert logs(consortium, result) == [
            ("ProposalExecuted", {"proposalId": pid, "executor": committee[2].address}),
            ("DepartmentAdmitted", {"deptId": 1, "code": encode_code("TAX"), "name": "Tax", "auditOffice": False}),
            ("AccountBound", {"deptId": 1, "account": operator}),
            granted(Role.OPERATOR, operator, registry),
        ]
        assert consortium.registry.proposal_state(pid) is ProposalState.EXECUTED
        assert tuple(view(consortium, "proposal", pid))[3:5] == (True, False)
        assert consortium.registry.department_of(operator) == 1

    def test_execute_twice_refused(self, consortium: Consortium, committee, accounts) -> None:
        call = consortium.registry.add_committee_member_call(accounts[20].address)
        pid, _ = propose(consortium, committee[0], call)
        consortium.registry.approve(committee[1], pid)
        consortium.registry.execute(committee[0], pid)
        for member in committee:
            with reverts("GovernanceProposalNotOpen", proposalId=pid, state=ProposalState.EXECUTED):
                consortium.registry.execute(member, pid)
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=ProposalState.EXECUTED):
            consortium.registry.approve(committee[2], pid)
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=ProposalState.EXECUTED):
            consortium.registry.cancel(committee[0], pid)

    def test_non_member_refused(self, consortium: Consortium, committee, accounts) -> None:
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(accounts[20].address))
        consortium.registry.approve(committee[1], pid)
        with reverts("GovernanceNotCommitteeMember", account=accounts[20].address):
            consortium.registry.execute(accounts[20], pid)
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN
        assert accounts[20].address not in consortium.registry.committee()

    def test_unknown_proposal_refused(self, consortium: Consortium, committee) -> None:
        with reverts("GovernanceUnknownProposal", proposalId=3):
            consortium.registry.execute(committee[0], 3)

    def test_inner_custom_error_bubbles_up(self, consortium: Consortium, committee, members: Members, accounts) -> None:
        """A failing proposed call reverts execute with the call's own error; the proposal stays open."""
        call = admit_call(consortium, "Another SAMR", "SAMR", [(accounts[20].address, Role.OPERATOR)])
        pid, _ = propose(consortium, committee[0], call)
        consortium.registry.approve(committee[1], pid)
        count = consortium.registry.department_count()
        with reverts("ConsortiumRegistryDepartmentCodeTaken", code=encode_code("SAMR"), deptId=members.samr.id):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN  # `executed = true` rolled back
        assert consortium.registry.department_count() == count
        assert consortium.registry.department_of(accounts[20].address) == 0

    def test_unknown_selector_reverts_empty(self, consortium: Consortium, committee) -> None:
        """Call data for a function the registry does not have: execute reverts without data, stays open."""
        pid, _ = propose(consortium, committee[0], b"\xde\xad\xbe\xef", "bogus")
        consortium.registry.approve(committee[1], pid)
        with reverts("EmptyRevert"):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN

    def test_removed_approver_no_longer_counts(self, consortium: Consortium, committee, accounts) -> None:
        """Approvals are recounted at execution: a member removed after approving drops out of the quorum."""
        c0, c1, c2 = committee
        pid, _ = propose(consortium, c0, consortium.registry.add_committee_member_call(accounts[20].address))
        consortium.registry.approve(c1, pid)
        assert consortium.registry.approvals(pid) == 2
        pass_(consortium, [c0, c2], consortium.registry.remove_committee_member_call(c1.address))
        assert consortium.registry.approvals(pid) == 1
        assert view(consortium, "hasApproved", pid, c1.address) is True  # the vote is recorded, just not counted
        with reverts("GovernanceQuorumNotReached", proposalId=pid, approvals=1, threshold=2):
            consortium.registry.execute(c0, pid)
        assert accounts[20].address not in consortium.registry.committee()
        # a current member's approval restores the quorum
        result = consortium.registry.approve(c2, pid)
        assert logs(consortium, result) == [("ProposalApproved", {"proposalId": pid, "member": c2.address, "approvals": 2})]
        consortium.registry.execute(c0, pid)
        assert set(consortium.registry.committee()) == {c0.address, c2.address, accounts[20].address}

    def test_threshold_raise_applies_to_open_proposals(self, consortium: Consortium, committee, accounts) -> None:
        """Quorum is checked against the threshold at execution time, not at proposal time."""
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(accounts[20].address))
        consortium.registry.approve(committee[1], pid)
        pass_(consortium, committee[:2], consortium.registry.set_threshold_call(3))
        with reverts("GovernanceQuorumNotReached", proposalId=pid, approvals=2, threshold=3):
            consortium.registry.execute(committee[0], pid)
        consortium.registry.approve(committee[2], pid)
        consortium.registry.execute(committee[0], pid)
        assert accounts[20].address in consortium.registry.committee()


# ---------------------------------------------------------------------------------------------- cancel


class TestCancel:
    def test_proposer_cancels(self, consortium: Consortium, committee, accounts) -> None:
        pid, _ = propose(consortium, committee[1], consortium.registry.add_committee_member_call(accounts[20].address))
        consortium.registry.approve(committee[0], pid)
        result = consortium.registry.cancel(committee[1], pid)
        assert logs(consortium, result) == [("ProposalCancelled", {"proposalId": pid})]
        assert consortium.registry.proposal_state(pid) is ProposalState.CANCELLED
        assert tuple(view(consortium, "proposal", pid))[3:5] == (False, True)

    def test_cancelled_cannot_be_approved_executed_or_cancelled(self, consortium: Consortium, committee, accounts) -> None:
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(accounts[20].address))
        consortium.registry.approve(committee[1], pid)  # at quorum before the cancel
        consortium.registry.cancel(committee[0], pid)
        state = ProposalState.CANCELLED
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=state):
            consortium.registry.approve(committee[2], pid)
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=state):
            consortium.registry.execute(committee[0], pid)
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=state):
            consortium.registry.cancel(committee[0], pid)
        assert accounts[20].address not in consortium.registry.committee()

    @pytest.mark.parametrize("who", [1, 2, 20])
    def test_only_proposer(self, consortium: Consortium, committee, accounts, who: int) -> None:
        """Another member (even an approver) or an outsider cannot cancel: GovernanceNotProposer."""
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(accounts[20].address))
        consortium.registry.approve(committee[1], pid)
        with reverts("GovernanceNotProposer", proposalId=pid, caller=accounts[who].address):
            consortium.registry.cancel(accounts[who], pid)
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN

    def test_unknown_proposal_refused(self, consortium: Consortium, committee) -> None:
        with reverts("GovernanceUnknownProposal", proposalId=9):
            consortium.registry.cancel(committee[0], 9)


# ---------------------------------------------------------------------------------------------- expiry


class TestExpiry:
    def test_proposal_expires_after_voting_period(self, consortium: Consortium, committee, accounts, ganache) -> None:
        """Open until just before the deadline; from the deadline on, Expired: no approve, execute or cancel."""
        call = consortium.registry.add_committee_member_call(accounts[20].address)
        pid, result = propose(consortium, committee[0], call)
        deadline = consortium.chain.block_timestamp(result.block_number) + VOTING_PERIOD
        ganache.increase_time(VOTING_PERIOD - 120)
        assert consortium.chain.block_timestamp() < deadline
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN
        consortium.registry.approve(committee[1], pid)  # still open: the vote is accepted

        ganache.increase_time(200)
        assert consortium.chain.block_timestamp() >= deadline
        assert consortium.registry.proposal_state(pid) is ProposalState.EXPIRED
        state = ProposalState.EXPIRED
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=state):
            consortium.registry.execute(committee[0], pid)
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=state):
            consortium.registry.approve(committee[2], pid)
        with reverts("GovernanceProposalNotOpen", proposalId=pid, state=state):
            consortium.registry.cancel(committee[0], pid)
        assert accounts[20].address not in consortium.registry.committee()
        assert consortium.registry.approvals(pid) == 2  # quorum was reached, but too late

    def test_new_proposal_after_expiry_works(self, consortium: Consortium, committee, accounts, ganache) -> None:
        """Expiry is per proposal: the same call proposed again after expiry passes normally."""
        call = consortium.registry.add_committee_member_call(accounts[20].address)
        old, _ = propose(consortium, committee[0], call)
        ganache.increase_time(VOTING_PERIOD + 1)
        pass_(consortium, committee[:2], call)
        assert consortium.registry.proposal_state(old) is ProposalState.EXPIRED
        assert accounts[20].address in consortium.registry.committee()


# ---------------------------------------------------------------------------------------------- onlyGovernance


class TestOnlyGovernance:
    @pytest.mark.parametrize(
        "fn,args",
        [
            ("admitDepartment", lambda a: ("Tax", encode_code("TAX"), False, [a], [Role.OPERATOR])),
            ("removeDepartment", lambda a: (1,)),
            ("addCommitteeMember", lambda a: (a,)),
            ("removeCommitteeMember", lambda a: (a,)),
            ("setThreshold", lambda a: (1,)),
            ("setMaxDecisionAgeBlocks", lambda a: (1_000,)),
        ],
    )
    def test_direct_calls_refused(self, consortium: Consortium, committee, members: Members, fn: str, args) -> None:
        """Governed functions called directly, by a committee member, an operator, an oracle or an
        outsider: GovernanceOnlySelf."""
        registry = consortium.registry
        before = (registry.committee(), registry.threshold(), registry.departments(), registry.max_decision_age_blocks())
        for signer in (committee[0], members.samr.operator, members.samr.oracle, members.outsider):
            target = committee[1].address if fn == "removeCommitteeMember" else members.outsider.address
            with reverts("GovernanceOnlySelf", caller=signer.address):
                send(consortium, signer, fn, *args(target))
        assert (registry.committee(), registry.threshold(), registry.departments(), registry.max_decision_age_blocks()) == before


# ---------------------------------------------------------------------------------------------- setThreshold


class TestSetThreshold:
    def test_change_via_proposal(self, consortium: Consortium, committee, accounts) -> None:
        result = pass_(consortium, committee[:2], consortium.registry.set_threshold_call(3))
        assert executed(consortium, result) == [("ThresholdChanged", {"previousThreshold": 2, "newThreshold": 3})]
        assert consortium.registry.threshold() == 3
        # two approvals are no longer enough
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(accounts[20].address))
        consortium.registry.approve(committee[1], pid)
        with reverts("GovernanceQuorumNotReached", proposalId=pid, approvals=2, threshold=3):
            consortium.registry.execute(committee[0], pid)
        # lowering it back to 1: a single member then passes proposals alone
        result = pass_(consortium, committee, consortium.registry.set_threshold_call(1))
        assert executed(consortium, result) == [("ThresholdChanged", {"previousThreshold": 3, "newThreshold": 1})]
        pid, _ = propose(consortium, committee[2], consortium.registry.add_committee_member_call(accounts[21].address))
        consortium.registry.execute(committee[2], pid)
        assert accounts[21].address in consortium.registry.committee()

    def test_same_value_emits_nothing(self, consortium: Consortium, committee) -> None:
        result = pass_(consortium, committee[:2], consortium.registry.set_threshold_call(2))
        assert executed(consortium, result) == []
        assert consortium.registry.threshold() == 2

    @pytest.mark.parametrize("value", [0, 4, 2**255])
    def test_out_of_range_refused(self, consortium: Consortium, committee, value: int) -> None:
        pid, _ = propose(consortium, committee[0], consortium.registry.set_threshold_call(value))
        consortium.registry.approve(committee[1], pid)
        with reverts("GovernanceThresholdOutOfRange", threshold=value, committeeSize=3):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.threshold() == 2
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN


# ---------------------------------------------------------------------------------------------- setMaxDecisionAgeBlocks


class TestSetMaxDecisionAge:
    def test_change_via_proposal(self, consortium: Consortium, committee) -> None:
        """Only a committee vote changes the bound; the change is an event with the old and new value."""
        registry = consortium.registry
        result = pass_(consortium, committee[:2], registry.set_max_decision_age_blocks_call(400))
        assert executed(consortium, result) == [("MaxDecisionAgeChanged", {"previous": DEFAULT_MAX_DECISION_AGE_BLOCKS,
                                                                           "current": 400})]
        assert registry.max_decision_age_blocks() == 400
        assert registry.max_decision_age_blocks(block=result.block_number - 1) == DEFAULT_MAX_DECISION_AGE_BLOCKS
        for bound in (MIN_DECISION_AGE_BLOCKS, MAX_DECISION_AGE_BLOCKS):  # both ends are allowed
            result = pass_(consortium, committee[:2], registry.set_max_decision_age_blocks_call(bound))
            assert executed(consortium, result)[0][1]["current"] == bound
            assert registry.max_decision_age_blocks() == bound

    def test_same_value_emits_nothing(self, consortium: Consortium, committee) -> None:
        result = pass_(consortium, committee[:2], consortium.registry.set_max_decision_age_blocks_call(
            DEFAULT_MAX_DECISION_AGE_BLOCKS))
        assert executed(consortium, result) == []

    @pytest.mark.parametrize("value", [0, MIN_DECISION_AGE_BLOCKS - 1, MAX_DECISION_AGE_BLOCKS + 1, 2**64 - 1])
    def test_out_of_range_refused(self, consortium: Consortium, committee, value: int) -> None:
        """Too small (no oracle could anchor) or too large (the bound switched off in effect): refused, and
        the proposal stays open."""
        pid, _ = propose(consortium, committee[0], consortium.registry.set_max_decision_age_blocks_call(value))
        consortium.registry.approve(committee[1], pid)
        with reverts("ConsortiumRegistryDecisionAgeOutOfRange", blocks=value, min=MIN_DECISION_AGE_BLOCKS,
                     max=MAX_DECISION_AGE_BLOCKS):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.max_decision_age_blocks() == DEFAULT_MAX_DECISION_AGE_BLOCKS
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN


# ---------------------------------------------------------------------------------------------- admitDepartment


class TestAdmitDepartment:
    def test_events_and_views(self, consortium: Consortium, committee, accounts) -> None:
        """Admission emits DepartmentAdmitted, then AccountBound once per account and RoleGranted per role."""
        op, oracle, auditor = accounts[9].address, accounts[10].address, accounts[11].address
        call = admit_call(
            consortium, "审计局 Audit Office", "AUDIT",
            [(op, Role.OPERATOR), (oracle, Role.ORACLE), (auditor, Role.AUDITOR), (op, Role.AUDITOR)],
            audit=True,
        )
        result = pass_(consortium, committee[:2], call)
        registry = consortium.registry.address
        assert executed(consortium, result) == [
            ("DepartmentAdmitted", {"deptId": 1, "code": encode_code("AUDIT"), "name": "审计局 Audit Office", "auditOffice": True}),
            ("AccountBound", {"deptId": 1, "account": op}),
            granted(Role.OPERATOR, op, registry),
            ("AccountBound", {"deptId": 1, "account": oracle}),
            granted(Role.ORACLE, oracle, registry),
            ("AccountBound", {"deptId": 1, "account": auditor}),
            granted(Role.AUDITOR, auditor, registry),
            granted(Role.AUDITOR, op, registry),  # second role of a bound account: no second AccountBound
        ]
        expected = Department(id=1, active=True, audit_office=True, code="AUDIT", name="审计局 Audit Office", oracle_url="")
        reg = consortium.registry
        assert reg.department(1) == expected
        assert reg.department_by_code("AUDIT") == expected
        assert reg.departments() == [expected]
        assert reg.department_count() == 1
        assert reg.department_accounts(1) == [op, oracle, auditor]
        assert view(consortium, "isActiveDepartment", 1) is True
        assert view(consortium, "isAuditOffice", 1) is True
        assert roles_of(consortium, op) == {Role.OPERATOR, Role.AUDITOR}
        assert roles_of(consortium, oracle) == {Role.ORACLE}
        assert roles_of(consortium, auditor) == {Role.AUDITOR}
        for account in (op, oracle, auditor):
            assert reg.department_of(account) == 1
        assert reg.department_with_role(Role.OPERATOR, op) == 1
        assert reg.department_with_role(Role.AUDITOR, op) == 1
        assert reg.department_with_role(Role.ORACLE, op) == 0  # bound, but without that role
        assert reg.department_with_role(Role.OPERATOR, oracle) == 0
        assert reg.department_with_role(Role.ORACLE, oracle) == 1
        assert reg.department_with_role(Role.AUDITOR, auditor) == 1

    def test_fixture_members_views(self, consortium: Consortium, committee, members: Members) -> None:
        """The four admitted departments: ids 1..4 in order, distinct accounts, views agree with each other."""
        reg = consortium.registry
        depts = reg.departments()
        assert [(d.id, d.code, d.active, d.audit_office) for d in depts] == [
            (1, "SAMR", True, False), (2, "TAX", True, False), (3, "PSB", True, False), (4, "AUDIT", True, True),
        ]
        for member in (members.samr, members.tax, members.psb, members.audit):
            assert reg.department_by_code(member.code).id == member.id
            expected_accounts = [member.operator.address, member.oracle.address]
            if member.auditor is not None:
                expected_accounts.append(member.auditor.address)
            assert reg.department_accounts(member.id) == expected_accounts
            assert reg.department_with_role(Role.OPERATOR, member.operator.address) == member.id
            assert reg.department_with_role(Role.ORACLE, member.oracle.address) == member.id
            assert view(consortium, "isAuditOffice", member.id) is (member is members.audit)
        assert reg.department_with_role(Role.AUDITOR, members.audit.auditor.address) == members.audit.id
        # outsiders and the secretariat belong nowhere
        for account in (members.outsider.address, committee[0].address):
            assert reg.department_of(account) == 0
            assert all(reg.department_with_role(r, account) == 0 for r in ALL_ROLES)
        assert reg.department_with_role(Role.COMMITTEE, committee[0].address) == 0  # role held, but no department
        assert reg.committee() == [m.address for m in committee]

    def test_unknown_department_views(self, consortium: Consortium, members: Members) -> None:
        """A department id never admitted reads as id 0, inactive; an unknown code as None."""
        assert consortium.registry.department(99) == Department(0, False, False, "", "", "")
        assert consortium.registry.department(0) == Department(0, False, False, "", "", "")
        assert consortium.registry.department_by_code("NOPE") is None
        assert consortium.registry.department_accounts(99) == []
        assert view(consortium, "isActiveDepartment", 99) is False
        assert view(consortium, "isAuditOffice", 99) is False

    def test_committee_member_may_be_admitted_as_operator(self, consortium: Consortium, committee) -> None:
        """A secretariat member (no department) can be bound by admission and keeps its COMMITTEE role."""
        result = pass_(consortium, committee[:2], admit_call(consortium, "Tax", "TAX", [(committee[2].address, Role.OPERATOR)]))
        assert ("AccountBound", {"deptId": 1, "account": committee[2].address}) in executed(consortium, result)
        assert roles_of(consortium, committee[2].address) == {Role.COMMITTEE, Role.OPERATOR}
        assert consortium.registry.department_of(committee[2].address) == 1

    def _refused(self, consortium: Consortium, committee, call: bytes, error: str, /, **args: Any) -> None:
        count = consortium.registry.department_count()
        pid, _ = propose(consortium, committee[0], call)
        consortium.registry.approve(committee[1], pid)
        with reverts(error, **args):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.department_count() == count
        assert consortium.registry.proposal_state(pid) is ProposalState.OPEN

    def test_empty_name_refused(self, consortium: Consortium, committee, accounts) -> None:
        call = admit_call(consortium, "", "TAX", [(accounts[5].address, Role.OPERATOR)])
        self._refused(consortium, committee, call, "ConsortiumRegistryInvalidDepartment", name="", code=encode_code("TAX"))
        assert consortium.registry.department_of(accounts[5].address) == 0

    def test_zero_code_refused(self, consortium: Consortium, committee, accounts) -> None:
        call = consortium.registry._encode("admitDepartment", "Tax", b"\x00" * 32, False, [accounts[5].address], [Role.OPERATOR])
        self._refused(consortium, committee, call, "ConsortiumRegistryInvalidDepartment", name="Tax", code=b"\x00" * 32)

    def test_code_taken_refused(self, consortium: Consortium, committee, members: Members, accounts) -> None:
        call = admit_call(consortium, "Tax bis", "TAX", [(accounts[20].address, Role.OPERATOR)])
        self._refused(consortium, committee, call, "ConsortiumRegistryDepartmentCodeTaken", code=encode_code("TAX"), deptId=members.tax.id)

    @pytest.mark.parametrize("n_accounts,n_roles", [(2, 1), (1, 2), (0, 1)])
    def test_length_mismatch_refused(self, consortium: Consortium, committee, accounts, n_accounts: int, n_roles: int) -> None:
        call = consortium.registry._encode(
            "admitDepartment", "Tax", encode_code("TAX"), False,
            [a.address for a in accounts[20:20 + n_accounts]], [Role.OPERATOR] * n_roles,
        )
        self._refused(consortium, committee, call, "ConsortiumRegistryArrayLengthMismatch", accounts=n_accounts, roles=n_roles)

    def test_auditor_outside_audit_office_refused(self, consortium: Consortium, committee, accounts) -> None:
        call = admit_call(consortium, "Tax", "TAX", [(accounts[5].address, Role.OPERATOR), (accounts[6].address, Role.AUDITOR)])
        self._refused(consortium, committee, call, "ConsortiumRegistryRoleNotAssignable", role=Role.AUDITOR, deptId=1)
        assert consortium.registry.department_of(accounts[5].address) == 0

    @pytest.mark.parametrize("role", [Role.COMMITTEE, DEFAULT_ADMIN_ROLE, keccak(text="govshare.role.OTHER")])
    def test_other_roles_not_assignable(self, consortium: Consortium, committee, accounts, role: bytes) -> None:
        """COMMITTEE (even for an audit office), DEFAULT_ADMIN_ROLE or an unknown role cannot be given by admission."""
        call = admit_call(consortium, "Audit", "AUDIT", [(accounts[5].address, Role.OPERATOR), (accounts[6].address, role)], audit=True)
        self._refused(consortium, committee, call, "ConsortiumRegistryRoleNotAssignable", role=role, deptId=1)
        assert not consortium.registry.has_role(role, accounts[6].address)

    def test_zero_account_refused(self, consortium: Consortium, committee, accounts) -> None:
        call = admit_call(consortium, "Tax", "TAX", [(accounts[5].address, Role.OPERATOR), (ZERO, Role.ORACLE)])
        self._refused(consortium, committee, call, "ConsortiumRegistryInvalidAccount", account=ZERO)

    def test_account_of_another_department_refused(self, consortium: Consortium, committee, members: Members, accounts) -> None:
        call = admit_call(consortium, "Customs", "CUSTOMS", [(accounts[20].address, Role.OPERATOR), (members.samr.oracle.address, Role.ORACLE)])
        self._refused(consortium, committee, call, "ConsortiumRegistryAccountTaken", account=members.samr.oracle.address, deptId=members.samr.id)
        assert consortium.registry.department_of(accounts[20].address) == 0
        assert roles_of(consortium, members.samr.oracle.address) == {Role.ORACLE}

    @pytest.mark.parametrize("bindings", ["oracle_only", "none"])
    def test_no_operator_refused(self, consortium: Consortium, committee, accounts, bindings: str) -> None:
        roles = [(accounts[6].address, Role.ORACLE)] if bindings == "oracle_only" else []
        call = admit_call(consortium, "Tax", "TAX", roles)
        self._refused(consortium, committee, call, "ConsortiumRegistryLastOperator", deptId=1, account=ZERO)
        assert consortium.registry.department_by_code("TAX") is None

    def test_too_many_accounts_refused(self, consortium: Consortium, committee) -> None:
        """Admission binds at most MAX_ACCOUNTS_PER_DEPARTMENT (32) accounts; the 33rd is refused."""
        signers = [generate_signer() for _ in range(MAX_ACCOUNTS + 1)]
        call = admit_call(consortium, "Big", "BIG", [(s.address, Role.OPERATOR) for s in signers])
        self._refused(consortium, committee, call, "ConsortiumRegistryTooManyAccounts", deptId=1, max=MAX_ACCOUNTS)
        result = pass_(consortium, committee[:2], admit_call(consortium, "Big", "BIG", [(s.address, Role.OPERATOR) for s in signers[:MAX_ACCOUNTS]]))
        assert len(consortium.registry.events_named(result, "AccountBound")) == MAX_ACCOUNTS
        assert len(consortium.registry.department_accounts(1)) == MAX_ACCOUNTS

    def test_client_code_encoding(self) -> None:
        """encode_code pads to 32 bytes and refuses empty or over-long codes; decode_code inverts it."""
        assert encode_code("SAMR") == b"SAMR" + b"\x00" * 28
        assert decode_code(encode_code("审计")) == "审计"
        assert encode_code("X" * 32) == b"X" * 32
        for bad in ("", "X" * 33):
            with pytest.raises(ValueError):
                encode_code(bad)


# ---------------------------------------------------------------------------------------------- removeDepartment


class TestRemoveDepartment:
    def test_all_roles_revoked_in_one_transaction(self, consortium: Consortium, committee, members: Members) -> None:
        """Removing the audit office revokes operator, oracle, auditor and COMMITTEE of its accounts in one tx."""
        audit = members.audit
        op, oracle, auditor = audit.operator.address, audit.oracle.address, audit.auditor.address
        pass_(consortium, committee[:2], consortium.registry.add_committee_member_call(op))
        assert roles_of(consortium, op) == {Role.COMMITTEE, Role.OPERATOR}
        result = pass_(consortium, committee[:2], consortium.registry.remove_department_call(audit.id))
        registry = consortium.registry.address
        # accounts are taken from the end of the set: auditor, oracle, operator
        assert executed(consortium, result) == [
            revoked(Role.AUDITOR, auditor, registry),
            ("AccountUnbound", {"deptId": audit.id, "account": auditor}),
            revoked(Role.ORACLE, oracle, registry),
            ("AccountUnbound", {"deptId": audit.id, "account": oracle}),
            revoked(Role.COMMITTEE, op, registry),
            revoked(Role.OPERATOR, op, registry),
            ("AccountUnbound", {"deptId": audit.id, "account": op}),
            ("DepartmentRemoved", {"deptId": audit.id}),
        ]
        before = result.block_number - 1
        assert roles_of(consortium, op, before) == {Role.COMMITTEE, Role.OPERATOR}
        assert roles_of(consortium, oracle, before) == {Role.ORACLE}
        assert roles_of(consortium, auditor, before) == {Role.AUDITOR}
        reg = consortium.registry
        for account in (op, oracle, auditor):
            assert roles_of(consortium, account) == set()
            assert reg.department_of(account) == 0
            assert all(reg.department_with_role(r, account) == 0 for r in ALL_ROLES)
        assert reg.department_accounts(audit.id) == []
        assert reg.department(audit.id) == Department(audit.id, False, True, "AUDIT", "审计局 Audit Office", "")
        assert reg.department_by_code("AUDIT").active is False  # the code stays reserved
        assert view(consortium, "isActiveDepartment", audit.id) is False
        assert view(consortium, "isAuditOffice", audit.id) is False
        assert reg.committee() == [m.address for m in committee]
        # other departments are untouched
        assert reg.department_accounts(members.samr.id) == [members.samr.operator.address, members.samr.oracle.address]
        assert reg.department_count() == 4

    def test_removed_operator_cannot_register_dataset(self, consortium: Consortium, committee, members: Members) -> None:
        """The catalog sees the revocation: the removed department's operator is no longer an operator."""
        operator = members.samr.operator
        register_dataset(consortium, operator)  # allowed before
        pass_(consortium, committee[:2], consortium.registry.remove_department_call(members.samr.id))
        with reverts("DataCatalogNotOperator", caller=operator.address):
            register_dataset(consortium, operator)
        register_dataset(consortium, members.tax.operator)  # other departments still can

    def test_removed_operator_loses_self_service(self, consortium: Consortium, committee, members: Members, accounts) -> None:
        operator = members.samr.operator
        pass_(consortium, committee[:2], consortium.registry.remove_department_call(members.samr.id))
        with reverts("ConsortiumRegistryNotDepartmentOperator", caller=operator.address, deptId=0):
            consortium.registry.set_oracle_url(operator, "https://samr.example/oracle")
        with reverts("ConsortiumRegistryNotDepartmentOperator", caller=operator.address, deptId=0):
            consortium.registry.add_account(operator, accounts[20].address, Role.OPERATOR)

    def test_freed_accounts_can_join_a_new_department(self, consortium: Consortium, committee, members: Members) -> None:
        """After removal the accounts are free; the old code stays taken (ConsortiumRegistryDepartmentCodeTaken)."""
        samr = members.samr
        pass_(consortium, committee[:2], consortium.registry.remove_department_call(samr.id))
        reuse = admit_call(consortium, "SAMR again", "SAMR", [(samr.operator.address, Role.OPERATOR)])
        pid, _ = propose(consortium, committee[0], reuse)
        consortium.registry.approve(committee[1], pid)
        with reverts("ConsortiumRegistryDepartmentCodeTaken", code=encode_code("SAMR"), deptId=samr.id):
            consortium.registry.execute(committee[0], pid)
        new_id = admit(consortium, committee, "SAMR (new)", "SAMR2", [AccountRole(samr.operator.address, Role.OPERATOR)])
        assert new_id == 5
        assert consortium.registry.department_of(samr.operator.address) == 5
        assert consortium.registry.department_with_role(Role.OPERATOR, samr.operator.address) == 5

    def test_unknown_department_refused(self, consortium: Consortium, committee, members: Members) -> None:
        """Ids 0, one past the last admitted, and the largest uint32 are not departments."""
        for dept_id in (0, 5, 2**32 - 1):
            pid, _ = propose(consortium, committee[0], consortium.registry.remove_department_call(dept_id))
            consortium.registry.approve(committee[1], pid)
            with reverts("ConsortiumRegistryUnknownDepartment", deptId=dept_id):
                consortium.registry.execute(committee[0], pid)
        assert [d.active for d in consortium.registry.departments()] == [True] * 4

    def test_already_removed_refused(self, consortium: Consortium, committee, members: Members) -> None:
        call = consortium.registry.remove_department_call(members.tax.id)
        pass_(consortium, committee[:2], call)
        pid, _ = propose(consortium, committee[0], call)
        consortium.registry.approve(committee[1], pid)
        with reverts("ConsortiumRegistryUnknownDepartment", deptId=members.tax.id):
            consortium.registry.execute(committee[0], pid)

    def test_removal_breaking_quorum_refused(self, consortium: Consortium, committee, members: Members) -> None:
        """A removal that would leave fewer committee members than the threshold is refused as a whole."""
        samr = members.samr
        pass_(consortium, committee[:2], consortium.registry.add_committee_member_call(samr.operator.address))
        pass_(consortium, committee[:2], consortium.registry.set_threshold_call(4))
        voters = [*committee, samr.operator]
        pid, _ = propose(consortium, committee[0], consortium.registry.remove_department_call(samr.id))
        for voter in voters[1:]:
            consortium.registry.approve(voter, pid)
        with reverts("GovernanceThresholdOutOfRange", threshold=4, committeeSize=3):
            consortium.registry.execute(committee[0], pid)
        # nothing was revoked
        assert roles_of(consortium, samr.operator.address) == {Role.COMMITTEE, Role.OPERATOR}
        assert roles_of(consortium, samr.oracle.address) == {Role.ORACLE}
        assert consortium.registry.department(samr.id).active is True
        assert consortium.registry.department_accounts(samr.id) == [samr.operator.address, samr.oracle.address]
        # after lowering the threshold the removal goes through
        pass_(consortium, voters, consortium.registry.set_threshold_call(3))
        consortium.registry.execute(committee[0], pid)
        assert consortium.registry.committee() == [m.address for m in committee]


# ---------------------------------------------------------------------------------------------- committee


class TestCommitteeChanges:
    def test_add_member(self, consortium: Consortium, committee, members: Members) -> None:
        """addCommitteeMember grants COMMITTEE (sender: the registry); the new member can then propose and vote."""
        new = members.outsider
        result = pass_(consortium, committee[:2], consortium.registry.add_committee_member_call(new.address))
        assert executed(consortium, result) == [granted(Role.COMMITTEE, new.address, consortium.registry.address)]
        assert consortium.registry.committee() == [*(m.address for m in committee), new.address]
        assert consortium.registry.department_of(new.address) == 0
        pid, _ = propose(consortium, new, consortium.registry.set_threshold_call(3))
        consortium.registry.approve(committee[2], pid)
        consortium.registry.execute(new, pid)
        assert consortium.registry.threshold() == 3

    def test_add_department_account_to_committee(self, consortium: Consortium, committee, members: Members) -> None:
        """A department's operator may also sit on the committee; both roles coexist."""
        op = members.tax.operator.address
        pass_(consortium, committee[:2], consortium.registry.add_committee_member_call(op))
        assert roles_of(consortium, op) == {Role.COMMITTEE, Role.OPERATOR}
        assert consortium.registry.department_of(op) == members.tax.id

    @pytest.mark.parametrize("index", [0, 2])
    def test_add_existing_member_refused(self, consortium: Consortium, committee, index: int) -> None:
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(committee[index].address))
        consortium.registry.approve(committee[1], pid)
        with reverts("ConsortiumRegistryAlreadyCommitteeMember", account=committee[index].address):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.committee() == [m.address for m in committee]

    def test_add_zero_address_refused(self, consortium: Consortium, committee) -> None:
        pid, _ = propose(consortium, committee[0], consortium.registry.add_committee_member_call(ZERO))
        consortium.registry.approve(committee[1], pid)
        with reverts("ConsortiumRegistryInvalidAccount", account=ZERO):
            consortium.registry.execute(committee[0], pid)

    def test_remove_member(self, consortium: Consortium, committee) -> None:
        result = pass_(consortium, committee[:2], consortium.registry.remove_committee_member_call(committee[2].address))
        assert executed(consortium, result) == [revoked(Role.COMMITTEE, committee[2].address, consortium.registry.address)]
        assert consortium.registry.committee() == [committee[0].address, committee[1].address]
        with reverts("GovernanceNotCommitteeMember", account=committee[2].address):
            consortium.registry.propose(committee[2], consortium.registry.set_threshold_call(1), "")

    def test_proposer_may_remove_itself(self, consortium: Consortium, committee) -> None:
        pass_(consortium, committee[:2], consortium.registry.remove_committee_member_call(committee[0].address))
        assert consortium.registry.committee() == [committee[2].address, committee[1].address]  # swap-and-pop order

    def test_remove_non_member_refused(self, consortium: Consortium, committee, members: Members) -> None:
        for account in (members.outsider.address, members.samr.operator.address):
            pid, _ = propose(consortium, committee[0], consortium.registry.remove_committee_member_call(account))
            consortium.registry.approve(committee[1], pid)
            with reverts("ConsortiumRegistryNotCommitteeMember", account=account):
                consortium.registry.execute(committee[0], pid)
        assert roles_of(consortium, members.samr.operator.address) == {Role.OPERATOR}

    def test_remove_breaking_quorum_refused(self, consortium: Consortium, committee) -> None:
        """With 2 members left and threshold 2, removing one more is refused; the committee is unchanged."""
        pass_(consortium, committee[:2], consortium.registry.remove_committee_member_call(committee[2].address))
        pid, _ = propose(consortium, committee[0], consortium.registry.remove_committee_member_call(committee[1].address))
        consortium.registry.approve(committee[1], pid)
        with reverts("GovernanceThresholdOutOfRange", threshold=2, committeeSize=1):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.committee() == [committee[0].address, committee[1].address]
        assert consortium.registry.has_role(Role.COMMITTEE, committee[1].address)

    def test_remove_after_lowering_threshold(self, consortium: Consortium, committee) -> None:
        pass_(consortium, committee[:2], consortium.registry.set_threshold_call(1))
        pass_(consortium, committee[:1], consortium.registry.remove_committee_member_call(committee[1].address))
        pass_(consortium, committee[:1], consortium.registry.remove_committee_member_call(committee[2].address))
        assert consortium.registry.committee() == [committee[0].address]
        pid, _ = propose(consortium, committee[0], consortium.registry.remove_committee_member_call(committee[0].address))
        with reverts("GovernanceThresholdOutOfRange", threshold=1, committeeSize=0):
            consortium.registry.execute(committee[0], pid)
        assert consortium.registry.committee() == [committee[0].address]


# ---------------------------------------------------------------------------------------------- addDepartmentAccount


class TestAddDepartmentAccount:
    def test_operator_adds_oracle_then_second_role(self, consortium: Consortium, members: Members) -> None:
        samr, new = members.samr, members.spare[0].address
        result = consortium.registry.add_account(samr.operator, new, Role.ORACLE)
        assert logs(consortium, result) == [
            ("AccountBound", {"deptId": samr.id, "account": new}),
            granted(Role.ORACLE, new, samr.operator.address),
        ]
        assert consortium.registry.department_accounts(samr.id) == [samr.operator.address, samr.oracle.address, new]
        assert consortium.registry.department_with_role(Role.ORACLE, new) == samr.id
        # a second role for an account already bound: RoleGranted only
        result = consortium.registry.add_account(samr.operator, new, Role.OPERATOR)
        assert logs(consortium, result) == [granted(Role.OPERATOR, new, samr.operator.address)]
        assert roles_of(consortium, new) == {Role.ORACLE, Role.OPERATOR}
        assert len(consortium.registry.department_accounts(samr.id)) == 3

    def test_new_operator_can_act(self, consortium: Consortium, members: Members) -> None:
        """An operator added by rotation registers datasets and manages accounts for the department."""
        samr, new = members.samr, members.spare[0]
        consortium.registry.add_account(samr.operator, new.address, Role.OPERATOR)
        dataset = register_dataset(consortium, new)
        assert consortium.catalog.owner_of(dataset) == samr.id
        result = consortium.registry.add_account(new, members.spare[1].address, Role.ORACLE)
        assert logs(consortium, result)[1] == granted(Role.ORACLE, members.spare[1].address, new.address)

    def test_same_role_twice_is_a_silent_no_op(self, consortium: Consortium, members: Members) -> None:
        samr = members.samr
        result = consortium.registry.add_account(samr.operator, samr.oracle.address, Role.ORACLE)
        assert logs(consortium, result) == []
        assert consortium.registry.department_accounts(samr.id) == [samr.operator.address, samr.oracle.address]

    def test_auditor_in_audit_office(self, consortium: Consortium, members: Members) -> None:
        audit, new = members.audit, members.spare[0].address
        result = consortium.registry.add_account(audit.operator, new, Role.AUDITOR)
        assert logs(consortium, result) == [
            ("AccountBound", {"deptId": audit.id, "account": new}),
            granted(Role.AUDITOR, new, audit.operator.address),
        ]
        assert consortium.registry.department_with_role(Role.AUDITOR, new) == audit.id

    def test_role_not_assignable(self, consortium: Consortium, members: Members) -> None:
        """A non-audit department cannot grant AUDITOR; nobody can self-grant COMMITTEE or the admin role."""
        samr, new = members.samr, members.spare[0].address
        for role in (Role.AUDITOR, Role.COMMITTEE, DEFAULT_ADMIN_ROLE):
            with reverts("ConsortiumRegistryRoleNotAssignable", role=role, deptId=samr.id):
                consortium.registry.add_account(samr.operator, new, role)
            with reverts("ConsortiumRegistryRoleNotAssignable", role=role, deptId=samr.id):
                consortium.registry.add_account(samr.operator, samr.operator.address, role)
            assert not consortium.registry.has_role(role, new)
            assert not consortium.registry.has_role(role, samr.operator.address)
        assert consortium.registry.department_of(new) == 0

    def test_audit_office_cannot_self_grant_committee(self, consortium: Consortium, members: Members) -> None:
        audit = members.audit
        with reverts("ConsortiumRegistryRoleNotAssignable", role=Role.COMMITTEE, deptId=audit.id):
            consortium.registry.add_account(audit.operator, audit.operator.address, Role.COMMITTEE)
        assert audit.operator.address not in consortium.registry.committee()

    def test_non_operator_callers_refused(self, consortium: Consortium, committee, members: Members) -> None:
        """Outsiders, the secretariat, oracles and auditors cannot bind accounts."""
        target = members.spare[0].address
        cases = [
            (members.outsider, 0),
            (committee[0], 0),
            (members.samr.oracle, members.samr.id),
            (members.audit.auditor, members.audit.id),
        ]
        for caller, dept_id in cases:
            with reverts("ConsortiumRegistryNotDepartmentOperator", caller=caller.address, deptId=dept_id):
                consortium.registry.add_account(caller, target, Role.ORACLE)
        assert consortium.registry.department_of(target) == 0

    def test_account_of_another_department_refused(self, consortium: Consortium, members: Members) -> None:
        samr, tax = members.samr, members.tax
        with reverts("ConsortiumRegistryAccountTaken", account=tax.oracle.address, deptId=tax.id):
            consortium.registry.add_account(samr.operator, tax.oracle.address, Role.OPERATOR)
        assert roles_of(consortium, tax.oracle.address) == {Role.ORACLE}
        assert consortium.registry.department_of(tax.oracle.address) == tax.id

    def test_zero_account_refused(self, consortium: Consortium, members: Members) -> None:
        with reverts("ConsortiumRegistryInvalidAccount", account=ZERO):
            consortium.registry.add_account(members.samr.operator, ZERO, Role.ORACLE)

    def test_operator_may_not_bind_a_committee_member(self, consortium: Consortium, committee, members: Members) -> None:
        """A committee member without a department cannot be bound by a department on its own (it would tie
        the member's seat to that department, without the member's consent and beyond the committee's
        control); nothing changes."""
        samr, member = members.samr, committee[2].address
        with reverts("ConsortiumRegistryCommitteeMemberNotBindable", account=member):
            consortium.registry.add_account(samr.operator, member, Role.ORACLE)
        assert consortium.registry.department_of(member) == 0
        assert member in consortium.registry.committee()
        assert member not in consortium.registry.department_accounts(samr.id)

    def test_committee_vote_may_bind_a_committee_member(self, consortium: Consortium, committee) -> None:
        """The committee itself may admit a department whose accounts include a committee member."""
        member = committee[2]
        result = pass_(consortium, committee[:2], consortium.registry.admit_department_call(
            "Statistics", "STATS", [AccountRole(member.address, Role.OPERATOR)]))
        dept_id = consortium.registry.department_by_code("STATS").id
        assert consortium.registry.department_of(member.address) == dept_id
        assert member.address in consortium.registry.committee()
        assert result.tx_hash

    def test_max_accounts_per_department(self, consortium: Consortium, members: Members) -> None:
        """A department binds at most 32 accounts; adding a role to an already bound account is still allowed."""
        samr = members.samr
        assert view(consortium, "MAX_ACCOUNTS_PER_DEPARTMENT") == MAX_ACCOUNTS
        for _ in range(MAX_ACCOUNTS - 2):
            consortium.registry.add_account(samr.operator, generate_signer().address, Role.ORACLE)
        assert len(consortium.registry.department_accounts(samr.id)) == MAX_ACCOUNTS
        extra = generate_signer().address
        with reverts("ConsortiumRegistryTooManyAccounts", deptId=samr.id, max=MAX_ACCOUNTS):
            consortium.registry.add_account(samr.operator, extra, Role.ORACLE)
        assert consortium.registry.department_of(extra) == 0
        result = consortium.registry.add_account(samr.operator, samr.oracle.address, Role.OPERATOR)
        assert logs(consortium, result) == [granted(Role.OPERATOR, samr.oracle.address, samr.operator.address)]
        # unbinding one frees a slot
        last = consortium.registry.department_accounts(samr.id)[-1]
        consortium.registry.remove_account(samr.operator, last, Role.ORACLE)
        consortium.registry.add_account(samr.operator, extra, Role.ORACLE)
        assert consortium.registry.department_of(extra) == samr.id


# ---------------------------------------------------------------------------------------------- removeDepartmentAccount


class TestRemoveDepartmentAccount:
    def test_last_role_unbinds_and_account_can_move(self, consortium: Consortium, members: Members) -> None:
        samr, tax, oracle = members.samr, members.tax, members.samr.oracle.address
        result = consortium.registry.remove_account(samr.operator, oracle, Role.ORACLE)
        assert logs(consortium, result) == [
            revoked(Role.ORACLE, oracle, samr.operator.address),
            ("AccountUnbound", {"deptId": samr.id, "account": oracle}),
        ]
        assert roles_of(consortium, oracle) == set()
        assert consortium.registry.department_of(oracle) == 0
        assert consortium.registry.department_accounts(samr.id) == [samr.operator.address]
        result = consortium.registry.add_account(tax.operator, oracle, Role.ORACLE)
        assert logs(consortium, result) == [
            ("AccountBound", {"deptId": tax.id, "account": oracle}),
            granted(Role.ORACLE, oracle, tax.operator.address),
        ]
        assert consortium.registry.department_with_role(Role.ORACLE, oracle) == tax.id

    def test_one_of_two_roles_keeps_binding(self, consortium: Consortium, members: Members) -> None:
        samr, oracle = members.samr, members.samr.oracle.address
        consortium.registry.add_account(samr.operator, oracle, Role.OPERATOR)
        result = consortium.registry.remove_account(samr.operator, oracle, Role.ORACLE)
        assert logs(consortium, result) == [revoked(Role.ORACLE, oracle, samr.operator.address)]
        assert roles_of(consortium, oracle) == {Role.OPERATOR}
        assert consortium.registry.department_of(oracle) == samr.id

    def test_committee_seat_keeps_binding(self, consortium: Consortium, committee, members: Members) -> None:
        """An account that also sits on the committee stays bound when it loses its last department role."""
        tax = members.tax
        pass_(consortium, committee[:2], consortium.registry.add_committee_member_call(tax.oracle.address))
        result = consortium.registry.remove_account(tax.operator, tax.oracle.address, Role.ORACLE)
        assert logs(consortium, result) == [revoked(Role.ORACLE, tax.oracle.address, tax.operator.address)]
        assert roles_of(consortium, tax.oracle.address) == {Role.COMMITTEE}
        assert consortium.registry.department_of(tax.oracle.address) == tax.id
        # the department cannot take the committee seat away
        with reverts("ConsortiumRegistryRoleNotHeld", account=tax.oracle.address, role=Role.COMMITTEE):
            consortium.registry.remove_account(tax.operator, tax.oracle.address, Role.COMMITTEE)
        assert consortium.registry.has_role(Role.COMMITTEE, tax.oracle.address)

    def test_operator_removes_itself_when_another_remains(self, consortium: Consortium, members: Members) -> None:
        samr, new = members.samr, members.spare[0]
        consortium.registry.add_account(samr.operator, new.address, Role.OPERATOR)
        result = consortium.registry.remove_account(samr.operator, samr.operator.address, Role.OPERATOR)
        assert logs(consortium, result) == [
            revoked(Role.OPERATOR, samr.operator.address, samr.operator.address),
            ("AccountUnbound", {"deptId": samr.id, "account": samr.operator.address}),
        ]
        with reverts("ConsortiumRegistryNotDepartmentOperator", caller=samr.operator.address, deptId=0):
            consortium.registry.set_oracle_url(samr.operator, "https://x")
        with reverts("DataCatalogNotOperator", caller=samr.operator.address):
            register_dataset(consortium, samr.operator)
        consortium.registry.set_oracle_url(new, "https://samr.example")  # the new key works

    def test_last_operator_refused(self, consortium: Consortium, members: Members) -> None:
        samr = members.samr
        with reverts("ConsortiumRegistryLastOperator", deptId=samr.id, account=samr.operator.address):
            consortium.registry.remove_account(samr.operator, samr.operator.address, Role.OPERATOR)
        assert roles_of(consortium, samr.operator.address) == {Role.OPERATOR}
        assert consortium.registry.department_of(samr.operator.address) == samr.id

    def test_role_not_held_refused(self, consortium: Consortium, members: Members) -> None:
        samr, tax = members.samr, members.tax
        cases = [
            (samr.oracle.address, Role.OPERATOR),  # bound here, but without that role
            (samr.operator.address, Role.AUDITOR),
            (tax.oracle.address, Role.ORACLE),  # holds the role, in another department
            (members.outsider.address, Role.ORACLE),  # bound nowhere
            (samr.oracle.address, DEFAULT_ADMIN_ROLE),
        ]
        for account, role in cases:
            with reverts("ConsortiumRegistryRoleNotHeld", account=account, role=role):
                consortium.registry.remove_account(samr.operator, account, role)
        assert roles_of(consortium, tax.oracle.address) == {Role.ORACLE}
        assert roles_of(consortium, samr.oracle.address) == {Role.ORACLE}

    def test_non_operator_callers_refused(self, consortium: Consortium, committee, members: Members) -> None:
        samr = members.samr
        for caller, dept_id in ((samr.oracle, samr.id), (members.outsider, 0), (committee[0], 0), (members.tax.oracle, members.tax.id)):
            with reverts("ConsortiumRegistryNotDepartmentOperator", caller=caller.address, deptId=dept_id):
                consortium.registry.remove_account(caller, samr.oracle.address, Role.ORACLE)
        assert roles_of(consortium, samr.oracle.address) == {Role.ORACLE}


# ---------------------------------------------------------------------------------------------- setOracleUrl


class TestSetOracleUrl:
    def test_set_and_change(self, consortium: Consortium, members: Members) -> None:
        samr = members.samr
        result = consortium.registry.set_oracle_url(samr.operator, "https://samr.gov.example/oracle")
        assert logs(consortium, result) == [("OracleUrlChanged", {"deptId": samr.id, "url": "https://samr.gov.example/oracle"})]
        assert consortium.registry.department(samr.id).oracle_url == "https://samr.gov.example/oracle"
        assert consortium.registry.department(members.tax.id).oracle_url == ""
        result = consortium.registry.set_oracle_url(samr.operator, "")
        assert logs(consortium, result) == [("OracleUrlChanged", {"deptId": samr.id, "url": ""})]
        assert consortium.registry.department(samr.id).oracle_url == ""

    def test_max_length_accepted(self, consortium: Consortium, members: Members) -> None:
        url = "https://" + "a" * (MAX_URL - 8)
        assert view(consortium, "MAX_URL_LENGTH") == MAX_URL
        consortium.registry.set_oracle_url(members.samr.operator, url)
        assert consortium.registry.department(members.samr.id).oracle_url == url

    def test_too_long_refused(self, consortium: Consortium, members: Members) -> None:
        """Over 512 bytes is refused; the limit is in UTF-8 bytes: 171 three-byte characters are 513 bytes."""
        consortium.registry.set_oracle_url(members.samr.operator, "https://old")
        for url, length in (("h" * 513, 513), ("中" * 171, 513), ("x" * 2000, 2000)):
            with reverts("ConsortiumRegistryUrlTooLong", length=length, max=MAX_URL):
                consortium.registry.set_oracle_url(members.samr.operator, url)
        assert consortium.registry.department(members.samr.id).oracle_url == "https://old"

    def test_non_operator_refused(self, consortium: Consortium, committee, members: Members) -> None:
        samr = members.samr
        for caller, dept_id in ((samr.oracle, samr.id), (members.audit.auditor, members.audit.id), (members.outsider, 0), (committee[0], 0)):
            with reverts("ConsortiumRegistryNotDepartmentOperator", caller=caller.address, deptId=dept_id):
                consortium.registry.set_oracle_url(caller, "https://evil.example")
        assert all(d.oracle_url == "" for d in consortium.registry.departments())


# ---------------------------------------------------------------------------------------------- AccessControl


class TestDirectRoleChanges:
    @pytest.mark.parametrize("fn", ["grantRole", "revokeRole", "renounceRole"])
    def test_refused(self, consortium: Consortium, committee, members: Members, fn: str) -> None:
        """grantRole / revokeRole / renounceRole are disabled for every role and every caller, holders and
        the committee included: ConsortiumRegistryDirectRoleChange(account, role), and no role changes."""
        holders = {Role.COMMITTEE: committee[0], Role.OPERATOR: members.samr.operator,
                   Role.AUDITOR: members.audit.auditor, Role.ORACLE: members.samr.oracle}
        everyone = [*committee, members.samr.operator, members.samr.oracle, members.audit.auditor, members.outsider]
        before = {s.address: roles_of(consortium, s.address) for s in everyone}
        for role, holder in holders.items():
            target = members.outsider if fn == "grantRole" else holder
            for caller in (committee[0], committee[1], holder, members.outsider):
                account = caller.address if fn == "renounceRole" else target.address
                function = getattr(consortium.registry.contract.functions, fn)(role, account)
                with reverts("ConsortiumRegistryDirectRoleChange", account=account, role=role):
                    consortium.chain.transact(caller, function)
        assert {s.address: roles_of(consortium, s.address) for s in everyone} == before
        assert before[members.outsider.address] == set()
        assert before[committee[0].address] == {Role.COMMITTEE}

    def test_no_admin(self, consortium: Consortium, committee, members: Members) -> None:
        """Nobody holds DEFAULT_ADMIN_ROLE, and every role is administered by it."""
        assert view(consortium, "getRoleMemberCount", DEFAULT_ADMIN_ROLE) == 0
        for role in ALL_ROLES:
            assert bytes(view(consortium, "getRoleAdmin", role)) == DEFAULT_ADMIN_ROLE
        assert view(consortium, "COMMITTEE_ROLE") == Role.COMMITTEE
        assert view(consortium, "OPERATOR_ROLE") == Role.OPERATOR
        assert view(consortium, "AUDITOR_ROLE") == Role.AUDITOR
        assert view(consortium, "ORACLE_ROLE") == Role.ORACLE
        assert view(consortium, "VOTING_PERIOD") == VOTING_PERIOD
