"""The fault soak's requesters (``fault_soak.py``): threads sending real signed queries to the oracle
over HTTP at a steady pace, served ones (under TAX's grant) and denied ones (a field outside it),
each with a fresh nonce; every receipt is checked (signed by SAMR's oracle, bound to its fields)
and saved for ``govshare audit verify --receipts``. A query whose answer is lost after the oracle
took it (the connection cut by a kill) is sent once more, the same signed body, once the oracle
takes connections again: the oracle must refuse it (NONCE_REPLAYED) if it recorded the first, or
answer it if not, never record it twice."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from oracle_setup import Setup
from soak_tally import Ledger

from devtools.sample_data import companies
from ledger.http_client import HttpClient, HttpTimeout, HttpUnreachable
from protocol.receipt import receipt_signer
from requester.client import OracleClient, check_receipt_binding

#: Share of the queries asking for a field outside the grant (refused FIELDS_NOT_GRANTED, recorded).
DENIED_SHARE = 0.2
#: Seconds a requester waits after the oracle could not be reached (it is down: no spinning).
BACKOFF_SECONDS = 0.2
#: Seconds before a query whose answer was lost is sent again.
RESEND_AFTER_SECONDS = 1.0


class Requesters:
    """``threads`` requesters sharing ``rate`` queries per second, until :meth:`stop`."""

    def __init__(self, setup: Setup, oracle_url: str, receipts_dir: Path, *, rate: float, threads: int, seed: int,
                 timeout: float = 90.0) -> None:
        c = setup.consortium
        self.setup, self.oracle_url, self.receipts_dir = setup, oracle_url, receipts_dir
        self.rate, self.threads_count, self.timeout = rate, threads, timeout
        self.signer = OracleClient(oracle_url, c.chain.chain_id, c.deployment.addresses["QueryRequests"])
        self.oracle_address = setup.members.samr.oracle.address
        self.denied_fields = c.catalog.dataset(setup.dataset).field_mask(["company_id", "legal_representative"])
        self.ids = [r["company_id"] for r in companies()]
        self.ledger = Ledger()
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self._resend: list[tuple[float, bytes, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seed = seed
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"requester-{i}", daemon=True)
                         for i in range(threads)]
        receipts_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> Requesters:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 30)
        self.signer.close()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"counts": dict(self.counts), "reasons": dict(self.reasons), "receipts": len(self.ledger.receipts)}

    # ------------------------------------------------------------------ one requester

    def _run(self, index: int) -> None:
        rng = random.Random(self._seed * 1000 + index)
        period = self.threads_count / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at = max(next_at + period, time.monotonic() - period)
            resend = self._take_resend()
            if resend is not None:
                body, nonce = resend
                self._send(body, nonce, "resent")
            else:
                denied = rng.random() < DENIED_SHARE
                signed, query, _ = self.signer.signed_body(
                    self.setup.members.tax.operator, self.setup.members.tax.id, self.setup.dataset, self.setup.grant,
                    self.denied_fields if denied else self.setup.fields, {"company_id": rng.choice(self.ids)}, ttl=1800)
                self._send(orjson.dumps(signed), query.nonce, "denied" if denied else "served")
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _take_resend(self) -> tuple[bytes, int] | None:
        with self._lock:
            if self._resend and self._resend[0][0] <= time.monotonic():
                _, body, nonce = self._resend.pop(0)
                return body, nonce
        return None

    def _send(self, body: bytes, nonce: int, kind: str) -> None:
        """One exchange on a connection of its own: a kept-alive connection found closed is retried by
        the client on a new one (``ledger.http_client``), which would blur "never reached the oracle"
        (connection refused) with "taken, then the oracle died" (the answer lost)."""
        self._count(f"sent_{kind}")
        http = HttpClient(self.oracle_url, timeout=self.timeout, user_agent="govshare-fault-soak")
        try:
            answer = http.request("POST", "/v1/query", body=body,
                                  headers={"Content-Type": "application/json", "Accept": "application/json"})
        except (HttpTimeout, HttpUnreachable) as exc:
            refused = isinstance(exc.__cause__, ConnectionRefusedError)
            self._count("unreachable" if refused else "answer_lost")
            if not refused:  # the oracle may have taken it: keep its committed form, and send it once more
                canonical = {k: v for k, v in orjson.loads(body).items() if k != "paramsSalt"}
                with self._lock:
                    first = nonce not in self.ledger.lost_answers
                    self.ledger.lost_answers[nonce] = canonical
                    if first and kind != "resent":
                        self._resend.append((time.monotonic() + RESEND_AFTER_SECONDS, body, nonce))
            elif kind == "resent":  # not back yet: the resend waits until it reaches the oracle again
                self._count("resend_refused")
                with self._lock:
                    self._resend.append((time.monotonic() + RESEND_AFTER_SECONDS, body, nonce))
            self._stop.wait(BACKOFF_SECONDS)
            return
        finally:
            http.close()
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            self._count("bad_answer")
            return
        receipt = data.get("receipt") if isinstance(data, dict) else None
        if not isinstance(receipt, dict):
            self._count(f"no_receipt_{answer.status}")
            self._stop.wait(BACKOFF_SECONDS)
            return
        try:
            if receipt_signer(receipt) != self.oracle_address:
                raise ValueError("signed by another account")
            check_receipt_binding(receipt, data.get("records") if answer.status == 200 else None)
        except Exception as exc:  # noqa: BLE001 - any failure of the checks is a bad receipt, counted
            self._count("bad_receipt")
            with self._lock:
                self.reasons[f"bad receipt: {exc}"[:120]] += 1
            return
        self._save(receipt, nonce)
        self._count(f"status_{answer.status}")
        if answer.status != 200:
            with self._lock:
                self.reasons[str(data.get("reason"))] += 1

    def _save(self, receipt: dict[str, Any], nonce: int) -> None:
        """Keep it, and write it as ``receipt-<oracle>-<sequence>.json``; a second receipt for one
        sequence (which must never happen) is written beside the first, not over it."""
        with self._lock:
            self.ledger.receipts.append((nonce, receipt))
            n = len(self.ledger.receipts)
        target = self.receipts_dir / f"receipt-{receipt['oracle'].lower()}-{receipt['sequence']}.json"
        if target.exists():
            self._count("receipt_sequence_seen_twice")
            target = target.with_name(f"{target.stem}-again-{n}.json")
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(receipt, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        tmp.rename(target)

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1
