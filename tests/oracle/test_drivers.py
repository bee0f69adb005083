"""The decision path is written once (``OracleService._answer_path``, a generator of the I/O steps it
needs) and driven two ways: blocking on the calling thread (``OracleService.answer``) and on an event
loop (``OracleService.answer_async``, what the oracle's HTTP server runs). The same requests must get
the same outcomes either way, against the real chain and the real department API."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Callable, Iterator

import orjson
import pytest

from devtools.devnet import free_port
from devtools.sample_data import companies
from oracle.relay import DepartmentApi
from oracle.service import OracleService, QueryAnswer
from protocol.query import SignedQuery
from tests.oracle.conftest import RunningOracle
from tests.support.loop import LoopThread

Driver = Callable[[OracleService, SignedQuery], QueryAnswer]


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    running = LoopThread()
    yield running
    running.stop()


@pytest.fixture(params=["blocking", "event loop"])
def drive(request: pytest.FixtureRequest, loop: LoopThread) -> Driver:
    if request.param == "blocking":
        return lambda service, signed: service.answer(signed)
    return lambda service, signed: loop.run(service.answer_async(signed))


def signed(running: RunningOracle, members, published, index: int = 1, **overrides: object) -> SignedQuery:
    """A query signed by tax's operator, parsed from its body as the oracle's HTTP edge parses it."""
    args: dict = dict(signer=members.tax.operator, dept_id=members.tax.id, dataset_id=published.companies,
                      grant_id=published.tax_grant, fields=published.company_fields,
                      params={"company_id": companies()[index]["company_id"]})
    args.update(overrides)
    body, _, _ = running.client.signed_body(**args)
    return SignedQuery.from_body(orjson.dumps(body))


def test_served_and_refused_alike(consortium, members, published, start, drive: Driver) -> None:
    running = start()
    service = running.oracle.service
    target = companies()[77]
    served = drive(service, signed(running, members, published, 77))
    assert served.status == 200 and served.records == [{k: target[k] for k in ("company_id", "name", "registration_date", "status")}]
    replayed_request = signed(running, members, published, 78)
    assert drive(service, replayed_request).status == 200
    replayed = drive(service, replayed_request)
    assert (replayed.status, replayed.reason_name) == (409, "NONCE_REPLAYED")
    too_many_fields = consortium.catalog.dataset(published.companies).field_mask(["company_id", "legal_representative"])
    outside = drive(service, signed(running, members, published, fields=too_many_fields))
    assert (outside.status, outside.reason_name) == (403, "FIELDS_NOT_GRANTED")
    unknown = drive(service, signed(running, members, published, dataset_id=published.companies + 100))
    assert (unknown.status, unknown.reason_name) == (404, "UNKNOWN_DATASET")
    forged = replace(signed(running, members, published), signature=b"\x01" * 65)
    assert drive(service, forged).status == 401
    # every one of them is recorded, in order, with the outcome it was answered with
    records = list(running.oracle.outbox.all_records())
    assert [r.sequence for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r.entry.outcome.name for r in records] == ["SERVED", "SERVED", "DENIED", "DENIED", "DENIED", "DENIED"]


def test_source_down_alike(consortium, members, published, start, drive: Driver) -> None:
    running = start()
    service = running.oracle.service
    info = service.dataset_info(published.companies)
    info.relay.close()
    info.relay = DepartmentApi(replace(info.relay.config, base_url=f"http://127.0.0.1:{free_port()}"))
    down = drive(service, signed(running, members, published))
    assert (down.status, down.reason_name) == (502, "SOURCE_UNAVAILABLE")
    assert down.receipt.outcome == 2  # Outcome.SOURCE_FAILURE


def test_strict_mode_alike(consortium, members, published, start, loop: LoopThread) -> None:
    """Blocking with ``hold`` waits for the record to be on chain; the event loop's answer comes back
    at once and says what to do if it cannot be anchored in time (the HTTP edge waits for it)."""
    running = start(mode="strict", batch_max_age_seconds=0.05, strict_timeout_seconds=10.0)
    service = running.oracle.service
    held = service.answer(signed(running, members, published, 5))
    assert held.status == 200 and held.withhold is None
    assert running.oracle.outbox.get(held.receipt.sequence).anchored_block is not None
    running.oracle.batcher.stop(flush=False)
    pending = loop.run(service.answer_async(signed(running, members, published, 6)))
    assert pending.status == 200 and pending.withhold is not None
    assert running.oracle.outbox.get(pending.receipt.sequence).anchored_block is None
    withheld = pending.withhold()
    assert (withheld.status, withheld.reason_name, withheld.records) == (503, "WITHHELD", None)


def test_concurrent_answers_on_the_loop_share_one_head_read_and_one_access_check(
        consortium, members, published, start, loop: LoopThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty queries at once on the event loop, at one block: the chain is asked for the head once and
    for the access check once (the calls are counted on their way to the real chain), and every query is
    served. A new block (the record anchored) makes the next query ask again."""
    running = start(head_poll_interval_seconds=2.0)
    service = running.oracle.service
    calls = {"head": 0, "check": 0}
    real_head, real_check = consortium.chain.head, consortium.grants.check_access

    def counted_head() -> int:
        calls["head"] += 1
        return real_head()

    def counted_check(*args, **kwargs):
        calls["check"] += 1
        return real_check(*args, **kwargs)

    monkeypatch.setattr(consortium.chain, "head", counted_head)
    monkeypatch.setattr(consortium.grants, "check_access", counted_check)
    requests = [signed(running, members, published, 200 + i) for i in range(20)]

    async def all_at_once() -> list[QueryAnswer]:
        return await asyncio.gather(*(service.answer_async(r) for r in requests))

    answers = loop.run(all_at_once())
    assert [a.status for a in answers] == [200] * 20
    assert calls == {"head": 1, "check": 1}
    assert running.oracle.batcher.anchor_once(force=True)  # a new block
    time.sleep(2.1)  # the poll interval has passed
    assert loop.run(service.answer_async(signed(running, members, published, 300))).status == 200
    assert calls == {"head": 2, "check": 2}


def test_answers_reaching_the_outbox_together_are_written_in_one_transaction(
        consortium, members, published, start, loop: LoopThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty queries at once on the event loop, one of them sent twice: their records go to the
    outbox in groups (``Outbox.record_many``, counted on its way to the real file), the replay is
    refused within its group and audited, and every receipt names the record the file holds, with
    no sequence skipped."""
    running = start(head_poll_interval_seconds=2.0)
    service, outbox = running.oracle.service, running.oracle.outbox
    groups: list[int] = []
    real_record_many = outbox.record_many

    def counted(writes):
        groups.append(len(writes))
        return real_record_many(writes)

    monkeypatch.setattr(outbox, "record_many", counted)
    requests = [signed(running, members, published, 400 + i) for i in range(19)]
    requests.append(requests[7])  # the same nonce again, in the same turn of the loop

    async def all_at_once() -> list[QueryAnswer]:
        return await asyncio.gather(*(service.answer_async(r) for r in requests))

    answers = loop.run(all_at_once())
    assert sorted(a.status for a in answers) == [200] * 19 + [409]
    # whichever of the two copies reaches the outbox second is the replay (they race through the relay)
    assert sorted([answers[7].reason_name or "", answers[-1].reason_name or ""]) == ["", "NONCE_REPLAYED"]
    # twenty served writes tried in groups, and the replay's denial record (Outbox.record writes through record_many too)
    assert max(groups) > 1 and sum(groups) == 21, groups
    sequences = sorted(a.receipt.sequence for a in answers)
    assert sequences == list(range(sequences[0], sequences[0] + 20))  # the refusal is recorded too, no gap
    for answer in answers:
        record = outbox.get(answer.receipt.sequence)
        assert record is not None and "0x" + record.entry.request_hash.hex() == answer.receipt.request_hash
        assert int(record.entry.outcome) == answer.receipt.outcome
