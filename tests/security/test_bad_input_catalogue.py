"""The bad-input catalogue (issue 15): every row of :data:`tests.security.cases.CASES` run against the
real system (ganache with the sample consortium, SAMR's oracle over HTTP in front of the sample company
registry, TAX's API over HTTP, the ``govshare`` CLI as subprocesses, raw transactions). Each case
asserts three things: the exact refusal, the audit evidence the design promises (a denial recorded
with its reason code, anchored and read back from the chain; or, for a body that is not a signed
query, the oracle's malformed-query counter), and that nothing else changed.

One world serves every case (module scope); the cases run in table order, each from the state the
previous ones left (a refused case changes nothing, a recorded one adds its one record)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.devnet import GanacheNode
from ledger.compiler import CompilationResult
from ledger.contracts.audit_log import ZERO_ADDRESS, Outcome
from ledger.errors import ContractRevert
from ledger.keys import Signer
from protocol.receipt import receipt_signer
from serving import ServerThread
from tests.conftest import Template
from tests.security.cases import CASES, Case, Closed, Denial, Exit, Handshake, Problem, Reverts, table_row
from tests.security.world import Answer, World, build_world, stop_world
from tests.support.cli import CliRun, govshare_all

PROBLEM = "application/problem+json"
SECURITY_MD = Path(__file__).resolve().parents[2] / "SECURITY.md"


@pytest.fixture(scope="module")
def world(ganache: GanacheNode, template: Template, compilation: CompilationResult, company_api: ServerThread,
          accounts: list[Signer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(ganache, template, compilation, company_api, accounts[0], tmp_path_factory.mktemp("catalogue"))
    yield built
    stop_world(built)


@pytest.fixture(scope="module")
def cli_runs(world: World) -> tuple[dict[str, CliRun], dict[str, Any], dict[str, Any], int]:
    """Every CLI case at once (each ``govshare`` run spends ~1.5 s importing): the runs by case id,
    and the state and block number before and after all of them."""
    cases = [c for c in CASES if c.surface == "cli"]
    before, block = world.state(), world.consortium.chain.block_number()
    runs = govshare_all([c.act(world) for c in cases], world.cli_env)
    assert world.consortium.chain.block_number() == block, "a refused command sent a transaction"
    return {c.id: r for c, r in zip(cases, runs)}, before, world.state(), block


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_recorded_and_nothing_else_changed(case: Case, world: World, request: pytest.FixtureRequest) -> None:
    if case.surface == "cli":
        runs, before, after, _ = request.getfixturevalue("cli_runs")
        _check_exit(case, runs[case.id])
        assert after == before
        return
    if case.setup is not None:
        case.setup(world)
    world.anchor()  # whatever the setup (or a failed case before) left pending
    before, outbox_before, block = world.state(), world.outbox(), world.consortium.chain.block_number()
    malformed = world.malformed_count()
    answer: Answer | None = None
    if isinstance(case.refusal, Reverts):
        with pytest.raises(ContractRevert) as refused:
            case.act(world)
        assert (refused.value.name, refused.value.args) == (case.refusal.error, case.refusal.args(world)), str(refused.value)
        assert world.consortium.chain.block_number() == block, "a refused transaction was mined"
    elif isinstance(case.refusal, Handshake):
        _check_handshake(case, case.act(world))
    elif isinstance(case.refusal, Closed):
        _check_closed(case.refusal, case.act(world))
    else:
        answer = case.act(world)
        _check_problem(case, answer)
    written = world.outbox()[len(outbox_before):]
    assert world.outbox()[:len(outbox_before)] == outbox_before, "a record already written changed"
    expected_after = before
    if isinstance(case.evidence, Denial):
        expected_after = _check_denial(case, case.evidence, world, written, before)
        assert answer is not None
        _receipt_matches(answer, world, written[0])
    else:
        assert written == [], f"{case.id} wrote records it should not have: {written}"
        assert world.malformed_count() == malformed + (1 if case.evidence.kind == "counted" else 0)
    assert world.state() == expected_after


def _check_problem(case: Case, answer: Answer) -> None:
    expected = case.refusal
    assert isinstance(expected, Problem)
    assert answer.status == expected.status, (case.id, answer.status, answer.body)
    if answer.status in (413, 431) and case.surface == "oracle":
        return  # refused by the server's limits before the app; the body may be plain
    assert answer.headers["content-type"].split(";")[0] == PROBLEM, (case.id, answer.headers)
    assert answer.body["status"] == expected.status and answer.body.get("detail") is not None, answer.body
    if expected.reason is not None:
        assert answer.body.get("reason") == expected.reason, (case.id, answer.body)
    if expected.detail is not None:
        assert expected.detail in answer.body["detail"], (case.id, answer.body)
    if expected.retry_after:
        wait = answer.headers.get("retry-after", "")
        assert wait.isdigit() and int(wait) >= 1, (case.id, answer.headers)
        assert str(wait) in answer.body["detail"] or answer.body.get("retry_after") == int(wait), (case.id, answer.body)
    if expected.slug is not None:
        assert answer.body["type"] == f"urn:govshare:problem:{expected.slug}", (case.id, answer.body)
    if case.surface == "api" and answer.status != 431:  # a 431 comes from serving, under the API's problem types
        assert answer.body["type"].startswith("urn:govshare:problem:"), answer.body


def _check_handshake(case: Case, outcome: dict[str, Any]) -> None:
    """TLS 1.2: the server ended the handshake with an alert; TLS 1.3 (where the client's handshake
    ends first): the server closed the connection before a byte of HTTP came back."""
    assert outcome["tls12"] is None, (case.id, outcome)
    assert outcome["tls13_version"] in ("TLSv1.3", None), (case.id, outcome)  # None: refused within the handshake
    assert outcome["tls13"] == b"", (case.id, outcome)


def _check_closed(expected: Closed, measured: dict[str, Any]) -> None:
    """Each connection closed by the service with no byte of answer, at its limit (not before it; and
    within 2.5 s after it, on a loaded machine: well before the 5 s default keep-alive or the 7 s the
    slowloris keeps sending for), while an honest request was answered."""
    for kind, limit in (("idle", expected.idle), ("slow", expected.slow)):
        seconds, received = measured[kind]
        assert received == b"", (kind, received[:200])
        assert limit - 0.05 <= seconds <= limit + 2.5, (kind, seconds, limit)
    assert measured["slow_headers_sent"] >= int(expected.slow / 0.3) - 1, measured  # it kept sending until closed
    assert measured["honest"] == 200, measured


def _check_denial(case: Case, denial: Denial, world: World, written: list, before: dict[str, Any]) -> dict[str, Any]:
    """One DENIED record, as the answer's receipt says, reaching the chain unchanged; the state
    expected afterwards (one more record in the outbox and on chain, nothing else)."""
    assert len(written) == 1, f"{case.id}: {len(written)} records written, expected one denial"
    record = written[0]
    entry = record.entry
    requester = ZERO_ADDRESS if denial.requester is None else world.account(denial.requester).address
    expected = (Outcome.DENIED, int(denial.reason), requester,
                0 if denial.dataset is None else world.datasets[denial.dataset],
                denial.grant if isinstance(denial.grant, int) else 0 if denial.grant is None else world.grants[denial.grant])
    assert (entry.outcome, entry.reason, entry.requester, entry.dataset_id, entry.grant_id) == expected, (case.id, entry)
    assert entry.response_hash == b"\0" * 32
    on_chain = world.anchor()
    assert [(r.sequence, r.entry) for r in on_chain] == [(record.sequence, entry)], (case.id, on_chain)
    samr = world.account("samr-oracle").address
    assert world.consortium.audit_log.oracle_state(samr).last_sequence == record.sequence
    after = dict(before)
    after["outbox"] = before["outbox"] + 1
    after["audit_log"] = {**before["audit_log"], "samr-oracle": world.consortium.audit_log.oracle_state(samr)}
    assert after["audit_log"]["samr-oracle"].last_sequence == before["audit_log"]["samr-oracle"].last_sequence + 1
    return after


def _receipt_matches(answer: Answer, world: World, record: Any) -> None:
    """The refusal carries the oracle's signed receipt for exactly the record written."""
    receipt = answer.body["receipt"]
    assert receipt_signer(receipt) == world.account("samr-oracle").address
    assert (receipt["sequence"], receipt["outcome"], receipt["reason"], receipt["requester"]) == (
        record.sequence, int(record.entry.outcome), record.entry.reason, record.entry.requester)
    assert receipt["request_hash"] == "0x" + record.entry.request_hash.hex()


def _check_exit(case: Case, run: CliRun) -> None:
    expected = case.refusal
    assert isinstance(expected, Exit)
    assert run.returncode == expected.code, (case.id, run.returncode, run.stderr[-2000:], run.stdout[-2000:])
    said = run.stdout if expected.stream == "stdout" else run.stderr
    assert expected.says in said, (case.id, said[-2000:])
    assert "Traceback" not in run.stderr, (case.id, run.stderr[-2000:])


def test_the_catalogue_is_large_and_its_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 40
    assert {c.surface for c in CASES} == {"oracle", "api", "cli", "contract"}


def test_security_md_lists_every_case() -> None:
    """SECURITY.md's table has a row per case, exactly as the case says (``cases.table_row``), and no
    row for a case that does not exist (rows of cases that come with a pending fix say so)."""
    text = SECURITY_MD.read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([A-Z0-9-]+)` \| (\w+) \|", text, re.M)}
    lines = set(text.splitlines())
    for case in CASES:
        assert rows.get(case.id) == case.surface, f"SECURITY.md has no row for {case.id} ({case.surface})"
        assert table_row(case) in lines, f"SECURITY.md's row for {case.id} should read:\n{table_row(case)}"
    pending = {i for i in rows if i not in {c.id for c in CASES}}
    for case_id in pending:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{case_id}` |"))
        assert "added with the fix" in row, f"SECURITY.md lists {case_id}, which is neither a case nor pending a fix"
