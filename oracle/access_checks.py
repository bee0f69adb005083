"""The oracle's on-chain access check: ``AccessGrants.checkAccess`` at the head block, cached for
that block only.

A new block carries every approve, revoke and co-approval, and moves time past every expiry, so a
result is reused only within the block it was asked at; concurrent requests for the same check at
the same block share one call (a :class:`concurrent.futures.Future` that threads and the event loop
can both wait on). The head block is read per request, or at most every
``head_poll_interval_seconds`` (set it well under the block period: 0.1 s on a 2 s QBFT chain
honours a revocation within a twentieth of a block; on the loop, one read is shared by the queries
that arrive while it is under way). A chain that cannot be asked is a refusal
(:class:`~oracle.errors.ChainUnreachable`): deny by default.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ledger.contracts.grants import AccessCheck
from ledger.deployment import Consortium
from ledger.errors import ChainUnavailable
from oracle.errors import ChainUnreachable

__all__ = ["Access", "AccessChecks"]

T = TypeVar("T")


@dataclass(frozen=True)
class Access:
    """Who asks for what: the part of a request the decision depends on."""

    requester: str
    requester_dept: int
    dataset_id: int
    grant_id: int
    fields: int
    params: dict[str, str]
    nonce: str | None  # unique per requester: the signed nonce, or "request:<id>" for on-chain requests


@dataclass
class _CheckCache:
    """Access checks at one block: each computed once, by the first request that needs it; requests
    arriving meanwhile wait for its future instead of all asking the chain at once."""

    block: int = -1
    results: dict[tuple, Future[AccessCheck]] = field(default_factory=dict)


class AccessChecks:
    """The chain's answer to ``checkAccess`` for one oracle's requests; thread-safe, and usable from
    one event loop at a time (:meth:`check_async`). Chain reads the loop hands off run on
    ``threads``."""

    def __init__(self, consortium: Consortium, head_poll_interval: float, threads: Executor) -> None:
        self.consortium = consortium
        self.head_poll_interval = head_poll_interval
        self._threads = threads
        self._cache = _CheckCache()
        self._cache_lock = threading.Lock()
        self._head = 0
        self._head_at = 0.0
        self._head_refresh: asyncio.Future[int] | None = None  # the event loop's shared head read

    @property
    def last_head(self) -> int:
        """The head block last read (0 before the first read)."""
        return self._head

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, functools.partial(fn, *args))

    def head(self) -> int:
        """The chain's latest block, asked per request or at most every ``head_poll_interval_seconds``."""
        interval = self.head_poll_interval
        now = time.monotonic()
        if interval <= 0 or now - self._head_at >= interval:
            self._head = self.consortium.chain.head()
            self._head_at = now
        return self._head

    async def head_async(self) -> int:
        """:meth:`head` for the event loop: the remembered head while it is fresh; otherwise one read
        on a chain thread, shared by the requests that arrive while it is under way (with a poll
        interval of 0 each request asks on its own)."""
        interval = self.head_poll_interval
        if interval <= 0:
            return await self._in_thread(self.head)
        if time.monotonic() - self._head_at < interval:
            return self._head
        refresh = self._head_refresh  # only ever touched on the loop thread
        if refresh is None or refresh.done() or refresh.get_loop() is not asyncio.get_running_loop():
            refresh = self._head_refresh = asyncio.ensure_future(self._in_thread(self.head))
        return await asyncio.shield(refresh)

    def check(self, access: Access) -> AccessCheck:
        """The chain's answer at the head block. Cached for that block only (a new block carries
        every approve, revoke and co-approval, and moves time past every expiry); concurrent
        requests for the same check at the same block share one call."""
        try:
            block = self.head()
        except ChainUnavailable as exc:
            raise ChainUnreachable(f"the chain cannot be reached, so access cannot be checked: {exc}") from None
        future, owner = self._cached_check(access, block)
        if owner:
            return self._ask_chain(access, block, future)
        try:
            return future.result(self.consortium.chain.timeout)
        except TimeoutError:
            raise ChainUnreachable("the chain did not answer the access check") from None

    async def check_async(self, access: Access) -> AccessCheck:
        """:meth:`check` for the event loop: a check cached at the head block is answered at once;
        the chain is asked on a chain thread."""
        try:
            block = await self.head_async()
        except ChainUnavailable as exc:
            raise ChainUnreachable(f"the chain cannot be reached, so access cannot be checked: {exc}") from None
        future, owner = self._cached_check(access, block)
        if owner:
            return await self._in_thread(self._ask_chain, access, block, future)
        if not future.done():
            # asyncio.wait, not wait_for: a timeout here must not cancel the check the others share
            await asyncio.wait([asyncio.wrap_future(future)], timeout=self.consortium.chain.timeout)
            if not future.done():
                raise ChainUnreachable("the chain did not answer the access check")
        return future.result()

    def _cached_check(self, access: Access, block: int) -> tuple[Future[AccessCheck], bool]:
        """The check of ``access`` at ``block``: its future, and True if the caller must compute it
        (with :meth:`_ask_chain`)."""
        key = _check_key(access)
        with self._cache_lock:
            if self._cache.block != block:
                self._cache = _CheckCache(block)
            future = self._cache.results.get(key)
            if future is not None:
                return future, False
            future = self._cache.results[key] = Future()
            return future, True

    def _ask_chain(self, access: Access, block: int, future: Future[AccessCheck]) -> AccessCheck:
        """Ask the chain for the check ``future`` stands for, and settle it for everyone waiting. A
        failure is not cached: the waiting requests are refused, and the next one asks again."""
        settled = False
        try:
            result = self.consortium.grants.check_access(
                access.requester, access.requester_dept, access.dataset_id, access.fields, access.grant_id, block=block
            )
            future.set_result(result)
            settled = True
            return result
        except ChainUnavailable as exc:
            raise ChainUnreachable(f"the chain cannot be reached, so access cannot be checked: {exc}") from None
        finally:
            if not settled:
                key = _check_key(access)
                with self._cache_lock:
                    if self._cache.block == block and self._cache.results.get(key) is future:
                        del self._cache.results[key]
                future.set_exception(ChainUnreachable("the chain did not answer the access check"))



def _check_key(access: Access) -> tuple:
    """What an access check depends on (besides the block)."""
    return access.requester, access.requester_dept, access.dataset_id, access.fields, access.grant_id
