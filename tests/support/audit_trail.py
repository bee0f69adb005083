"""An audit trail on a real chain for the index and verification tests: two published datasets,
grants, and records appended by the departments' oracles through ``AuditLog.appendRecords`` (the
way the oracle's batcher anchors them), plus the malicious helpers the tamper tests need.

Malicious helpers on purpose: ``set_oracle_last_sequence``, ``set_oracle_head`` and
``make_secret_oracle`` rewrite contract storage with ganache's ``evm_setAccountStorageAt``. The
contracts make a gap in an oracle's sequence and a record by an account without the ORACLE role
impossible (the tests show them refusing); these helpers stand for a node or state compromised below
the contracts, which is what the verifier must still catch. Nothing in ``ledger/`` uses them.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak, to_checksum_address

from devtools.devnet import GanacheNode
from ledger.contracts.audit_log import ZERO_HASH, AppendResult, AuditEntry, OracleReason, Outcome
from ledger.contracts.catalog import Classification
from ledger.contracts.grants import AccessReason
from ledger.contracts.registry import Role
from ledger.dataset_file import DatasetFile, commit_records
from ledger.deployment import Consortium
from ledger.keys import Signer
from tests.conftest import Members

DAY = 86_400
COMPANY_FIELDS = ("credit_code", "name", "legal_rep", "capital", "status")
RESIDENT_FIELDS = ("id_number", "name", "address")
QUOTA = 6


def company_rows(count: int = 8) -> list[dict[str, str]]:
    return [{"credit_code": f"91110000{i:010d}", "name": f"公司 {i}", "legal_rep": f"法人 {i}",
             "capital": f"{(i + 1) * 1000}.00", "status": "active" if i % 3 else "closed"} for i in range(count)]


def resident_rows(count: int = 5) -> list[dict[str, str]]:
    return [{"id_number": f"11010519900101{i:04d}", "name": f"居民 {i}", "address": f"北京市 {i} 号"} for i in range(count)]


@dataclass
class Trail:
    """SAMR's company dataset and PSB's resident dataset, one version each; TAX holds a grant on each."""

    consortium: Consortium
    members: Members
    companies: int
    residents: int
    company_file: DatasetFile
    resident_file: DatasetFile
    grant: int  # TAX on companies, quota QUOTA
    resident_grant: int  # TAX on residents
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    sequences: dict[str, int] = field(default_factory=dict)

    @property
    def log(self) -> Any:
        return self.consortium.audit_log

    def head_block(self) -> int:
        return self.consortium.chain.block_number()

    def entry(self, outcome: Outcome = Outcome.SERVED, *, grant: int | None = None, dataset: int | None = None,
              requester: str | None = None, version: int = 1, reason: int | None = None,
              checked: int | None = None) -> AuditEntry:
        """An entry as an honest oracle writes it (decided at the current head unless ``checked``)."""
        if reason is None:
            reason = {Outcome.SERVED: AccessReason.GRANTED, Outcome.DENIED: AccessReason.FIELDS_NOT_GRANTED,
                      Outcome.SOURCE_FAILURE: OracleReason.SOURCE_TIMEOUT}[outcome]
        return AuditEntry(
            grant_id=self.grant if grant is None else grant,
            requester=to_checksum_address(requester or self.members.tax.operator.address),
            dataset_id=self.companies if dataset is None else dataset,
            dataset_version=version,
            outcome=outcome,
            reason=int(reason),
            checked_at_block=self.head_block() if checked is None else checked,
            request_hash=self.rng.randbytes(32),
            response_hash=self.rng.randbytes(32) if outcome is Outcome.SERVED else ZERO_HASH,
        )

    def resident_entry(self, outcome: Outcome = Outcome.SERVED, **kw: Any) -> AuditEntry:
        return self.entry(outcome, grant=self.resident_grant, dataset=self.residents, **kw)

    def append(self, signer: Signer, entries: list[AuditEntry], *, first: int | None = None) -> AppendResult:
        """Append ``entries`` as ``signer``'s next records (or from ``first``)."""
        oracle = signer.address
        if first is None:
            first = self.log.oracle_state(oracle).last_sequence + 1
        result = self.log.append(signer, first, entries)
        self.sequences[oracle] = first + len(entries) - 1
        return result

    def honest_history(self) -> list[AppendResult]:
        """Six batches by two oracles: served, denied and source failures, within every grant's quota."""
        samr, psb = self.members.samr.oracle, self.members.psb.oracle
        results = [
            self.append(samr, [self.entry(), self.entry(Outcome.DENIED), self.entry()]),
            self.append(psb, [self.resident_entry(), self.resident_entry(Outcome.SOURCE_FAILURE)]),
            self.append(samr, [self.entry(Outcome.DENIED, grant=0, dataset=0, reason=OracleReason.BAD_SIGNATURE,
                                          requester="0x" + "00" * 20), self.entry()]),
            self.append(psb, [self.resident_entry(Outcome.DENIED, reason=AccessReason.QUOTA_EXHAUSTED)]),
            self.append(samr, [self.entry(Outcome.SOURCE_FAILURE), self.entry()]),
            self.append(psb, [self.resident_entry()]),
        ]
        return results


def publish(consortium: Consortium, operator: Signer, name: str, fields: tuple[str, ...], rows: list[dict],
            level: Classification = Classification.INTERNAL) -> tuple[int, DatasetFile]:
    data = commit_records(rows)
    dataset = consortium.catalog.register(operator, name, fields, level)
    consortium.catalog.publish_version(operator, dataset, data.content_hash, data.merkle_root, data.record_count)
    return dataset, data


def active_grant(consortium: Consortium, requester: Signer, owner: Signer, dataset: int, *, quota: int = QUOTA,
                 duration: int = 30 * DAY) -> int:
    fields = (1 << len(consortium.catalog.dataset(dataset).fields)) - 1
    grant = consortium.grants.request(requester, dataset, fields, "tax assessment", duration, quota)
    consortium.grants.approve(owner, grant, fields, duration, quota)
    return grant


def build_trail(consortium: Consortium, members: Members) -> Trail:
    companies, company_file = publish(consortium, members.samr.operator, "企业登记 companies", COMPANY_FIELDS, company_rows())
    residents, resident_file = publish(consortium, members.psb.operator, "常住人口 residents", RESIDENT_FIELDS,
                                       resident_rows(), Classification.SENSITIVE)
    grant = active_grant(consortium, members.tax.operator, members.samr.operator, companies)
    resident_grant = active_grant(consortium, members.tax.operator, members.psb.operator, residents)
    return Trail(consortium, members, companies, residents, company_file, resident_file, grant, resident_grant)


# --------------------------------------------------------------------------- storage rewrites (malicious)


def _word(value: int | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.to_bytes(32, "big")


def mapping_slot(key: int | bytes | str, slot: int) -> int:
    """The storage slot of ``mapping[key]`` for a mapping declared at ``slot``."""
    if isinstance(key, str):
        key = int(key, 16)
    return int.from_bytes(keccak(_word(key) + _word(slot)), "big")


def read_slot(consortium: Consortium, address: str, slot: int) -> int:
    return int.from_bytes(bytes(consortium.chain.w3.eth.get_storage_at(address, slot)), "big")


def write_slot(ganache: GanacheNode, address: str, slot: int, value: int | bytes) -> None:
    ganache.rpc("evm_setAccountStorageAt", [address, "0x" + _word(slot).hex(), "0x" + _word(value).hex()])


def _oracle_slot(consortium: Consortium, oracle: str) -> int:
    return mapping_slot(oracle, 0)  # AuditLog's only storage variable: mapping(address => OracleState) s_oracles


def set_oracle_last_sequence(ganache: GanacheNode, consortium: Consortium, oracle: str, last: int) -> None:
    """Overwrite the oracle's last sequence in AuditLog's storage (keeping its department and head)."""
    slot = _oracle_slot(consortium, oracle)
    word = read_slot(consortium, consortium.audit_log.address, slot)
    write_slot(ganache, consortium.audit_log.address, slot, (word & ~((1 << 64) - 1)) | last)
    assert consortium.audit_log.oracle_state(oracle).last_sequence == last


def set_oracle_head(ganache: GanacheNode, consortium: Consortium, oracle: str, head: bytes) -> None:
    write_slot(ganache, consortium.audit_log.address, _oracle_slot(consortium, oracle) + 1, head)
    assert consortium.audit_log.oracle_state(oracle).head == head


def make_secret_oracle(ganache: GanacheNode, consortium: Consortium, account: str, dept_id: int, known_oracle: str) -> None:
    """Give ``account`` the ORACLE role of ``dept_id`` by rewriting the registry's storage, with no event.

    The slots of AccessControl's role mapping and of the registry's account -> department mapping are
    found by probing with an account known to hold both (``known_oracle``)."""
    registry = consortium.registry.address
    roles_slot = next(s for s in range(64) if read_slot(
        consortium, registry, mapping_slot(known_oracle, mapping_slot(Role.ORACLE, s))) == 1)
    dept_slot = next(s for s in range(64) if s != roles_slot and read_slot(
        consortium, registry, mapping_slot(known_oracle, s)) == dept_id)
    write_slot(ganache, registry, mapping_slot(account, mapping_slot(Role.ORACLE, roles_slot)), 1)
    write_slot(ganache, registry, mapping_slot(account, dept_slot), dept_id)
    assert consortium.registry.department_with_role(Role.ORACLE, account) == dept_id


def random_hash() -> bytes:
    return os.urandom(32)
