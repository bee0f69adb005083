"""The oracle's ``GET /metrics``: a real oracle over real HTTP answers real queries (served, denied,
a source failure, a forged signature, a malformed body, an on-chain request), and the scrape, parsed
with prometheus-client's own parser, counts exactly those, times each answer, shows the backlog and
how far it lags before and after anchoring, the chain head's age, the batcher's counts (on a thread
and in the anchoring process, refusals included); no label ever carries an address or an id."""

from __future__ import annotations

import math
import re
import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Callable

import httpx
import pytest
from eth_keys import keys
from prometheus_client.parser import text_string_to_metric_families

from devtools.devnet import free_port
from devtools.sample_data import companies
from ledger.contracts.audit_log import OracleReason, Outcome, reason_name
from ledger.contracts.grants import AccessReason
from ledger.errors import ChainUnavailable
from oracle.metrics import ANSWER_BUCKETS, EXPECTED, OUTCOMES, OracleMetrics
from oracle.relay import DepartmentApi
from oracle.service import QueryAnswer
from protocol.receipt import Receipt
from requester.client import QueryRefused, encrypt_params_for
from tests.oracle.conftest import RunningOracle

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

OUTCOME_NAMES = {"served", "denied", "source_failure"}
#: The series created at 0 (two codes may share a name: UNKNOWN_DATASET, said by the chain or by the oracle)
SERIES = {(OUTCOMES[o], reason_name(r)) for o, r in EXPECTED}
REASON_NAMES = {r.name for r in AccessReason} | {r.name for r in OracleReason}
#: Every label an oracle's metrics may carry, and the values each may take.
LABEL_VALUES: dict[str, set[str] | None] = {
    "outcome": OUTCOME_NAMES, "reason": REASON_NAMES, "le": None,  # bucket bounds: checked below
    "department": {"SAMR"}, "mode": {"fast", "strict"}, "anchoring": {"thread", "process"},
}


def scrape(running: RunningOracle, **headers: str) -> tuple[Samples, dict[str, str]]:
    """Every sample of one scrape, by (name, sorted labels), and the families' types."""
    reply = httpx.get(f"{running.url}/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(reply.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def counted(samples: Samples, name: str) -> dict[tuple[str, str], float]:
    """The non-zero (outcome, reason) series of a counter by outcome and reason."""
    return {(dict(k)["outcome"], dict(k)["reason"]): v for (n, k), v in samples.items() if n == name and v}


def check_labels_are_bounded(samples: Samples, *forbidden: str) -> None:
    """Only the known labels, each with a value from its small fixed set; no address, no id."""
    for name, labels in samples:
        for label, text in labels:
            assert label in LABEL_VALUES, (name, label)
            allowed = LABEL_VALUES[label]
            if allowed is None:
                assert text == "+Inf" or float(text) in ANSWER_BUCKETS, (name, label, text)
            else:
                assert text in allowed, (name, label, text)
            assert not re.search(r"0x[0-9a-fA-F]{6,}", text) and text not in forbidden, (name, label, text)


def ask(running: RunningOracle, members, published, index: int, **kw):
    args = dict(signer=members.tax.operator, dept_id=members.tax.id, dataset_id=published.companies,
                grant_id=published.tax_grant, fields=published.company_fields,
                params={"company_id": companies()[index]["company_id"]})
    args.update(kw)
    return running.client.query(**args)


def refused(running: RunningOracle, members, published, index: int, **kw) -> QueryRefused:
    with pytest.raises(QueryRefused) as err:
        ask(running, members, published, index, **kw)
    return err.value


def _mine_a_block(consortium, members, published) -> None:
    """One transaction, one block (ganache mines each at once): a grant request nobody approves."""
    consortium.grants.request(members.tax.operator, published.companies, published.company_fields, "a block", 3600, 1)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def test_queries_are_counted_by_outcome_and_reason_and_timed(consortium, members, published, samr_oracle):
    samples, types = scrape(samr_oracle)
    assert types["govshare_oracle_queries"] == "counter" and types["govshare_oracle_answer_seconds"] == "histogram"
    assert not counted(samples, "govshare_oracle_queries_total")  # every expected series is there, at 0
    assert len([k for k in samples if k[0] == "govshare_oracle_queries_total"]) == len(SERIES)
    assert value(samples, "govshare_oracle_answer_seconds_count") == 0

    ask(samr_oracle, members, published, 11)
    ask(samr_oracle, members, published, 12)
    ds = consortium.catalog.dataset(published.companies)
    assert refused(samr_oracle, members, published, 13,
                   fields=ds.field_mask(["company_id", "legal_representative"])).reason == "FIELDS_NOT_GRANTED"
    # another requester, unknown to the oracle, with a forged signature: its own series? No: the same bounded one
    body, _, _ = samr_oracle.client.signed_body(members.outsider, members.tax.id, published.companies,
                                                published.tax_grant, published.company_fields, {"company_id": "x"})
    body["query"]["requester"] = members.tax.operator.address
    assert httpx.post(f"{samr_oracle.url}/v1/query", json=body).json()["reason"] == "BAD_SIGNATURE"
    # the department's API is down: a source failure
    info = samr_oracle.oracle.service.dataset_info(published.companies)
    working = info.relay
    info.relay = DepartmentApi(replace(working.config, base_url=f"http://127.0.0.1:{free_port()}"))
    try:
        assert refused(samr_oracle, members, published, 14).reason == "SOURCE_UNAVAILABLE"
    finally:
        info.relay.close()
        info.relay = working
    # not a query at all: answered 400, recorded nowhere, counted apart
    assert httpx.post(f"{samr_oracle.url}/v1/query", content=b"{not json").status_code == 400

    samples, _ = scrape(samr_oracle)
    assert counted(samples, "govshare_oracle_queries_total") == {
        ("served", "GRANTED"): 2, ("denied", "FIELDS_NOT_GRANTED"): 1, ("denied", "BAD_SIGNATURE"): 1,
        ("source_failure", "SOURCE_UNAVAILABLE"): 1}
    assert len([k for k in samples if k[0] == "govshare_oracle_queries_total"]) == len(SERIES)  # no new series
    assert value(samples, "govshare_oracle_malformed_queries_total") == 1
    answers = value(samples, "govshare_oracle_answer_seconds_count")
    assert answers == 5
    assert 0 < value(samples, "govshare_oracle_answer_seconds_sum") < 30
    buckets = [value(samples, "govshare_oracle_answer_seconds_bucket", le=str(b)) for b in ANSWER_BUCKETS]
    assert buckets == sorted(buckets) and value(samples, "govshare_oracle_answer_seconds_bucket", le="+Inf") == answers
    assert buckets[0] < answers  # a real answer over HTTP with a relay takes more than 0.25 ms
    check_labels_are_bounded(samples, str(published.tax_grant), str(published.companies))
    assert value(samples, "govshare_oracle_info", department="SAMR", mode="fast", anchoring="thread") == 1


def test_backlog_and_anchoring_lag_before_and_after_anchoring(consortium, members, published, samr_oracle):
    samples, _ = scrape(samr_oracle)
    assert value(samples, "govshare_oracle_outbox_backlog_records") == 0
    assert value(samples, "govshare_oracle_anchoring_lag_seconds") == 0
    assert value(samples, "govshare_oracle_anchoring_lag_blocks") == 0
    assert value(samples, "govshare_oracle_anchored_batches_total") == 0
    first = ask(samr_oracle, members, published, 21).receipt
    for i in range(22, 24):
        ask(samr_oracle, members, published, i)
    # blocks mined after the first decision: the oldest record lags by them
    for _ in range(2):
        _mine_a_block(consortium, members, published)
    time.sleep(0.3)
    before = time.time()
    samples, _ = scrape(samr_oracle)
    head = consortium.chain.block_number()
    assert value(samples, "govshare_oracle_outbox_backlog_records") == 3
    assert value(samples, "govshare_oracle_anchoring_lag_blocks") == head - first["checked_at_block"] == 2
    written = samr_oracle.oracle.outbox.get(1).created_at
    assert before - written <= value(samples, "govshare_oracle_anchoring_lag_seconds") <= time.time() - written
    # the head's age, from the latest block's own timestamp
    age = value(samples, "govshare_oracle_chain_head_age_seconds")
    expected_age = max(0.0, time.time() - consortium.chain.block_timestamp("latest"))
    assert abs(age - expected_age) <= 2.0, (age, expected_age)

    assert samr_oracle.oracle.batcher.anchor_once(force=True)
    samples, _ = scrape(samr_oracle)
    assert value(samples, "govshare_oracle_outbox_backlog_records") == 0
    assert value(samples, "govshare_oracle_anchoring_lag_seconds") == 0
    assert value(samples, "govshare_oracle_anchoring_lag_blocks") == 0
    assert value(samples, "govshare_oracle_anchored_batches_total") == 1
    assert value(samples, "govshare_oracle_anchoring_errors_total") == 0


def test_the_anchoring_process_reports_batches_and_refusals(consortium, members, published, start):
    """In the anchoring process: batches counted as they are reported; a chain that refuses the
    batches (the oracle's role removed) shows as errors and a growing lag, until the role is back."""
    from ledger.contracts.registry import Role

    running = start(anchoring="process", batch_max_age_seconds=0.2)
    ask(running, members, published, 31)
    _wait(lambda: running.oracle.outbox.pending_count() == 0, "the record anchored")
    _wait(lambda: value(scrape(running)[0], "govshare_oracle_anchored_batches_total") == 1, "the batch reported")
    samples, _ = scrape(running)
    assert value(samples, "govshare_oracle_info", department="SAMR", mode="fast", anchoring="process") == 1
    assert value(samples, "govshare_oracle_anchoring_errors_total") == 0

    oracle = members.samr.oracle.address
    consortium.registry.remove_account(members.samr.operator, oracle, Role.ORACLE)
    ask(running, members, published, 32)
    _mine_a_block(consortium, members, published)
    _wait(lambda: value(scrape(running)[0], "govshare_oracle_anchoring_errors_total") >= 1, "the refusal counted")
    time.sleep(0.5)
    samples, _ = scrape(running)
    assert value(samples, "govshare_oracle_outbox_backlog_records") == 1
    assert value(samples, "govshare_oracle_anchoring_lag_seconds") >= 0.5
    assert value(samples, "govshare_oracle_anchoring_lag_blocks") >= 1
    consortium.registry.add_account(members.samr.operator, oracle, Role.ORACLE)
    _wait(lambda: value(scrape(running)[0], "govshare_oracle_outbox_backlog_records") == 0, "anchored once the role is back")
    _wait(lambda: value(scrape(running)[0], "govshare_oracle_anchored_batches_total") == 2, "the second batch reported")


def test_on_chain_requests_are_counted_apart(consortium, members, published, samr_oracle):
    tax = members.tax.operator
    identity = httpx.get(f"{samr_oracle.url}/v1/identity").json()
    encrypted = encrypt_params_for(bytes.fromhex(identity["public_key"][2:]), tax.address,
                                   {"company_id": companies()[41]["company_id"]})
    public = keys.PrivateKey(bytes(tax.account.key)).public_key.to_bytes()
    consortium.queries.request_query(tax, published.tax_grant, published.company_fields, encrypted, public)
    # parameters bound to another requester's address: they cannot be read, the request is refused
    foreign = encrypt_params_for(bytes.fromhex(identity["public_key"][2:]), members.psb.operator.address,
                                 {"company_id": companies()[42]["company_id"]})
    consortium.queries.request_query(tax, published.tax_grant, published.company_fields, foreign, public)
    assert samr_oracle.oracle.follower.poll_once() == 2
    samples, _ = scrape(samr_oracle)
    assert counted(samples, "govshare_oracle_chain_requests_total") == {("served", "GRANTED"): 1,
                                                                       ("denied", "MALFORMED_REQUEST"): 1}
    assert not counted(samples, "govshare_oracle_queries_total")
    assert value(samples, "govshare_oracle_answer_seconds_count") == 0  # the HTTP path's latency only
    check_labels_are_bounded(samples, str(published.tax_grant), str(published.companies))


def test_openmetrics_when_asked(samr_oracle):
    reply = httpx.get(f"{samr_oracle.url}/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/openmetrics-text")
    assert reply.text.rstrip().endswith("# EOF") and "govshare_oracle_queries_total" in reply.text
    assert "/metrics" not in httpx.get(f"{samr_oracle.url}/openapi.json").json()["paths"]


# ---------------------------------------------------------------- without a chain


def _answer(outcome: Outcome, reason: int) -> QueryAnswer:
    receipt = Receipt(record_id="0x1", oracle="0x" + "00" * 20, sequence=1, dataset_id=7, dataset_version=1, grant_id=9,
                      requester="0x" + "11" * 20, outcome=int(outcome), reason=int(reason), checked_at_block=1,
                      request_hash="0x", response_hash="0x", request_salt="0x", response_salt="",
                      record_hash="0x", previous_head="0x", chain_head="0x")
    return QueryAnswer(200, receipt)


def _stub_service(call: Callable[..., dict]) -> SimpleNamespace:
    config = SimpleNamespace(department="SAMR", mode="fast", anchoring="thread")
    chain = SimpleNamespace(rpc=SimpleNamespace(call=call))
    outbox = SimpleNamespace(pending_count=lambda: 0, unanchored=lambda limit: [])
    return SimpleNamespace(config=config, outbox=outbox, consortium=SimpleNamespace(chain=chain))


def _parsed(metrics: OracleMetrics) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(metrics.exposition(None)[0].decode()) for s in f.samples}


def test_the_head_age_grows_while_the_chain_cannot_be_read():
    """A scrape never waits on a chain that is down: the last block seen stays, and its age grows."""
    minted = int(time.time()) - 3
    calls: list[float | None] = []

    def call(method: str, params: list, timeout: float | None = None) -> dict:
        calls.append(timeout)
        if len(calls) > 1:
            raise ChainUnavailable("the node is down")
        return {"number": hex(42), "timestamp": hex(minted)}

    metrics = OracleMetrics(_stub_service(call), None)  # type: ignore[arg-type]
    first = value(_parsed(metrics), "govshare_oracle_chain_head_age_seconds")
    assert 3 <= first < 5
    time.sleep(1.1)
    later = value(_parsed(metrics), "govshare_oracle_chain_head_age_seconds")
    assert later >= first + 1
    assert calls and all(t is not None and t <= 2.0 for t in calls)  # bounded: within Prometheus's scrape timeout
    assert math.isclose(value(_parsed(metrics), "govshare_oracle_outbox_backlog_records"), 0)


def test_an_answer_costs_a_few_microseconds_to_count():
    """The answering path's share: a counter increment and a histogram observation (about 1.3 µs
    on this machine, ``scripts/bench/metrics_overhead.py``); the bound here is loose (a shared CI core)."""
    metrics = OracleMetrics(_stub_service(lambda *a, **k: {"number": "0x1", "timestamp": "0x1"}), None)  # type: ignore[arg-type]
    answers = [_answer(Outcome.SERVED, AccessReason.GRANTED), _answer(Outcome.DENIED, AccessReason.REVOKED)] * 10_000
    start = time.process_time()
    for answer in answers:
        metrics.answered(answer, 0.0004)
    per_answer = (time.process_time() - start) / len(answers)
    assert per_answer < 20e-6, f"{per_answer * 1e6:.1f} µs per answer"
    samples = _parsed(metrics)
    assert counted(samples, "govshare_oracle_queries_total") == {("served", "GRANTED"): 10_000, ("denied", "REVOKED"): 10_000}
    assert value(samples, "govshare_oracle_answer_seconds_bucket", le="0.0005") == 20_000
