"""The oracle's decision path for one signed query, in the order the issue prescribes:

1. verify the EIP-712 signature, the deadline, the parameters' commitment and (atomically with the
   record) that the nonce was never used;
2. check the grant **on chain** (``AccessGrants.checkAccess``) at a pinned block; results are cached
   only for that block, so any new block (which carries every approve, revoke or co-approval, and
   moves time past every expiry) invalidates them;
3. relay the query to the department's API;
4. keep only the granted fields, masked by the policy unless the grant names a field unmasked;
5. hash request and response with fresh salts, write the audit record to the outbox (durably)
   before answering, and answer with the data and a receipt signed by the oracle.

Denials and source failures take the same path from the point they happen: recorded with their
reason code, answered with a clear error. If the chain cannot be asked, the answer is no.

The path is written once, as a generator that yields the I/O it needs (:mod:`oracle.steps`: the
dataset's first lookup, the access check (:mod:`oracle.access_checks`), the relay, the record's
write) and does everything else itself. Two drivers run it:
:meth:`OracleService.answer` (and the on-chain request methods) performs each step blocking, on the
calling thread; :meth:`OracleService.answer_async` awaits each on the event loop, so the oracle's
HTTP server answers every query on its one loop thread, relaying to the department API without a
thread per request. (With a pool of answering threads, queries contended for the GIL, handing it
over at every socket, SQLite and ctypes call: at half the peak rate the answers fell into spells of
tens of milliseconds; see ``bench/README.md``.) Chain reads that the access-check cache cannot
answer run on a few threads of the service's own, off the loop.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, TypeVar

from ledger.contracts.audit_log import (
    ZERO_ADDRESS,
    AuditEntry,
    OracleReason,
    Outcome,
    reason_name,
    record_id,
)
from ledger.contracts.catalog import Dataset
from ledger.contracts.grants import AccessCheck, AccessReason
from ledger.deployment import Consortium
from ledger.errors import (
    CanonicalizationError,
    ChainUnavailable,
    ContractRevert,
    LedgerError,
)
from ledger.hashing import new_salt
from ledger.keys import Signer
from oracle.access_checks import Access, AccessChecks
from oracle.config import OracleConfig
from oracle.errors import (
    BadSignature,
    ChainUnreachable,
    DeadlinePassed,
    MalformedRequest,
    NonceReplayed,
    OracleError,
    QuotaUsedUp,
    RateLimited,
    SourceBadResponse,
    SourceUnavailable,
    UnknownDataset,
)
from oracle.masking import MaskingPolicy
from oracle.outbox import Outbox
from oracle.outbox_file import RecordWrite
from oracle.relay import DepartmentApi
from oracle.steps import (
    CheckAccess,
    Fetch,
    LookUpDataset,
    Path,
    WriteRecord,
    run_blocking,
    run_on_loop,
)
from protocol import commitments
from protocol.commitments import ZERO_HASH
from protocol.query import InvalidSignature, SignedQuery, recover_query_signer
from protocol.receipt import Receipt
from serving.rate_limit import RateLimit


class AccessDenied(OracleError):
    """The chain said no (``reason`` is the AccessReason), or the oracle's own quota count did."""

    http_status = 403

    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotYetAnchored(OracleError):
    """Strict mode: the record is durable but not on chain in time, so the data is withheld."""

    reason, http_status = int(OracleReason.WITHHELD), 503


@dataclass(frozen=True)
class QueryAnswer:
    status: int
    receipt: Receipt
    records: list[dict[str, Any]] | None = None
    error: str | None = None
    reason_name: str | None = None
    retry_after: float | None = None  # RATE_LIMITED: seconds until the requester's window has room
    # strict mode, answered with ``hold=False``: the records may leave only once the record with the
    # receipt's sequence is on chain; otherwise call this to record and get the withheld answer.
    withhold: Callable[[], QueryAnswer] | None = field(default=None, repr=False, compare=False)


#: Given the complete answer to an on-chain request, what to keep for its requester:
#: (request id, requester, encrypted answer). Runs inside the outbox transaction of the record.
ResultKeeper = Callable[["QueryAnswer"], tuple[int, str, bytes]]


@dataclass
class _Progress:
    """How far a request got: what its audit record can truthfully name if it is refused."""

    access: Access
    dataset_id: int = 0  # set once the dataset is known to be this department's
    checked_at: int = 0
    version: int = 0
    nonce: tuple[str, str] | None = None  # set once the nonce is known to be fresh
    nonce_expires_at: float | None = None  # the signed deadline: the nonce is kept (refusing replays) until then
    keep_result: ResultKeeper | None = None  # on-chain requests: stores the answer with its record


@dataclass
class DatasetInfo:
    """A dataset this oracle serves, as first read from the catalog, with its masking and relay."""

    dataset: Dataset
    masking: MaskingPolicy
    relay: DepartmentApi


T = TypeVar("T")

#: Threads for the chain reads the event-loop driver hands off (access checks the cache cannot
#: answer, the head, a dataset's first lookup); blocking ones run on the calling thread.
CHAIN_THREADS = 4


class OracleService:
    """Answers signed queries for one department. Thread-safe."""

    def __init__(self, config: OracleConfig, consortium: Consortium, signer: Signer, outbox: Outbox) -> None:
        self.config = config
        self.consortium = consortium
        self.signer = signer
        self.outbox = outbox
        self.chain_id = consortium.chain.chain_id
        self.verifying_contract = consortium.deployment.addresses["QueryRequests"]
        dept = consortium.registry.department_by_code(config.department)
        if dept is None or not dept.active:
            raise LedgerError(f"department {config.department!r} is not a member of this consortium")
        self.dept_id = dept.id
        self._datasets: dict[int, DatasetInfo] = {}
        self._datasets_lock = threading.Lock()
        self._chain_threads = ThreadPoolExecutor(CHAIN_THREADS, thread_name_prefix="govshare-chain")
        self.checks = AccessChecks(consortium, config.head_poll_interval_seconds, self._chain_threads)
        self.rate_limit = RateLimit(config.requester_rate_limit) if config.requester_rate_limit else None
        # records waiting for their event loop's next group commit (each list only touched on its loop's thread)
        self._groups: dict[asyncio.AbstractEventLoop, list[tuple[RecordWrite, asyncio.Future[int]]]] = {}

    def close(self) -> None:
        self._chain_threads.shutdown(wait=True)
        for info in self._datasets.values():
            info.relay.close()

    async def write_with_others(self, write: RecordWrite) -> int:
        """``write``'s sequence once it is durably written, in one transaction with the other
        records that reach this point in the same turn of the event loop (the first of them
        schedules the commit; it runs after the rest joined)."""
        loop = asyncio.get_running_loop()
        written: asyncio.Future[int] = loop.create_future()
        group = self._groups.setdefault(loop, [])
        group.append((write, written))
        if len(group) == 1:
            loop.call_soon(self._commit_group, loop)
        return await written

    def _commit_group(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._groups.pop(loop, [])
        try:
            results = self.outbox.record_many([write for write, _ in group])
        except Exception as exc:  # the file failed: every answer of the group fails (nothing was written)
            for _, written in group:
                if not written.done():
                    written.set_exception(exc)
            return
        for (_, written), result in zip(group, results):
            if written.done():  # its answer was cancelled: the record stands all the same
                continue
            if isinstance(result, BaseException):
                written.set_exception(result)
            else:
                written.set_result(result)

    # ------------------------------------------------------------------ the path

    def answer(self, request: SignedQuery, *, hold: bool = True) -> QueryAnswer:
        """Answer a signed query posted over HTTP, blocking the calling thread for the chain and the
        department API. In strict mode the records leave only once the access is on chain: with
        ``hold`` this call waits for it (at most ``strict_timeout_seconds``); without it the answer
        comes back at once with ``withhold`` set, and the caller waits."""
        answer = run_blocking(self, self._answer_path(request))
        if not hold or answer.withhold is None:
            return answer
        if self.outbox.wait_anchored(answer.receipt.sequence, self.config.strict_timeout_seconds):
            return replace(answer, withhold=None)
        return answer.withhold()

    async def answer_async(self, request: SignedQuery) -> QueryAnswer:
        """:meth:`answer` on the running event loop, without ``hold`` (strict mode: the caller waits
        for the record, see :class:`oracle.app.OracleHttpApp`). Only the relay and the chain reads
        the cache cannot answer wait; everything else runs on the loop."""
        return await run_on_loop(self, self._answer_path(request))

    def answer_access(self, access: Access, request_canonical: dict[str, Any], keep_result: ResultKeeper) -> QueryAnswer:
        """Answer an access whose requester the chain already authenticated (an on-chain request:
        the transaction's sender), with ``access.nonce`` naming the request. What ``keep_result``
        makes of the answer is stored in the same transaction as its audit record, so a crash
        leaves either both or neither. The data is released when the requester fetches it (in
        strict mode only once the record is on chain), so nothing waits here."""
        request_salt = new_salt()
        request_hash = commitments.request_hash(request_canonical, request_salt)
        return run_blocking(self, self._serve(_Progress(access, keep_result=keep_result), request_hash, request_salt))

    def refuse_malformed(self, access: Access, request_canonical: dict[str, Any], message: str,
                         keep_result: ResultKeeper) -> QueryAnswer:
        """Record and answer an on-chain request whose parameters cannot be read."""
        request_salt = new_salt()
        return self._refuse(MalformedRequest(message), commitments.request_hash(request_canonical, request_salt), request_salt,
                            _Progress(access, keep_result=keep_result))

    async def in_chain_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the service's chain threads, awaited without blocking the loop."""
        return await asyncio.get_running_loop().run_in_executor(self._chain_threads, functools.partial(fn, *args))

    # ------------------------------------------------------------------ the path

    def _answer_path(self, request: SignedQuery) -> Path:
        request_salt = new_salt()
        request_hash = commitments.request_hash(request.canonical(), request_salt)
        q = request.query
        progress = _Progress(Access(ZERO_ADDRESS, q.requester_dept, q.dataset_id, 0, q.fields, request.params, None))
        try:
            requester = self._authenticate(request)
            progress.access = Access(requester, q.requester_dept, q.dataset_id, q.grant_id, q.fields, request.params, str(q.nonce))
            self._check_freshness(request)
            progress.nonce_expires_at = float(q.deadline)
            self._check_rate(requester)
        except OracleError as exc:
            return self._refuse(exc, request_hash, request_salt, progress)
        return (yield from self._serve(progress, request_hash, request_salt))

    def _serve(self, progress: _Progress, request_hash: bytes, request_salt: bytes) -> Path:
        access = progress.access
        try:
            info = self._datasets.get(access.dataset_id) or (yield LookUpDataset(access.dataset_id))
            progress.dataset_id = access.dataset_id
            info.relay.check_params(access.params)
            if access.nonce is not None:  # consumed atomically with the record; a replay fails there
                progress.nonce = (access.requester, access.nonce)
            check: AccessCheck = yield CheckAccess(access)
            progress.checked_at, progress.version = check.block_number, check.version
            if not check.granted:
                raise AccessDenied(int(check.reason), f"the grant does not allow this: {check.reason.name}")
            quota_room = check.grant.quota - check.grant.used
            if self.outbox.pending_served(access.grant_id, check.block_number) >= quota_room:  # early: spare the source
                raise QuotaUsedUp("the grant's quota is used up (counting accesses not yet on chain)")
        except OracleError as exc:
            return self._refuse(exc, request_hash, request_salt, progress)
        try:
            source_records = yield Fetch(info.relay, access.params)
        except SourceUnavailable as exc:
            return self._refuse(exc, request_hash, request_salt, progress, outcome=Outcome.SOURCE_FAILURE)
        granted = info.dataset.field_names(access.fields)
        unmasked = set(info.dataset.field_names(check.grant.unmasked_fields))
        records = info.masking.apply(source_records, granted, unmasked)
        response_salt = new_salt()
        try:
            response_hash = commitments.response_hash(records, response_salt)
        except CanonicalizationError as exc:  # e.g. floats: no exact canonical form, so no answer
            bad = SourceBadResponse(f"the department API answered values that cannot be hashed canonically: {exc}")
            return self._refuse(bad, request_hash, request_salt, progress, outcome=Outcome.SOURCE_FAILURE)
        entry = AuditEntry(access.grant_id, access.requester, progress.dataset_id, progress.version, Outcome.SERVED,
                           int(AccessReason.GRANTED), progress.checked_at, request_hash, response_hash)
        try:
            if progress.keep_result is None:
                sequence = yield WriteRecord(RecordWrite(entry, request_salt, response_salt, progress.nonce, quota_room,
                                                         progress.checked_at, progress.nonce_expires_at))
                answer = QueryAnswer(200, self._receipt(sequence, entry, request_salt, response_salt), records)
            else:  # the answer is stored with its record, in the same transaction
                answer = self._record(entry, progress, request_salt, response_salt, lambda r: QueryAnswer(200, r, records),
                                      nonce=progress.nonce, quota_room=quota_room)
        except NonceReplayed as exc:  # a replay (or the same nonce racing on another thread): no data leaves
            progress.nonce = None
            return self._refuse(exc, request_hash, request_salt, progress)
        except QuotaUsedUp as exc:  # concurrent queries took the rest of the quota meanwhile: no data leaves
            return self._refuse(exc, request_hash, request_salt, progress)
        if self.config.mode != "strict" or progress.keep_result is not None:
            return answer

        def withhold() -> QueryAnswer:
            # The served record stands (it is durable and will be anchored); a second record says
            # that nothing left after all, so the trail does not claim a release that never happened.
            withheld = replace(entry, outcome=Outcome.DENIED, reason=int(OracleReason.WITHHELD), response_hash=ZERO_HASH)
            withheld_sequence = self.outbox.record(withheld, request_salt=request_salt, response_salt=None)
            exc = NotYetAnchored(f"strict mode: the access (record {answer.receipt.sequence}) is recorded but not on chain "
                                 f"within {self.config.strict_timeout_seconds} s, so the data is withheld")
            return QueryAnswer(exc.http_status, self._receipt(withheld_sequence, withheld, request_salt, None), None,
                               exc.message, "WITHHELD")

        return replace(answer, withhold=withhold)

    # ------------------------------------------------------------------ steps

    def _authenticate(self, request: SignedQuery) -> str:
        """The requester, if the EIP-712 signature is its own."""
        query = request.query
        try:
            signer = recover_query_signer(query, request.signature, self.chain_id, self.verifying_contract)
        except InvalidSignature as exc:
            raise BadSignature(f"the signature is malformed: {exc}") from None
        if signer != query.requester:  # checksummed when the query was built
            raise BadSignature("the signature is not the requester's")
        return signer

    def _check_freshness(self, request: SignedQuery) -> None:
        query = request.query
        now = time.time()
        if query.deadline < now:
            raise DeadlinePassed("the query's deadline has passed")
        if query.deadline > now + self.config.request_deadline_max_seconds:
            raise DeadlinePassed(f"the query's deadline is more than {self.config.request_deadline_max_seconds}s away")
        if commitments.params_hash(request.params, request.params_salt) != query.params_hash:
            raise MalformedRequest("the parameters do not match the signed paramsHash")

    def _check_rate(self, requester: str) -> None:
        """Count the query against its requester's rate limit. Only after the signature is verified
        (a forged query cannot spend another account's budget) and the query is fresh; keyed by the
        signing account, which only its key holder can spend (the department is checked on chain
        later, so a department's accounts each have their own budget). A captured query replayed
        within its deadline counts against its signer (and is then refused NONCE_REPLAYED)."""
        if self.rate_limit is None:
            return
        wait = self.rate_limit.acquire(requester)
        if wait is not None:
            raise RateLimited(f"{requester} sent more signed queries than this oracle allows "
                              f"({self.rate_limit.spec}); retry in {wait:.1f} s", wait)

    def dataset_info(self, dataset_id: int) -> DatasetInfo:
        info = self._datasets.get(dataset_id)
        if info is not None:
            return info
        settings = self.config.datasets.get(dataset_id)
        if settings is None:
            raise UnknownDataset(f"this oracle serves no dataset {dataset_id}")
        try:
            dataset = self.consortium.catalog.dataset(dataset_id)
        except ContractRevert:
            raise UnknownDataset(f"dataset {dataset_id} is not in the catalog") from None
        except ChainUnavailable as exc:
            raise ChainUnreachable(f"the chain cannot be reached: {exc}") from None
        if dataset.owner_dept != self.dept_id:
            raise UnknownDataset(f"dataset {dataset_id} does not belong to this department")
        with self._datasets_lock:
            info = self._datasets.get(dataset_id)
            if info is None:
                info = DatasetInfo(dataset, MaskingPolicy.for_dataset(self.config, dataset_id, dataset.classification), DepartmentApi(settings))
                self._datasets[dataset_id] = info
        return info

    def head(self) -> int:
        """The chain's latest block as the access checks see it (see :meth:`AccessChecks.head`)."""
        return self.checks.head()

    def _refuse(
        self,
        exc: OracleError,
        request_hash: bytes,
        request_salt: bytes,
        progress: _Progress,
        *,
        outcome: Outcome = Outcome.DENIED,
    ) -> QueryAnswer:
        """Record a denial or source failure (deny by default: even when nothing else works, the
        attempt is written to the outbox and will reach the chain) and answer with the error. A query
        whose nonce its signer already used is refused as the replay it is, whatever else failed (the
        chain or the department API down as a lost answer's query is sent again): the trail then says
        that the second record of one signed query is a replay, not a second access (found by the
        fault soak, bench/README.md)."""
        access = progress.access
        if not isinstance(exc, NonceReplayed) and progress.nonce is None and access.nonce is not None \
                and access.requester != ZERO_ADDRESS and self.outbox.nonce_used(access.requester, access.nonce):
            exc, outcome = NonceReplayed("this nonce was already used by this requester"), Outcome.DENIED
        entry = AuditEntry(access.grant_id, access.requester, progress.dataset_id, progress.version, outcome,
                           int(exc.reason), progress.checked_at or self.checks.last_head, request_hash, ZERO_HASH)

        def answer_of(receipt: Receipt) -> QueryAnswer:
            return QueryAnswer(exc.http_status, receipt, None, exc.message, reason_name(exc.reason),
                               exc.retry_after if isinstance(exc, RateLimited) else None)

        try:
            return self._record(entry, progress, request_salt, None, answer_of, nonce=progress.nonce)
        except NonceReplayed as replay:  # the refusal would have used the nonce: it was used before
            progress.nonce = None
            return self._refuse(replay, request_hash, request_salt, progress)

    def _record(
        self,
        entry: AuditEntry,
        progress: _Progress,
        request_salt: bytes,
        response_salt: bytes | None,
        answer_of: Callable[[Receipt], QueryAnswer],
        *,
        nonce: tuple[str, str] | None,
        quota_room: int | None = None,
    ) -> QueryAnswer:
        """Write ``entry`` to the outbox and make the answer with its signed receipt (inside the
        same transaction as the record when an on-chain request keeps its result)."""
        made: list[QueryAnswer] = []

        def keep(sequence: int) -> tuple[int, str, bytes]:
            made.append(answer_of(self._receipt(sequence, entry, request_salt, response_salt)))
            return progress.keep_result(made[0])  # type: ignore[misc]  # only passed when set

        sequence = self.outbox.record(entry, request_salt=request_salt, response_salt=response_salt, nonce=nonce,
                                      quota_room=quota_room, checked_at_block=progress.checked_at,
                                      keep_result=keep if progress.keep_result is not None else None,
                                      nonce_expires_at=progress.nonce_expires_at if nonce is not None else None)
        return made[0] if made else answer_of(self._receipt(sequence, entry, request_salt, response_salt))

    def _receipt(self, sequence: int, entry: AuditEntry, request_salt: bytes, response_salt: bytes | None) -> Receipt:
        previous_head, head = self.outbox.take_heads(sequence)
        body = {
            "record_id": hex(record_id(self.signer.address, sequence)),
            "oracle": self.signer.address,
            "sequence": sequence,
            "dataset_id": entry.dataset_id,
            "dataset_version": entry.dataset_version,
            "grant_id": entry.grant_id,
            "requester": entry.requester,
            "outcome": int(entry.outcome),
            "reason": entry.reason,
            "checked_at_block": entry.checked_at_block,
            "request_hash": "0x" + entry.request_hash.hex(),
            "response_hash": "0x" + entry.response_hash.hex(),
            "request_salt": "0x" + request_salt.hex(),
            "response_salt": "0x" + response_salt.hex() if response_salt else "",
            # what will be anchored at this sequence, and the hash-chain head after it (the outbox
            # computed the head when it wrote the record): a mismatch on chain is then provable
            "record_hash": "0x" + entry.record_hash().hex(),
            "previous_head": "0x" + previous_head.hex(),
            "chain_head": "0x" + head.hex(),
        }
        return Receipt.signed(self.signer, **body)
