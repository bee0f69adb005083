"""The oracle's Prometheus metrics, served at ``GET /metrics`` (text exposition format, or OpenMetrics
when the scraper asks for it), with ``prometheus-client`` and a registry per oracle.

Counted as answers leave (a counter increment and a histogram observation per answer: about 1.3 µs
of the ~400 µs of CPU an answer costs; ``scripts/bench/metrics_overhead.py`` measures it):

``govshare_oracle_queries_total{outcome, reason}``  signed queries answered over HTTP, by the audit
    record's outcome (``served``, ``denied``, ``source_failure``) and reason *name* (``GRANTED``,
    ``FIELDS_NOT_GRANTED``, ``SOURCE_TIMEOUT``...: ``ledger.contracts.audit_log.reason_name``)
``govshare_oracle_chain_requests_total{outcome, reason}``  on-chain requests answered (the same labels)
``govshare_oracle_answer_seconds``  histogram: from a query's body received to its answer ready (in
    strict mode, including the wait for its record to reach the chain)
``govshare_oracle_malformed_queries_total``  ``POST /v1/query`` bodies that are not a signed query
    (answered 400; nothing is recorded for them)

Computed when scraped (nothing on the answering path), from what the oracle holds in memory, one
read of the outbox's index of unanchored records, and one ``eth_getBlockByNumber`` of at most
:data:`SCRAPE_CHAIN_TIMEOUT` seconds:

``govshare_oracle_outbox_backlog_records``  records not yet on chain
``govshare_oracle_anchoring_lag_seconds``  since the oldest of them was written (0 without backlog)
``govshare_oracle_anchoring_lag_blocks``  blocks between its decision block and the head (0 without
    backlog; NaN when that record names no block: refused before the oracle had read any head)
``govshare_oracle_chain_head_age_seconds``  now minus the timestamp of the latest block seen (read at
    the scrape; while the chain cannot be read, the last one seen, so the age grows)
``govshare_oracle_anchored_batches_total``, ``govshare_oracle_anchoring_errors_total``  the batcher's
    counts (in the anchoring process: reported to the answering process after every batch and failure)
``govshare_oracle_lost_from_chain_records_total``  records the outbox held as anchored that the chain
    no longer held (a reorg, a node restarted from an older database), anchored again
    (:mod:`oracle.chain_rollback`); a rate above 0 is worth an alert
``govshare_oracle_info{department, mode, anchoring}``  1

Labels take only small fixed sets of values: never an address, a grant or a dataset id.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Iterator, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from ledger.contracts.audit_log import OracleReason, Outcome, reason_name
from ledger.contracts.grants import AccessReason
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from oracle.outbox import Outbox
    from oracle.service import OracleService, QueryAnswer

__all__ = ["ANSWER_BUCKETS", "OracleMetrics", "SCRAPE_CHAIN_TIMEOUT"]

log = logging.getLogger("govshare.oracle.metrics")

#: Upper bounds (seconds) of the answer latency histogram: an answer costs ~0.4 ms of CPU, a relay
#: to the department API a few ms, a chain read on a cache miss a few more; strict mode waits seconds.
ANSWER_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Seconds a scrape waits for the chain's latest block (a scrape must answer within Prometheus's
#: scrape timeout, 10 s by default, even while the node hangs).
SCRAPE_CHAIN_TIMEOUT = 2.0

#: Outcome label values, by the audit record's outcome code.
OUTCOMES = {int(o): o.name.lower() for o in Outcome}

_SOURCE_REASONS = (OracleReason.SOURCE_UNAVAILABLE, OracleReason.SOURCE_TIMEOUT, OracleReason.SOURCE_BAD_RESPONSE)
#: The (outcome, reason) pairs an oracle records, created at 0 so that a rate sees the first one.
EXPECTED = (
    [(Outcome.SERVED, AccessReason.GRANTED)]
    + [(Outcome.DENIED, r) for r in AccessReason if r is not AccessReason.GRANTED]
    + [(Outcome.DENIED, r) for r in OracleReason if r not in _SOURCE_REASONS]
    + [(Outcome.SOURCE_FAILURE, r) for r in _SOURCE_REASONS]
)

class AnchoringCounts(Protocol):
    """What the metrics read of the batcher (a :class:`oracle.batcher.Batcher` thread or an
    :class:`oracle.anchoring.AnchoringProcess`)."""

    anchored_batches: int
    failures: int
    lost_from_chain: int


def _labels(outcome: int, reason: int) -> tuple[str, str]:
    return OUTCOMES.get(outcome, f"OUTCOME_{outcome}"), reason_name(reason)


class _OutcomeCounter:
    """A counter by (outcome, reason), its children kept by the receipt's codes: one dict lookup
    and one increment per answer."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.by_codes = {(int(o), int(r)): counter.labels(*_labels(o, r)) for o, r in EXPECTED}

    def count(self, answer: QueryAnswer) -> None:
        receipt = answer.receipt
        key = (receipt.outcome, receipt.reason)
        child = self.by_codes.get(key)
        if child is None:  # a code outside EXPECTED: still a bounded set (reason codes are 8 bits)
            child = self.by_codes[key] = self.counter.labels(*_labels(*key))
        child.inc()


class OracleMetrics:
    """One oracle's metrics: the counters its answering path feeds, and the gauges read at scrape
    time; ``registry`` is its own (several oracles may run in one process)."""

    def __init__(self, service: OracleService, batcher: AnchoringCounts | None, *,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._queries = _OutcomeCounter(Counter(
            "govshare_oracle_queries", "Signed queries answered over HTTP, by the audit record's outcome and reason.",
            ("outcome", "reason"), registry=self.registry))
        self._chain_requests = _OutcomeCounter(Counter(
            "govshare_oracle_chain_requests", "On-chain requests answered, by the audit record's outcome and reason.",
            ("outcome", "reason"), registry=self.registry))
        self._answer_seconds = Histogram(
            "govshare_oracle_answer_seconds", "Seconds from a query's body received to its answer ready.",
            buckets=ANSWER_BUCKETS, registry=self.registry)
        self._malformed = Counter("govshare_oracle_malformed_queries",
                                  "POST /v1/query bodies that are not a signed query (answered 400, not recorded).",
                                  registry=self.registry)
        config = service.config
        Info("govshare_oracle", "The oracle's department and modes.", registry=self.registry).info(
            {"department": config.department, "mode": config.mode, "anchoring": config.anchoring})
        self.scrape = ScrapeTimeCollector(service, batcher)
        self.registry.register(self.scrape)

    # ------------------------------------------------------------------ the answering path

    def answered(self, answer: QueryAnswer, seconds: float) -> None:
        """A signed query over HTTP was answered ``seconds`` after its body was received."""
        self._queries.count(answer)
        self._answer_seconds.observe(seconds)

    def chain_request_answered(self, answer: QueryAnswer) -> None:
        """An on-chain request was answered (its result is kept for its requester)."""
        self._chain_requests.count(answer)

    def malformed(self) -> None:
        """A ``POST /v1/query`` body was not a signed query."""
        self._malformed.inc()

    # ------------------------------------------------------------------ the scrape

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for (Prometheus text by default): body, content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class ScrapeTimeCollector:
    """The gauges and counts read when scraped: the outbox's backlog and how far it lags, the
    chain head's age, the batcher's counts."""

    def __init__(self, service: OracleService, batcher: AnchoringCounts | None) -> None:
        self.outbox: Outbox = service.outbox
        self.service = service
        self.batcher = batcher
        self._lock = threading.Lock()
        self._head: tuple[int, float] | None = None  # (number, timestamp) of the latest block seen

    def describe(self) -> Iterator[Metric]:
        """The families without samples (so that registering reads nothing)."""
        return self._families(0, None, None, None, None)

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        head = self.latest_block()
        backlog = self.outbox.pending_count()
        lag_seconds = lag_blocks = 0.0
        if backlog:
            oldest = self.outbox.unanchored(1)
            if oldest:
                lag_seconds = max(0.0, now - oldest[0].created_at)
                decided_at = oldest[0].entry.checked_at_block
                # a record refused before any head was read names no block: its lag in blocks is unknown
                lag_blocks = max(0, head[0] - decided_at) if head is not None and decided_at else float("nan")
        age = max(0.0, now - head[1]) if head is not None else None
        return self._families(backlog, lag_seconds, lag_blocks, age, self.batcher)

    def latest_block(self) -> tuple[int, float] | None:
        """(number, timestamp) of the chain's latest block, read now within
        :data:`SCRAPE_CHAIN_TIMEOUT`; the last one read when the chain cannot be asked."""
        try:
            block = self.service.consortium.chain.rpc.call("eth_getBlockByNumber", ["latest", False],
                                                           timeout=SCRAPE_CHAIN_TIMEOUT)
            seen = (int(block["number"], 16), float(int(block["timestamp"], 16)))
        except (LedgerError, KeyError, TypeError, ValueError) as exc:
            log.debug("metrics: the chain's latest block cannot be read: %s", exc)
            return self._head
        with self._lock:
            if self._head is None or seen[0] >= self._head[0]:
                self._head = seen
            return self._head

    @staticmethod
    def _families(backlog: int, lag_seconds: float | None, lag_blocks: float | None, head_age: float | None,
                  batcher: AnchoringCounts | None) -> Iterator[Metric]:
        def gauge(name: str, help_text: str, value: float | None) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, help_text)
            if value is not None:
                family.add_metric([], value)
            return family

        yield gauge("govshare_oracle_outbox_backlog_records", "Audit records in the outbox not yet on chain.", backlog)
        yield gauge("govshare_oracle_anchoring_lag_seconds",
                    "Seconds since the oldest record not yet on chain was written (0 without backlog).", lag_seconds)
        yield gauge("govshare_oracle_anchoring_lag_blocks",
                    "Blocks from the oldest record not yet on chain's decision block to the head (0 without backlog).",
                    lag_blocks)
        yield gauge("govshare_oracle_chain_head_age_seconds",
                    "Seconds since the timestamp of the latest block the oracle has seen.", head_age)
        batches = CounterMetricFamily("govshare_oracle_anchored_batches", "Batches of records anchored on chain.")
        errors = CounterMetricFamily("govshare_oracle_anchoring_errors", "Anchoring steps that failed (and were retried).")
        lost = CounterMetricFamily("govshare_oracle_lost_from_chain_records",
                                   "Records the chain lost after they were anchored (a reorg or rollback), anchored again.")
        if batcher is not None:
            batches.add_metric([], batcher.anchored_batches)
            errors.add_metric([], batcher.failures)
            lost.add_metric([], batcher.lost_from_chain)
        yield batches
        yield errors
        yield lost
