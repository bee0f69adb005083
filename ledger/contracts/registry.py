"""The consortium registry: departments, accounts, roles, and committee governance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Sequence

from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address

from ledger.chain import TxResult
from ledger.contracts.base import ContractClient
from ledger.keys import Signer

#: ``ConsortiumRegistry.MIN_DECISION_AGE_BLOCKS`` and ``MAX_DECISION_AGE_BLOCKS``: the bounds of ``maxDecisionAgeBlocks``.
MIN_DECISION_AGE_BLOCKS, MAX_DECISION_AGE_BLOCKS = 8, 1_000_000

#: The ``maxDecisionAgeBlocks`` a deployment starts with unless told otherwise: room for an oracle
#: with the default batching limits (``batch_max_age_seconds`` 2, ``batch_max_in_flight`` 3, a
#: 120 s receipt timeout) on a chain with 2 s blocks (Besu QBFT's default period), which
#: :func:`decision_age_blocks_needed` puts at 126 blocks, with about a fifth more. Five minutes of
#: 2 s blocks: a revocation binds even a dishonest oracle of the owning department within that.
DEFAULT_MAX_DECISION_AGE_BLOCKS = 150

#: Seconds the oracle's batcher waits before it tries a failed step again (``oracle.batcher``).
ANCHOR_RETRY_SECONDS = 1.0


def decision_age_blocks_needed(*, block_seconds: float, batch_max_age_seconds: float, batch_max_in_flight: int,
                               receipt_timeout_seconds: float, head_poll_interval_seconds: float = 0.0,
                               retry_delay_seconds: float = ANCHOR_RETRY_SECONDS) -> int:
    """The most blocks an honest oracle's served record may lie between its decision and its
    anchoring, on a chain that makes a block every ``block_seconds`` at most, when one transaction
    is lost on the way: the head it decided at may be ``head_poll_interval_seconds`` old; its batch
    falls due after ``batch_max_age_seconds``; a batch ahead of it that never mines is given up after
    ``receipt_timeout_seconds``, then its own batch, sent again after ``retry_delay_seconds``, may
    take as long again; plus one block per batch in flight ahead of it and the block it is mined in.
    ``maxDecisionAgeBlocks`` must be at least this for the oracle to anchor what it serves."""
    if block_seconds <= 0:
        raise ValueError("block_seconds must be more than 0")
    seconds = head_poll_interval_seconds + batch_max_age_seconds + 2 * receipt_timeout_seconds + retry_delay_seconds
    return math.ceil(seconds / block_seconds) + max(1, batch_max_in_flight) + 1


class Role:
    """The registry's AccessControl roles (bytes32 ids, as in ConsortiumRegistry.sol)."""

    COMMITTEE = keccak(text="govshare.role.COMMITTEE")
    OPERATOR = keccak(text="govshare.role.OPERATOR")
    AUDITOR = keccak(text="govshare.role.AUDITOR")
    ORACLE = keccak(text="govshare.role.ORACLE")

    @classmethod
    def by_name(cls, name: str) -> bytes:
        try:
            return getattr(cls, name.upper())
        except AttributeError:
            raise ValueError(f"unknown role {name!r}: committee, operator, auditor or oracle") from None


class ProposalState(IntEnum):
    NONE = 0
    OPEN = 1
    EXECUTED = 2
    CANCELLED = 3
    EXPIRED = 4


def encode_code(code: str) -> bytes:
    """A department short code as bytes32 (UTF-8, at most 32 bytes)."""
    raw = code.encode()
    if not raw or len(raw) > 32:
        raise ValueError("a department code is 1 to 32 bytes")
    return raw.ljust(32, b"\x00")


def decode_code(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\x00").decode()


@dataclass(frozen=True)
class Department:
    id: int
    active: bool
    audit_office: bool
    code: str
    name: str
    oracle_url: str


@dataclass(frozen=True)
class Proposal:
    """A committee proposal: the call the registry makes to itself once enough members approved."""

    id: int
    proposer: ChecksumAddress
    created_at: int
    deadline: int
    executed: bool
    cancelled: bool
    data: bytes
    description: str


@dataclass(frozen=True)
class AccountRole:
    """One (account, role) binding when admitting a department."""

    account: ChecksumAddress
    role: bytes


class ConsortiumRegistryClient(ContractClient):
    """Typed access to ConsortiumRegistry."""

    # ------------------------------------------------------------ governance

    def propose(self, signer: Signer, call_data: bytes, description: str) -> int:
        result = self._transact(signer, "propose", call_data, description)
        return int(self.event(result, "ProposalCreated").args["proposalId"])

    def approve(self, signer: Signer, proposal_id: int) -> TxResult:
        return self._transact(signer, "approve", proposal_id)

    def execute(self, signer: Signer, proposal_id: int) -> TxResult:
        return self._transact(signer, "execute", proposal_id)

    def cancel(self, signer: Signer, proposal_id: int) -> TxResult:
        return self._transact(signer, "cancel", proposal_id)

    def proposal_state(self, proposal_id: int) -> ProposalState:
        return ProposalState(self._call("proposalState", proposal_id))

    def approvals(self, proposal_id: int) -> int:
        return int(self._call("approvals", proposal_id))

    def threshold(self) -> int:
        return int(self._call("threshold"))

    def proposal(self, proposal_id: int) -> Proposal:
        """A proposal by id (reverts ``GovernanceUnknownProposal`` if there is none)."""
        raw = self._call("proposal", proposal_id)
        return Proposal(
            id=proposal_id, proposer=to_checksum_address(raw[0]), created_at=int(raw[1]), deadline=int(raw[2]),
            executed=bool(raw[3]), cancelled=bool(raw[4]), data=bytes(raw[5]), description=raw[6],
        )

    def proposal_count(self) -> int:
        return int(self._call("proposalCount"))

    def has_approved(self, proposal_id: int, member: str) -> bool:
        return bool(self._call("hasApproved", proposal_id, to_checksum_address(member)))

    def committee(self) -> list[ChecksumAddress]:
        count = self._call("getRoleMemberCount", Role.COMMITTEE)
        return [to_checksum_address(self._call("getRoleMember", Role.COMMITTEE, i)) for i in range(count)]

    # call data for proposals
    def admit_department_call(
        self, name: str, code: str, accounts: Sequence[AccountRole], *, audit_office: bool = False
    ) -> bytes:
        return self._encode(
            "admitDepartment",
            name,
            encode_code(code),
            audit_office,
            [a.account for a in accounts],
            [a.role for a in accounts],
        )

    def remove_department_call(self, dept_id: int) -> bytes:
        return self._encode("removeDepartment", dept_id)

    def add_committee_member_call(self, account: str) -> bytes:
        return self._encode("addCommitteeMember", to_checksum_address(account))

    def remove_committee_member_call(self, account: str) -> bytes:
        return self._encode("removeCommitteeMember", to_checksum_address(account))

    def set_threshold_call(self, threshold: int) -> bytes:
        return self._encode("setThreshold", threshold)

    def set_max_decision_age_blocks_call(self, blocks: int) -> bytes:
        return self._encode("setMaxDecisionAgeBlocks", blocks)

    def _encode(self, fn: str, *args: object) -> bytes:
        return bytes.fromhex(self.contract.encode_abi(fn, args=list(args))[2:])

    def pass_proposal(self, members: Sequence[Signer], call_data: bytes, description: str) -> TxResult:
        """Propose with the first member, approve with the rest, execute with the first."""
        proposal_id = self.propose(members[0], call_data, description)
        for member in members[1:]:
            self.approve(member, proposal_id)
        return self.execute(members[0], proposal_id)

    # ------------------------------------------------------------ department self-service

    def add_account(self, signer: Signer, account: str, role: bytes) -> TxResult:
        return self._transact(signer, "addDepartmentAccount", to_checksum_address(account), role)

    def remove_account(self, signer: Signer, account: str, role: bytes) -> TxResult:
        return self._transact(signer, "removeDepartmentAccount", to_checksum_address(account), role)

    def set_oracle_url(self, signer: Signer, url: str) -> TxResult:
        return self._transact(signer, "setOracleUrl", url)

    # ------------------------------------------------------------ views

    def department(self, dept_id: int, *, block: int | str = "latest") -> Department:
        raw = self._call("department", dept_id, block=block)
        return Department(
            id=int(raw[0]), active=bool(raw[1]), audit_office=bool(raw[2]),
            code=decode_code(raw[3]), name=raw[4], oracle_url=raw[5],
        )

    def department_by_code(self, code: str) -> Department | None:
        dept_id = int(self._call("departmentIdByCode", encode_code(code)))
        return self.department(dept_id) if dept_id else None

    def department_count(self) -> int:
        return int(self._call("departmentCount"))

    def departments(self) -> list[Department]:
        return [self.department(i) for i in range(1, self.department_count() + 1)]

    def department_of(self, account: str, *, block: int | str = "latest") -> int:
        return int(self._call("departmentOf", to_checksum_address(account), block=block))

    def department_with_role(self, role: bytes, account: str, *, block: int | str = "latest") -> int:
        return int(self._call("departmentWithRole", role, to_checksum_address(account), block=block))

    def has_role(self, role: bytes, account: str, *, block: int | str = "latest") -> bool:
        return bool(self._call("hasRole", role, to_checksum_address(account), block=block))

    def max_decision_age_blocks(self, *, block: int | str = "latest") -> int:
        """How many blocks a served record's decision may lie before its anchoring block (the
        consortium's bound, which ``AuditLog.appendRecords`` enforces)."""
        return int(self._call("maxDecisionAgeBlocks", block=block))

    def department_accounts(self, dept_id: int) -> list[ChecksumAddress]:
        return [to_checksum_address(a) for a in self._call("departmentAccounts", dept_id)]
