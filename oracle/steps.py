"""The I/O steps of the oracle's decision path, and the two drivers that run it.

The path (:meth:`oracle.service.OracleService._serve`) is a generator: it yields a :class:`Step`
for each piece of I/O it needs and does everything else itself. :func:`run_blocking` performs each
step on the calling thread (HTTP clients of the blocking kind, the on-chain request follower);
:func:`run_on_loop` awaits each on the running event loop (the HTTP edge: every query on one loop
thread, relaying to the department API without a thread per request). A step's refusal (an
:class:`~oracle.errors.OracleError`) is thrown back into the path at the point that asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator

from ledger.contracts.grants import AccessCheck
from oracle.access_checks import Access
from oracle.errors import OracleError
from oracle.outbox_file import RecordWrite
from oracle.relay import DepartmentApi

if TYPE_CHECKING:
    from oracle.service import DatasetInfo, OracleService, QueryAnswer

__all__ = ["CheckAccess", "Fetch", "LookUpDataset", "Path", "Step", "WriteRecord", "run_blocking", "run_on_loop"]


class Step:
    """One piece of I/O the decision path needs. :meth:`run` performs it blocking; :meth:`run_async`
    on the event loop. Either raises an :class:`OracleError`, which the driver throws back into the
    path at the point that asked."""

    def run(self, service: OracleService) -> Any:
        raise NotImplementedError

    async def run_async(self, service: OracleService) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class LookUpDataset(Step):
    """The dataset's catalog entry, read from the chain on its first query (then kept)."""

    dataset_id: int

    def run(self, service: OracleService) -> DatasetInfo:
        return service.dataset_info(self.dataset_id)

    async def run_async(self, service: OracleService) -> DatasetInfo:
        return await service.in_chain_thread(service.dataset_info, self.dataset_id)


@dataclass(frozen=True, slots=True)
class CheckAccess(Step):
    """The chain's answer for this access at the head block (cached for that block)."""

    access: Access

    def run(self, service: OracleService) -> AccessCheck:
        return service.checks.check(self.access)

    async def run_async(self, service: OracleService) -> AccessCheck:
        return await service.checks.check_async(self.access)


@dataclass(frozen=True, slots=True)
class Fetch(Step):
    """The department API's records for the parameters."""

    relay: DepartmentApi
    params: dict[str, str]

    def run(self, service: OracleService) -> list[dict]:
        return self.relay.fetch(self.params)

    async def run_async(self, service: OracleService) -> list[dict]:
        return await self.relay.fetch_async(self.params)


@dataclass(frozen=True, slots=True)
class WriteRecord(Step):
    """A served access written to the outbox (with its nonce, within its quota): its sequence, or
    :class:`NonceReplayed` / :class:`QuotaUsedUp`. Awaited, it is written together with the other
    answers' records the event loop reaches at the same time, in one transaction (group commit)."""

    write: RecordWrite

    def run(self, service: OracleService) -> int:
        w = self.write
        return service.outbox.record(w.entry, request_salt=w.request_salt, response_salt=w.response_salt, nonce=w.nonce,
                                     quota_room=w.quota_room, checked_at_block=w.checked_at_block)

    async def run_async(self, service: OracleService) -> int:
        return await service.write_with_others(self.write)


#: The decision path: yields steps, is sent their results (or thrown their errors), returns the answer.
Path = Generator[Step, Any, "QueryAnswer"]


def run_blocking(service: OracleService, path: Path) -> QueryAnswer:
    """Drive ``path`` to its answer, performing each step blocking on this thread."""
    result: Any = None
    error: OracleError | None = None
    while True:
        try:
            step = path.send(result) if error is None else path.throw(error)
        except StopIteration as done:
            return done.value
        result, error = None, None
        try:
            result = step.run(service)
        except OracleError as exc:
            error = exc


async def run_on_loop(service: OracleService, path: Path) -> QueryAnswer:
    """Drive ``path`` to its answer on the running event loop, awaiting each step."""
    result: Any = None
    error: OracleError | None = None
    while True:
        try:
            step = path.send(result) if error is None else path.throw(error)
        except StopIteration as done:
            return done.value
        result, error = None, None
        try:
            result = await step.run_async(service)
        except OracleError as exc:
            error = exc
