"""The auditors' index on a real chain: every record and event indexed as the chain has it, searches
and pages, grants and departments as of the cursor, daily counts, resuming (after a range, after a
killed process), and refusing another deployment or a chain that changed under it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditing.index import AuditIndex, AuditIndexError, AuditQueryError, position
from ledger.chain import Chain
from ledger.contracts.audit_log import Outcome
from ledger.contracts.grants import AccessGrant
from ledger.deployment import Consortium
from tests.conftest import Members
from tests.support.audit_trail import QUOTA, Trail, build_trail

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def trail(consortium: Consortium, members: Members) -> Trail:
    trail = build_trail(consortium, members)
    trail.honest_history()
    return trail


@dataclass
class Synced:
    """A trail indexed once for the tests that only read the index (they never touch the chain, which
    the next test's ``consortium`` fixture reverts): the honest history, then PSB revokes TAX's
    resident grant and PSB requests (and has not yet got) a grant on SAMR's companies."""

    trail: Trail
    index: AuditIndex
    pending_grant: int
    company_grant_on_chain: AccessGrant


@pytest.fixture(scope="module")
def synced(ganache, template, compilation, tmp_path_factory: pytest.TempPathFactory) -> Synced:
    assert ganache.rpc("evm_revert", [template.snapshot]) is True  # as the consortium fixture does
    template.snapshot = str(ganache.rpc("evm_snapshot"))
    consortium = Consortium(Chain(ganache.url), template.populated, compilation)
    members = template.members
    trail = build_trail(consortium, members)
    trail.honest_history()
    consortium.grants.revoke(members.psb.operator, trail.resident_grant, "purpose fulfilled")
    pending = consortium.grants.request(members.psb.operator, trail.companies, 1, "checks", 86_400, 3)
    index = AuditIndex(tmp_path_factory.mktemp("synced") / "index.sqlite")
    index.sync(consortium)
    return Synced(trail, index, pending, consortium.grants.grant(trail.grant))


def dump(index: AuditIndex) -> dict[str, list[tuple]]:
    """Every table's rows, to compare two indexes (not the cursor, nor the blocks table: which block
    headers are kept depends on where the ranges ended)."""
    tables = ["records", "batches", "grant_events", "grants", "registry_events", "departments", "accounts", "datasets",
              "dataset_versions", "daily"]
    return {t: sorted(index.raw(f"SELECT * FROM {t}"), key=repr) for t in tables}


def test_sync_indexes_every_record_as_the_chain_has_it(tmp_path: Path, trail: Trail) -> None:
    consortium, members = trail.consortium, trail.members
    index = AuditIndex(tmp_path / "index.sqlite")
    result = index.sync(consortium)
    on_chain = list(consortium.audit_log.records())
    assert result.records == len(on_chain) == 11
    assert result.to_block == index.cursor == consortium.chain.block_number()
    assert result.grant_events == len(index.grant_history())
    page = index.search(limit=1000)
    assert page.total == 11 and page.next_cursor is None
    indexed = {r.record_id: r for r in page.records}
    oracle_dept = {members.samr.oracle.address: members.samr.id, members.psb.oracle.address: members.psb.id}
    for record in on_chain:
        mine = indexed[record.record_id]
        e = record.entry
        assert (mine.oracle, mine.sequence, mine.block_number, mine.tx_hash, mine.log_index) == (
            record.oracle, record.sequence, record.block_number, record.tx_hash, record.log_index)
        assert (mine.requester, mine.dataset_id, mine.dataset_version, mine.grant_id, mine.outcome, mine.reason,
                mine.checked_at_block, mine.request_hash, mine.response_hash) == (
            e.requester, e.dataset_id, e.dataset_version, e.grant_id, e.outcome, e.reason, e.checked_at_block,
            e.request_hash, e.response_hash)
        assert mine.oracle_dept == mine.provider_dept == oracle_dept[record.oracle]
        assert mine.requester_dept == (members.tax.id if e.requester == members.tax.operator.address else 0)
        assert mine.block_time == consortium.chain.block_timestamp(record.block_number)
        grant = {trail.grant: consortium.grants.grant(trail.grant).fields,
                 trail.resident_grant: consortium.grants.grant(trail.resident_grant).fields}.get(e.grant_id)
        assert mine.field_mask == grant
        assert index.record(record.record_id) == mine == index.record(hex(record.record_id))
    assert [r.block_number for r in page.records] == sorted((r.block_number for r in on_chain), reverse=True)
    assert index.record(on_chain[0].record_id + 1000) is None
    status = index.status()
    assert (status.records, status.oracles, status.cursor, status.chain_id) == (11, 2, index.cursor, consortium.chain.chain_id)
    assert status.addresses["AuditLog"] == consortium.audit_log.address
    json_ready = page.records[0].to_dict()
    assert json_ready["record_id"].startswith("0x") and json_ready["outcome"] in ("served", "denied", "source_failure")


def test_search_filters_combine_and_pages_cover_every_match_once(synced: Synced) -> None:
    trail, index = synced.trail, synced.index
    members = trail.members
    everything = index.search(limit=1000).records

    def ids(records) -> set[int]:
        return {r.record_id for r in records}

    def matching(predicate) -> set[int]:
        return {r.record_id for r in everything if predicate(r)}

    assert ids(index.search(dataset_id=trail.companies, limit=1000).records) == matching(lambda r: r.dataset_id == trail.companies)
    assert ids(index.search(provider_dept="PSB", limit=1000).records) == matching(lambda r: r.oracle_dept == members.psb.id)
    assert ids(index.search(provider_dept=members.psb.id).records) == ids(index.search(provider_dept="psb").records)
    assert ids(index.search(requester_dept="TAX", outcome="served", limit=1000).records) == matching(
        lambda r: r.requester_dept == members.tax.id and r.outcome is Outcome.SERVED)
    assert len(matching(lambda r: r.outcome is Outcome.SERVED)) == 6
    assert ids(index.search(grant_id=trail.resident_grant, outcome=Outcome.DENIED).records) == matching(
        lambda r: r.grant_id == trail.resident_grant and r.outcome is Outcome.DENIED)
    assert ids(index.search(oracle=members.samr.oracle.address.lower()).records) == matching(
        lambda r: r.oracle == members.samr.oracle.address)
    assert index.search(requester="0x" + "00" * 20).total == 1
    middle = sorted(r.block_time for r in everything)[5]
    assert ids(index.search(since=middle, limit=1000).records) == matching(lambda r: r.block_time >= middle)
    assert ids(index.search(until=middle, limit=1000).records) == matching(lambda r: r.block_time < middle)
    assert index.search(dataset_id=trail.companies, provider_dept="PSB").total == 0

    pages, cursor = [], None
    while True:
        page = index.search(limit=4, cursor=cursor)
        pages.append([r.record_id for r in page.records])
        assert page.total == 11
        cursor = page.next_cursor
        if cursor is None:
            break
    keyset = [rid for p in pages for rid in p]
    assert [len(p) for p in pages] == [4, 4, 3]
    assert keyset == [r.record_id for r in everything]
    offsets = [r.record_id for start in (0, 4, 8) for r in index.search(limit=4, offset=start).records]
    assert offsets == keyset


BAD_FILTERS = [
    ({"requester_dept": "NOPE"}, "no department with code 'NOPE'"),
    ({"limit": 0}, "limit must be 1..1000"),
    ({"limit": 1001}, "limit must be 1..1000"),
    ({"cursor": "yesterday"}, "not a cursor"),
    ({"cursor": "1:2", "offset": 3}, "either cursor or offset"),
    ({"offset": -1}, "offset must not be negative"),
    ({"outcome": "maybe"}, "outcome must be served, denied or source_failure"),
    ({"requester": "0x1234"}, "requester is not an address"),
    ({"dataset_id": -1}, "dataset_id out of range"),
    ({"grant_id": "twelve"}, "grant_id must be an integer"),
]


def test_bad_search_filters_are_refused_with_a_clear_error(synced: Synced) -> None:
    for filters, message in BAD_FILTERS:
        with pytest.raises(AuditQueryError, match=message):
            synced.index.search(**filters)
    with pytest.raises(AuditQueryError, match="record_id out of range"):
        synced.index.record(-5)


def test_grants_departments_datasets_and_daily_counts(synced: Synced) -> None:
    trail, index, pending, on_chain = synced.trail, synced.index, synced.pending_grant, synced.company_grant_on_chain
    members = trail.members
    grants = {g.id: g for g in index.grants()}
    company = grants[trail.grant]
    assert (company.status, company.used, company.quota, company.expires_at, company.fields, company.requester_dept,
            company.owner_dept) == ("active", 4, QUOTA, on_chain.expires_at, on_chain.fields, members.tax.id, members.samr.id)
    assert company.used == on_chain.used  # served records indexed == the contract's count
    assert (grants[trail.resident_grant].status, grants[trail.resident_grant].used) == ("revoked", 2)
    assert grants[pending].status == "requested" and grants[pending].activated_block is None
    assert [g.id for g in index.grants(status="revoked")] == [trail.resident_grant]
    assert [g.id for g in index.grants(owner_dept="SAMR")] == [trail.grant, pending]
    assert [g.id for g in index.grants(requester_dept="PSB")] == [pending]
    assert index.grant(trail.grant) == company and index.grant(999) is None
    kinds = [e.kind for e in index.grant_history(trail.resident_grant)]
    assert kinds == ["requested", "approved", "activated", "revoked"]
    with pytest.raises(AuditQueryError):
        index.grants(status="sleeping")

    depts = {d.code: d for d in index.departments()}
    assert set(depts) == {"SAMR", "TAX", "PSB", "AUDIT"} and depts["AUDIT"].audit_office
    assert depts["SAMR"].accounts == {members.samr.operator.address: ["operator"], members.samr.oracle.address: ["oracle"]}
    assert depts["AUDIT"].accounts[members.audit.auditor.address] == ["auditor"]

    datasets = {d.id: d for d in index.datasets()}
    version = datasets[trail.companies].versions[0]
    assert (version.version, version.content_hash, version.merkle_root, version.record_count) == (
        1, trail.company_file.content_hash, trail.company_file.merkle_root, 8)
    assert datasets[trail.residents].owner_dept == members.psb.id and len(datasets[trail.residents].fields) == 3

    by_requester = index.daily_counts()
    assert sum(c.total for c in by_requester) == 11
    tax = [c for c in by_requester if c.dept_code == "TAX"]
    assert sum(c.served for c in tax) == 6 and sum(c.denied for c in tax) == 2 and sum(c.source_failure for c in tax) == 2
    by_provider = {c.dept_code: c for c in index.daily_counts(by="provider")}
    assert (by_provider["SAMR"].total, by_provider["PSB"].total) == (7, 4)
    assert index.daily_counts(since=2**40) == []
    with pytest.raises(AuditQueryError):
        index.daily_counts(by="everyone")


def test_resuming_after_a_partial_sync_gives_the_same_index(tmp_path: Path, trail: Trail) -> None:
    consortium = trail.consortium
    head = consortium.chain.block_number()
    whole = AuditIndex(tmp_path / "whole.sqlite")
    whole.sync(consortium)
    parts = AuditIndex(tmp_path / "parts.sqlite")
    first = parts.sync(consortium, to_block=head - 4, step=3)
    assert first.to_block == parts.cursor == head - 4 and 0 < first.records < 11
    ranges: list[tuple[int, int]] = []
    second = parts.sync(consortium, step=2, on_range=lambda a, b: ranges.append((a, b)))
    assert second.from_block == head - 3 and ranges == [(head - 3, head - 2), (head - 1, head)]
    assert first.records + second.records == 11
    assert dump(parts) == dump(whole)
    nothing = parts.sync(consortium)
    assert (nothing.records, nothing.ranges, nothing.to_block) == (0, 0, head)
    # new records after a restart (a new process opening the same file)
    parts.close()
    trail.append(trail.members.samr.oracle, [trail.entry(), trail.entry(Outcome.DENIED)])
    reopened = AuditIndex(tmp_path / "parts.sqlite")
    assert reopened.sync(consortium).records == 2
    whole.sync(consortium)
    assert dump(reopened) == dump(whole)


def test_a_killed_sync_resumes_where_its_last_committed_range_ended(tmp_path: Path, trail: Trail, ganache) -> None:
    """A real `govshare audit index` process, syncing one block per range, is killed (SIGKILL) in the middle."""
    consortium = trail.consortium
    ganache.rpc("evm_mine", [{"blocks": 300}])  # empty blocks: a sync of one block per range takes seconds
    trail.append(trail.members.samr.oracle, [trail.entry()])
    manifest = consortium.deployment.save(tmp_path / "deployments")
    path = tmp_path / "killed.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "audit", "index", "--rpc", consortium.chain.url, "--manifest", str(manifest),
         "--index", str(path), "--step", "1"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = consortium.deployment.deployment_block
    cursor = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        cursor = _cursor(path)
        if cursor is not None and cursor > start + 20:
            break
        time.sleep(0.02)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL
    cursor = _cursor(path)
    assert cursor is not None and start + 20 < cursor < consortium.chain.block_number()
    resumed = AuditIndex(path)
    result = resumed.sync(consortium)
    assert result.from_block == cursor + 1
    whole = AuditIndex(tmp_path / "whole.sqlite")
    whole.sync(consortium)
    assert dump(resumed) == dump(whole)
    assert resumed.status().records == 12


def _cursor(path: Path) -> int | None:
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
        finally:
            db.close()
    except sqlite3.OperationalError:  # the schema is being created
        return None
    return None if row is None else int(row[0])


def test_an_index_refuses_another_deployment(tmp_path: Path, consortium: Consortium, members: Members, template,
                                            compilation) -> None:
    index = AuditIndex(tmp_path / "index.sqlite")
    index.sync(consortium)
    before = index.status()
    assert before.records == 0 and before.cursor == consortium.chain.block_number()
    other = Consortium(consortium.chain, template.bare, compilation)
    with pytest.raises(AuditIndexError, match="use another index file"):
        index.sync(other)
    assert index.status() == before  # untouched


def test_an_index_refuses_a_chain_that_changed_under_it(tmp_path: Path, consortium: Consortium, members: Members,
                                                        ganache) -> None:
    snapshot = ganache.rpc("evm_snapshot")
    ganache.rpc("evm_mine")
    index = AuditIndex(tmp_path / "index.sqlite")
    index.sync(consortium)
    assert ganache.rpc("evm_revert", [snapshot]) is True
    later = consortium.chain.block_timestamp() + 1000
    ganache.rpc("evm_mine", [{"timestamp": later}])  # another block at the same height
    with pytest.raises(AuditIndexError, match="no longer has block"):
        index.sync(consortium)


def test_not_an_index_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AuditIndexError, match="not a usable audit index"):
        AuditIndex(path)


def test_positions_order_by_block_then_log_index() -> None:
    assert position(5, 0) < position(5, 1) < position(6, 0)
    assert position(10, (1 << 24) - 1) < position(11, 0)
