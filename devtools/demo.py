"""``govshare demo``: the ledger walk-through on an embedded local chain.

Starts ganache (state in a fresh data folder), deploys, and plays the consortium's life: admission
by committee vote; two departments publish registries (content hash and Merkle root on chain) and
run their sample APIs behind real oracles over HTTP; tax requests and gets grants, queries through
the oracles (exactly the granted fields, an id number masked, a signed receipt), is refused after a
revocation; every access is anchored; the audit office verifies the trail from the chain alone.
Every step checks what it claims; the exit code is 0 only if all of them held.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.table import Table
from rich.text import Text

from auditing.index import AuditIndex
from auditing.verification import DataFileCheck, RecordProofCheck, verify_audit_trail
from devtools.devnet import GanacheNode, dev_accounts, free_port
from devtools.sample_apis import company_registry_app, resident_registry_app
from devtools.sample_consortium import SAMPLE_DEPARTMENTS
from devtools.sample_data import COMPANY_FIELDS, RESIDENT_FIELDS, companies, residents
from ledger.chain import Chain
from ledger.compiler import compile_contracts
from ledger.contracts.audit_log import Outcome
from ledger.contracts.catalog import Classification, UpdateFrequency
from ledger.contracts.grants import AccessReason
from ledger.contracts.registry import AccountRole, Role
from ledger.deployment import Consortium, deploy_consortium
from ledger.hashing import content_hash, record_hash
from ledger.merkle import MerkleTree, verify_inclusion
from oracle.config import DatasetConfig, OracleConfig
from oracle.export import export_outbox
from oracle.main import build_oracle
from oracle.masking import MaskRule
from requester.client import OracleClient, QueryRefused
from serving import ServerThread


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
        with ExitStack() as stack:
            _play(node, console, stack, data_dir)
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


TAX_FIELDS = ("company_id", "name", "registration_date", "status")


@contextmanager
def _serving(server: ServerThread) -> Iterator[ServerThread]:
    """A server thread started, and stopped on leaving: a department API, or an oracle (served as
    ``govshare oracle serve`` serves it)."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _play(node: GanacheNode, console: Console, stack: ExitStack, data_dir: Path) -> None:
    accounts = dev_accounts(16)  # dev keys from ganache's public mnemonic
    committee = accounts[0:3]
    chain = Chain(node.url)
    with console.status("compiling and deploying the contracts…"):
        deployment = deploy_consortium(chain, accounts[0], [m.address for m in committee], 2)
    consortium = Consortium(chain, deployment, compile_contracts())
    registry, catalog, grants, audit_log = consortium.registry, consortium.catalog, consortium.grants, consortium.audit_log
    _table(console, "contracts", ["contract", "address"], [[n, a] for n, a in deployment.addresses.items()])

    _step(console, 1, "the committee admits four departments by vote (2 of 3)")
    plan = [(d.name, d.code, accounts[d.operator], accounts[d.oracle], None if d.auditor is None else accounts[d.auditor])
            for d in SAMPLE_DEPARTMENTS]
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
    psb_id, psb_op, psb_oracle = depts["PSB"]
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
        published[name] = dataset_id
        on_chain = catalog.version(dataset_id, version)
        _expect(on_chain.merkle_root == tree.root and on_chain.content_hash == digest, "published commitments")
        proof = tree.proof(42)
        verify_inclusion(hashes[42], proof, tree.root)
        _expect(catalog.verify_record(dataset_id, version, hashes[42], proof), "record 42 proven on chain")
        rows.append([dataset_id, name, level.name.lower(), len(records), "0x" + digest.hex()[:16] + "…",
                     "0x" + tree.root.hex()[:16] + "…", f"{time.perf_counter() - started:.2f}s"])
    _table(console, "published (record 42 of each proven on chain with OpenZeppelin MerkleProof)",
           ["dataset", "name", "level", "records", "content hash", "merkle root", "took"], rows)
    companies_id, residents_id = published["企业登记信息 Company registry"], published["常住人口信息 Resident registry"]

    with console.status("starting the departments' APIs and their oracles…"):
        oracles = []
        for code, operator, oracle_signer, dataset_id, app, path, params in (
            ("SAMR", samr_op, samr_oracle, companies_id, company_registry_app(), "/companies", ("company_id", "status")),
            ("PSB", psb_op, psb_oracle, residents_id, resident_registry_app(), "/residents", ("id_number",)),
        ):
            api = stack.enter_context(_serving(ServerThread(app, free_port())))
            config = OracleConfig(
                source=data_dir / f"{code}.toml", rpc_url=node.url, department=code, key_file=data_dir / "unused",
                outbox=data_dir / f"{code}-outbox.sqlite", batch_max_age_seconds=0.5,
                batch_stuck_after_seconds=2.0,  # ganache mines at once: 2 s unmined is a stranded transaction
                datasets={dataset_id: DatasetConfig(id=dataset_id, base_url=api.url, path=path, params=params)},
                masking={Classification.SENSITIVE: {"id_number": MaskRule.parse("keep:6:4"), "address": MaskRule.parse("keep:3:0")}},
            )
            running = build_oracle(config, signer=oracle_signer, consortium=consortium)
            stack.callback(running.close)
            server = stack.enter_context(_serving(ServerThread(running.app, free_port())))
            registry.set_oracle_url(operator, server.url)
            oracles.append(running)

    _step(console, 3, "tax asks market supervision for four fields; approved for 30 days, quota 1000; tax queries")
    dataset = catalog.dataset(companies_id)
    wanted = dataset.field_mask(TAX_FIELDS)
    grant_id = grants.request(tax_op, companies_id, wanted, "tax registration of new companies", 30 * 86400, 1000)
    grants.approve(samr_op, grant_id, wanted, 30 * 86400, 1000)
    grant = grants.grant(grant_id)
    samr_url = registry.department(samr_id).oracle_url  # requesters find the oracle in the registry
    samr_client = OracleClient(samr_url, chain.chain_id, deployment.addresses["QueryRequests"], oracle_address=samr_oracle.address)
    target = company_rows[1234]
    result = samr_client.query(tax_op, tax_id, companies_id, grant_id, wanted, {"company_id": target["company_id"]})
    _expect(result.records == [{k: target[k] for k in TAX_FIELDS}], "tax gets exactly the granted fields")
    try:
        samr_client.query(tax_op, tax_id, companies_id, grant_id, dataset.field_mask(["legal_representative"]),
                          {"company_id": target["company_id"]})
        _expect(False, "a field outside the grant must be refused")
    except QueryRefused as refused:
        _expect(refused.reason == "FIELDS_NOT_GRANTED", "a field outside the grant is refused")
    _table(console, f"grant {grant_id} (expires {time.strftime('%Y-%m-%d', time.gmtime(grant.expires_at))}, quota {grant.quota}); "
           f"tax's query through {samr_url}", list(result.records[0]), [list(result.records[0].values())])
    _receipt_table(console, result.receipt)

    _step(console, 4, "tax asks public security for residents; granted with the id number masked")
    residents_ds = catalog.dataset(residents_id)
    resident_fields = residents_ds.field_mask(["id_number", "name", "address"])
    resident_grant = grants.request(tax_op, residents_id, resident_fields, "verify taxpayers' identity", 7 * 86400, 100)
    grants.approve(psb_op, resident_grant, resident_fields, 7 * 86400, 100)
    psb_client = OracleClient(registry.department(psb_id).oracle_url, chain.chain_id, deployment.addresses["QueryRequests"],
                              oracle_address=psb_oracle.address)
    person = resident_rows[42]
    masked = psb_client.query(tax_op, tax_id, residents_id, resident_grant, resident_fields, {"id_number": person["id_number"]})
    shown = masked.records[0]["id_number"]
    _expect(shown == person["id_number"][:6] + "*" * 8 + person["id_number"][-4:], "the id number is masked (first 6, last 4)")
    _table(console, "tax's query to public security (sensitive: masked by the department's policy)",
           ["id_number (source)", "id_number (served)", "name", "address (served)"],
           [[person["id_number"], shown, masked.records[0]["name"], masked.records[0]["address"]]])

    _step(console, 5, "market supervision revokes; tax's next query is denied, and the denial is on chain")
    revoked = grants.revoke(samr_op, grant_id, "purpose fulfilled")
    try:
        samr_client.query(tax_op, tax_id, companies_id, grant_id, wanted, {"company_id": company_rows[5]["company_id"]})
        _expect(False, "a query under a revoked grant must be refused")
    except QueryRefused as refused:
        _expect(refused.status == 403 and refused.reason == "REVOKED", "the query after revocation is refused")
        denial_id = int(refused.receipt["record_id"], 16)
    with console.status("waiting for the oracles to anchor their records…"):
        for oracle in oracles:
            _expect(_wait(lambda o=oracle: o.outbox.pending_count() == 0, 30), "every record anchored")
    anchored = {r.record_id: r for r in audit_log.records()}
    _expect(denial_id in anchored and anchored[denial_id].entry.reason == AccessReason.REVOKED, "the denial is on chain")
    _table(console, "after revocation", ["revoked in block", "next query", "its record on chain"],
           [[revoked.block_number, "403 REVOKED", f"sequence {anchored[denial_id].sequence}, block {anchored[denial_id].block_number}"]])

    _step(console, 6, "the audit office verifies the trail from the chain alone")
    index = AuditIndex(data_dir / "audit-index.sqlite")  # the auditor's own index, fed from chain events
    index.sync(consortium)
    exports = []
    for running in oracles:  # each oracle's local log, to be matched record for record
        exports.append(export_outbox(running.config.outbox, data_dir / f"{running.config.department}-log.jsonl").path)
    registry_file = data_dir / "company-registry.jsonl"  # market supervision's data as it hands it to the auditor
    registry_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in company_rows), encoding="utf-8")
    hashes = [record_hash(r) for r in company_rows]
    proof = RecordProofCheck(companies_id, 1, hashes[1234], tuple(MerkleTree(hashes).proof(1234)), "company 1234")
    report = verify_audit_trail(index, consortium, oracle_exports=exports,
                                data_files=[DataFileCheck(companies_id, 1, registry_file)], record_proofs=[proof])
    console.print(Text(report.summary()))
    served = sum(1 for r in audit_log.records() if r.entry.outcome is Outcome.SERVED)
    _expect(report.ok, "the audit trail verifies: " + "; ".join(v.message for v in report.violations[:3]))
    _expect(report.check("authorisation").checked == served >= 2, "every served record's decision was replayed")
    _expect(report.check("oracle_export").checked == report.scope.records, "both oracles' logs match the chain")
    _expect(report.check("data_file").passed == 1 and report.check("record_proof").passed == 1,
            "the registry file and a record of it match the published version")
    receipt_record = index.record(result.receipt["record_id"])
    _expect(receipt_record is not None and "0x" + receipt_record.response_hash.hex() == result.receipt["response_hash"],
            "tax's receipt matches the chain")
    index.close()


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _receipt_table(console: Console, receipt: dict) -> None:
    _table(console, "receipt (signed by the oracle; its record goes on chain)", ["record", "sequence", "checked at block", "request hash", "response hash"],
           [[receipt["record_id"][:12] + "…", receipt["sequence"], receipt["checked_at_block"],
             receipt["request_hash"][:18] + "…", receipt["response_hash"][:18] + "…"]])
