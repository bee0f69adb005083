"""``govshare demo``: the ledger walk-through on an embedded local chain.

Starts ganache (state in a fresh data folder), deploys, and plays the consortium's life on chain:
admission by committee vote, dataset publication with content hash and Merkle root, a grant
requested, approved, checked and revoked, the oracle's audit records anchored, and the audit
trail verified from the chain alone. Every step checks what it claims; the exit code is 0 only if
all of them held. (The oracle relaying real queries joins this walk-through with the oracle issue.)
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from rich.console import Console
from rich.table import Table

from ledger.audit_log import AuditEntry, OracleReason, Outcome, verify_hash_chain
from ledger.catalog import Classification, UpdateFrequency
from ledger.chain import Chain
from ledger.compiler import compile_contracts
from ledger.deployment import Consortium, deploy_consortium
from ledger.devnet import GanacheNode, dev_accounts
from ledger.grants import AccessReason
from ledger.hashing import content_hash, new_salt, record_hash, salted_hash
from ledger.merkle import MerkleTree, verify_inclusion
from ledger.registry import AccountRole, Role
from oracle.sample_data import COMPANY_FIELDS, RESIDENT_FIELDS, companies, residents


class DemoFailed(Exception):
    """A demo step did not behave as stated."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


def run_demo(data_dir: Path, console: Console | None = None) -> bool:
    """Run the walk-through; True if every step behaved as stated."""
    console = console or Console()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    with console.status("starting the embedded chain (ganache)…"):
        node = GanacheNode(db_path=data_dir / "chain", log_dir=data_dir)
    try:
        _play(node, console)
    except DemoFailed as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        return False
    finally:
        node.stop()
    console.print("[bold green]every step behaved as stated[/]")
    return True


def _step(console: Console, number: int, title: str) -> None:
    console.rule(f"[bold]{number}. {title}")


def _table(console: Console, title: str, columns: list[str], rows: list[list[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console.print(table)


def _play(node: GanacheNode, console: Console) -> None:
    accounts = dev_accounts(16)  # dev keys from ganache's public mnemonic
    committee = accounts[0:3]
    chain = Chain(node.url)
    with console.status("compiling and deploying the contracts…"):
        deployment = deploy_consortium(chain, accounts[0], [m.address for m in committee], 2)
    consortium = Consortium(chain, deployment, compile_contracts())
    registry, catalog, grants, audit_log = consortium.registry, consortium.catalog, consortium.grants, consortium.audit_log
    _table(console, "contracts", ["contract", "address"], [[n, a] for n, a in deployment.addresses.items()])

    _step(console, 1, "the committee admits four departments by vote (2 of 3)")
    plan = [
        ("市场监督管理局 Market Supervision", "SAMR", accounts[3], accounts[4], None),
        ("税务局 Tax Bureau", "TAX", accounts[5], accounts[6], None),
        ("公安局 Public Security", "PSB", accounts[7], accounts[8], None),
        ("审计局 Audit Office", "AUDIT", accounts[9], accounts[10], accounts[11]),
    ]
    rows, depts = [], {}
    for name, code, operator, oracle, auditor in plan:
        roles = [AccountRole(operator.address, Role.OPERATOR), AccountRole(oracle.address, Role.ORACLE)]
        if auditor:
            roles.append(AccountRole(auditor.address, Role.AUDITOR))
        call = registry.admit_department_call(name, code, roles, audit_office=auditor is not None)
        proposal = registry.propose(committee[0], call, f"admit {code}")
        below = registry.department_by_code(code)
        _expect(below is None, f"{code} must not be admitted with one approval")
        registry.approve(committee[1], proposal)
        result = registry.execute(committee[0], proposal)
        dept = registry.department_by_code(code)
        _expect(dept is not None and dept.active, f"{code} admitted")
        depts[code] = (dept.id, operator, oracle)
        rows.append([dept.id, code, name, registry.approvals(proposal), result.block_number])
    _table(console, "admitted", ["id", "code", "name", "approvals", "block"], rows)

    _step(console, 2, "departments publish their registries (content hash and Merkle root on chain)")
    samr_id, samr_op, samr_oracle = depts["SAMR"]
    tax_id, tax_op, _ = depts["TAX"]
    psb_id, psb_op, _ = depts["PSB"]
    company_rows, resident_rows = companies(), residents()
    published = {}
    rows = []
    for owner, name, fields, records, level in (
        (samr_op, "企业登记信息 Company registry", COMPANY_FIELDS, company_rows, Classification.INTERNAL),
        (psb_op, "常住人口信息 Resident registry", RESIDENT_FIELDS, resident_rows, Classification.SENSITIVE),
    ):
        started = time.perf_counter()
        hashes = [record_hash(r) for r in records]
        tree = MerkleTree(hashes)
        digest = content_hash(records)
        dataset_id = catalog.register(owner, name, fields, level, UpdateFrequency.DAILY)
        version = catalog.publish_version(owner, dataset_id, digest, tree.root, len(records))
        published[dataset_id] = (tree, hashes)
        on_chain = catalog.version(dataset_id, version)
        _expect(on_chain.merkle_root == tree.root and on_chain.content_hash == digest, "published commitments")
        proof = tree.proof(42)
        verify_inclusion(hashes[42], proof, tree.root)
        _expect(catalog.verify_record(dataset_id, version, hashes[42], proof), "record 42 proven on chain")
        rows.append([dataset_id, name, level.name.lower(), len(records), "0x" + digest.hex()[:16] + "…",
                     "0x" + tree.root.hex()[:16] + "…", f"{time.perf_counter() - started:.2f}s"])
    _table(console, "published (record 42 of each proven on chain with OpenZeppelin MerkleProof)",
           ["dataset", "name", "level", "records", "content hash", "merkle root", "took"], rows)
    companies_id = 1

    _step(console, 3, "tax asks market supervision for four fields; approved for 30 days, quota 1000")
    dataset = catalog.dataset(companies_id)
    wanted = dataset.field_mask(["company_id", "name", "registration_date", "status"])
    grant_id = grants.request(tax_op, companies_id, wanted, "tax registration of new companies", 30 * 86400, 1000)
    grants.approve(samr_op, grant_id, wanted, 30 * 86400, 1000)
    check = grants.check_access(tax_op.address, tax_id, companies_id, wanted, grant_id)
    _expect(check.granted, "tax may read the granted fields")
    outside = grants.check_access(tax_op.address, tax_id, companies_id, dataset.field_mask(["legal_representative"]), grant_id)
    _expect(outside.reason is AccessReason.FIELDS_NOT_GRANTED, "a field outside the grant is refused")
    grant = grants.grant(grant_id)
    _table(console, "grant", ["grant", "fields", "expires", "quota", "check (granted fields)", "check (legal_representative)"],
           [[grant_id, ", ".join(dataset.field_names(grant.fields)), time.strftime("%Y-%m-%d", time.gmtime(grant.expires_at)),
             grant.quota, check.reason.name, outside.reason.name]])

    _step(console, 4, "market supervision's oracle anchors the accesses it served (salted hashes only)")
    entries = []
    for index in (7, 99, 1234):
        query = {"dataset": companies_id, "fields": list(dataset.field_names(wanted)), "company_id": company_rows[index]["company_id"]}
        answer = {k: company_rows[index][k] for k in dataset.field_names(wanted)}
        entries.append(AuditEntry(grant_id, tax_op.address, companies_id, check.version, Outcome.SERVED, 0,
                                  check.block_number, salted_hash(query, new_salt()), salted_hash(answer, new_salt())))
    appended = audit_log.append(samr_oracle, 1, entries)
    _expect(grants.grant(grant_id).used == 3, "three served records counted against the quota")
    _table(console, "anchored", ["sequence", "record id", "outcome", "request hash", "gas"],
           [[r.sequence, f"{r.oracle[:10]}…:{r.sequence}", r.entry.outcome.name, "0x" + r.entry.request_hash.hex()[:16] + "…",
             appended.gas_used // len(entries)] for r in appended.records])

    _step(console, 5, "market supervision revokes; tax's next access is denied, and the denial is on chain")
    revoked = grants.revoke(samr_op, grant_id, "purpose fulfilled")
    after = grants.check_access(tax_op.address, tax_id, companies_id, wanted, grant_id)
    before = grants.check_access(tax_op.address, tax_id, companies_id, wanted, grant_id, block=revoked.block_number - 1)
    _expect(after.reason is AccessReason.REVOKED and before.granted, "revocation takes effect in its own block")
    denial = AuditEntry(grant_id, tax_op.address, companies_id, 0, Outcome.DENIED, int(after.reason), after.block_number,
                        salted_hash({"dataset": companies_id, "company_id": company_rows[5]["company_id"]}, new_salt()), b"\x00" * 32)
    audit_log.append(samr_oracle, 4, [denial])
    unknown = AuditEntry(0, tax_op.address, 0, 0, Outcome.DENIED, int(OracleReason.UNKNOWN_DATASET), after.block_number,
                         salted_hash({"dataset": 999}, new_salt()), b"\x00" * 32)
    audit_log.append(samr_oracle, 5, [unknown])
    _table(console, "after revocation", ["block", "check before revoke block", "check now", "denials anchored"],
           [[revoked.block_number, before.reason.name, after.reason.name, 2]])

    _step(console, 6, "the audit office verifies the trail from the chain alone")
    records = list(audit_log.records())
    state = audit_log.oracle_state(samr_oracle.address)
    verify_hash_chain(records, state.head)
    served = [r for r in records if r.entry.outcome is Outcome.SERVED]
    for record in served:  # replay each served decision at the block it was checked at
        replay = grants.check_access(record.entry.requester, tax_id, record.entry.dataset_id, wanted,
                                     record.entry.grant_id, block=record.entry.checked_at_block)
        _expect(replay.granted, f"served record {record.sequence} was permitted at its block")
    _expect(state.last_sequence == len(records) == 5, "no record missing")
    _table(console, "audit summary", ["oracle", "records", "served", "denied", "sequence", "hash chain", "replayed decisions"],
           [[samr_oracle.address[:10] + "…", len(records), len(served), len(records) - len(served),
             f"1..{state.last_sequence} contiguous", "matches contract head", f"{len(served)}/{len(served)} permitted"]])


