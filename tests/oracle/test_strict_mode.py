"""Strict mode answers only once the access is on chain; fast mode answers once it is in the outbox."""

from __future__ import annotations

import time

import pytest

from devtools.sample_data import companies
from ledger.contracts.audit_log import OracleReason, Outcome
from requester.client import QueryRefused, fetch_result


def _ask(running, members, published, index: int):
    return running.client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                                published.company_fields, {"company_id": companies()[index]["company_id"]})


def _on_chain(consortium) -> dict[str, object]:
    return {hex(r.record_id): r for r in consortium.audit_log.records()}


def test_strict_mode_answers_only_after_the_record_is_on_chain(consortium, members, published, start):
    running = start(mode="strict", batch_max_age_seconds=0.1, strict_timeout_seconds=10.0)
    for index in (7, 8):
        result = _ask(running, members, published, index)
        assert result.records  # the data came back ...
        record = _on_chain(consortium).get(result.receipt["record_id"])  # ... and the access was already on chain
        assert record is not None
        assert "0x" + record.entry.response_hash.hex() == result.receipt["response_hash"]
        assert record.entry.outcome == Outcome.SERVED
    assert running.oracle.outbox.pending_count() == 0


def test_strict_mode_withholds_the_data_when_it_cannot_anchor_in_time(consortium, members, published, start):
    running = start(mode="strict", batch_max_age_seconds=0.1, strict_timeout_seconds=1.0)
    running.oracle.batcher.stop(flush=False)  # nothing anchors any more
    began = time.monotonic()
    with pytest.raises(QueryRefused) as err:
        _ask(running, members, published, 9)
    waited = time.monotonic() - began
    assert 1.0 <= waited < 5.0  # it waited strict_timeout_seconds for the chain, no longer
    assert err.value.status == 503 and err.value.reason == "WITHHELD", err.value.problem
    assert "records" not in err.value.problem
    assert companies()[9]["company_id"] not in str(err.value.problem)  # no data leaked in the problem either
    receipt = err.value.receipt
    # the access is durable and will be anchored: the served record, then the record that withheld it
    served = running.oracle.outbox.get(receipt["sequence"] - 1)
    withheld = running.oracle.outbox.get(receipt["sequence"])
    assert served is not None and withheld is not None and served.anchored_block is None
    assert served.entry.outcome == Outcome.SERVED and served.entry.response_hash != b"\x00" * 32
    assert withheld.entry.outcome == Outcome.DENIED and withheld.entry.reason == OracleReason.WITHHELD
    assert withheld.entry.request_hash == served.entry.request_hash
    assert "0x" + withheld.entry.request_hash.hex() == receipt["request_hash"] and receipt["response_hash"] == "0x" + "00" * 32
    assert running.oracle.outbox.pending_count() == 2
    assert consortium.audit_log.oracle_state(members.samr.oracle.address).last_sequence == 0
    assert running.oracle.batcher.anchor_once(force=True)  # once anchoring resumes, both go on chain
    on_chain = _on_chain(consortium)
    assert receipt["record_id"] in on_chain and on_chain[receipt["record_id"]].entry.reason == OracleReason.WITHHELD


def test_fast_mode_answers_before_anchoring(consortium, members, published, start):
    running = start(mode="fast", batch_max_age_seconds=2.0)
    result = _ask(running, members, published, 11)
    assert result.records
    assert running.oracle.outbox.pending_count() == 1  # answered while the record waits in the outbox
    assert result.receipt["record_id"] not in _on_chain(consortium)
    deadline = time.monotonic() + 15
    while running.oracle.outbox.pending_count():  # and the batcher anchors it on its own
        assert time.monotonic() < deadline, "the batcher did not anchor the record"
        time.sleep(0.1)
    assert result.receipt["record_id"] in _on_chain(consortium)


def test_strict_mode_releases_an_on_chain_answer_only_once_its_record_is_on_chain(consortium, members, published, start):
    from tests.oracle.test_request_follower import _request_on_chain

    running = start(mode="strict", batch_max_age_seconds=0.1, strict_timeout_seconds=1.0)
    running.oracle.batcher.stop(flush=False)  # nothing anchors until the test says so
    tax = members.tax.operator
    request_id = _request_on_chain(consortium, running, members.samr.oracle.address, tax, tax.address, published.tax_grant,
                                   published.company_fields, {"company_id": companies()[13]["company_id"]})
    assert running.oracle.follower.poll_once() == 1  # answered at once: nothing waits for the chain here
    assert fetch_result(running.url, tax, request_id) is None  # but nothing leaves before the record is on chain
    assert running.oracle.batcher.anchor_once(force=True)
    result = fetch_result(running.url, tax, request_id)
    assert result is not None and result["status"] == 200 and result["records"]


def test_strict_answers_waiting_for_the_chain_do_not_hold_a_thread(consortium, members, published, start):
    """Many more strict queries than the oracle has threads wait for the chain at once: each is
    recorded straight away and waits on the event loop, so none queues behind another's wait."""
    from concurrent.futures import ThreadPoolExecutor

    from oracle.service import CHAIN_THREADS

    running = start(mode="strict", batch_max_age_seconds=0.1, strict_timeout_seconds=30.0)
    running.oracle.batcher.stop(flush=False)  # nothing anchors until every query is waiting
    count = CHAIN_THREADS + 16
    with ThreadPoolExecutor(count) as pool:
        results = [pool.submit(_ask, running, members, published, 100 + i) for i in range(count)]
        deadline = time.monotonic() + 20
        while running.oracle.outbox.pending_count() < count:
            assert time.monotonic() < deadline, f"only {running.oracle.outbox.pending_count()} of {count} recorded"
            time.sleep(0.05)
        assert not any(r.done() for r in results)  # all of them wait for the chain ...
        assert running.oracle.batcher.anchor_once(force=True)  # ... and all leave once it has them
        assert all(r.result(timeout=20).records for r in results)
