"""The second way to ask: through the contract.

A requester sends ``QueryRequests.requestQuery`` with its parameters encrypted to the oracle's key
(ECIES, associated data = the requester's address) and its own public key. This follower reads the
provider department's ``QueryRequested`` events in bounded block ranges, answers each through the
same decision path as a signed query (the chain has already authenticated the requester: it is the
transaction's sender), keeps the answer encrypted to the requester's key (associated data = the
request id) for the requester to fetch, and fulfils the request on chain with the audit record's
id and the response hash. The data itself never goes on chain.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from ledger.contracts.audit_log import record_id
from ledger.contracts.query_requests import QueryRequested
from ledger.errors import ContractRevert, LedgerError
from ledger.hashing import canonical_json
from ledger.json_limits import loads
from ledger.keys import Signer
from oracle.service import Access, OracleService, QueryAnswer
from protocol import ecies
from protocol.commitments import onchain_request_body
from protocol.results import params_associated_data, result_associated_data

log = logging.getLogger("govshare.oracle.onchain")
CURSOR = "query-requests"


class OnChainRequestFollower:
    """Follows QueryRequested events for one department; ``poll_once`` is callable directly."""

    def __init__(self, service: OracleService, signer: Signer, *, poll_interval: float = 1.0, step: int = 2_000) -> None:
        self.service = service
        self.signer = signer
        self.poll_interval = poll_interval
        self.step = step
        self.last_error: str | None = None
        #: called with each answer (the oracle's metrics count them)
        self.on_answer: Callable[[QueryAnswer], None] | None = None
        self._private_key = bytes(signer.account.key)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="govshare-request-follower", daemon=True)

    def start(self) -> OnChainRequestFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.last_error = None
            except LedgerError as exc:  # chain down, a failed fulfilment...: keep following
                self.last_error = str(exc)
                log.warning("following on-chain requests failed, retrying: %s", exc)
            self._stop.wait(self.poll_interval)

    def poll_once(self) -> int:
        """Answer every new request up to the current block; returns how many were answered."""
        consortium = self.service.consortium
        outbox = self.service.outbox
        start = outbox.chain_requests.cursor(CURSOR)
        start = consortium.deployment.deployment_block if start is None else start + 1
        head = consortium.chain.block_number()
        answered = 0
        if start <= head:
            for request in consortium.queries.requests_for(self.service.dept_id, start, head, step=self.step):
                if outbox.chain_requests.result(request.request_id) is None:
                    self._answer(request)
                    answered += 1
            outbox.chain_requests.set_cursor(CURSOR, head)
        self._fulfil_pending()
        return answered

    def _answer(self, request: QueryRequested) -> None:
        params = self._decrypt_params(request)
        dept = self.service.consortium.registry.department_of(request.requester, block=request.block_number)
        access = Access(request.requester, dept, request.dataset_id, request.grant_id, request.fields,
                        params if params is not None else {}, f"request:{request.request_id}")
        canonical = onchain_request_body(request.request_id, request.tx_hash, params)

        def keep(answer: QueryAnswer) -> tuple[int, str, bytes]:  # stored with the audit record, atomically
            result = {"status": answer.status, "records": answer.records, "error": answer.error,
                      "reason": answer.reason_name, "receipt": answer.receipt.as_dict()}
            blob = ecies.encrypt(request.requester_public_key, canonical_json(result), result_associated_data(request.request_id))
            return request.request_id, request.requester, blob

        if params is None:
            answer = self.service.refuse_malformed(access, canonical, "the parameters could not be decrypted or parsed", keep)
        else:
            answer = self.service.answer_access(access, canonical, keep)
        if self.on_answer is not None:
            self.on_answer(answer)

    def _decrypt_params(self, request: QueryRequested) -> dict[str, str] | None:
        try:
            plain = ecies.decrypt(self._private_key, request.encrypted_params, params_associated_data(request.requester))
            params = loads(plain, what="the decrypted parameters", max_depth=1)  # a flat object of strings
        except (LedgerError, ValueError):
            return None
        if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            return None
        return params

    def _fulfil_pending(self) -> None:
        outbox = self.service.outbox
        for request_id, sequence in outbox.chain_requests.unfulfilled():
            record = outbox.get(sequence)
            if record is None:
                continue
            try:
                result = self.service.consortium.queries.fulfil(
                    self.signer, request_id, record_id(self.signer.address, sequence), int(record.entry.outcome),
                    record.entry.response_hash)
            except ContractRevert as exc:
                if exc.name != "QueryRequestsInvalidStatus":  # already fulfilled before a restart
                    raise
                outbox.chain_requests.mark_fulfilled(request_id, "(already fulfilled)")
                continue
            outbox.chain_requests.mark_fulfilled(request_id, result.tx_hash)
