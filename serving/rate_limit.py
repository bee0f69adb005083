"""Per-caller rate limits of govshare's services: the ``limits`` library's moving window, in memory.

A limit is written as ``limits`` parses it: ``"60/minute"``, ``"10 per second"``, ``"1000/hour"``
(one rate; the number must be at least 1). :class:`RateLimit` counts, per key (an account the
caller has proven), the requests allowed in the last window and refuses one more until the oldest
leaves it; the refusal says how long that is (the ``Retry-After`` the services answer with).

Why the moving window: it is exact (no burst of twice the limit across a window's edge, as a fixed
window allows, and no clock-aligned windows, as ``limits``' sliding-window counter keeps), and its
memory is bounded by the limit per key. Refused requests are not counted, so a caller over the
limit gets its next request as soon as the window has room. The counts live in the process's
memory: a restart forgets them, and each process of a service counts on its own.

Cost (``scripts/bench/rate_limit.py``): a few microseconds per request on this project's hosts
(``bench/README.md``), against the oracle's ~0.5 ms of CPU per query.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

__all__ = ["RateLimit", "parse_rate", "retry_after_header"]


def parse_rate(spec: str) -> RateLimitItem:
    """The rate ``spec`` names (``"60/minute"``); ``ValueError`` with what is wrong otherwise."""
    if not isinstance(spec, str) or ";" in spec or "," in spec:
        raise ValueError(f"a rate is one '<count>/<unit>' such as '60/minute', found {spec!r}")
    try:
        item = parse(spec)
    except ValueError:
        raise ValueError(f"not a rate: {spec!r} (write e.g. '60/minute', '10 per second', '1000/hour')") from None
    if item.amount < 1:
        raise ValueError(f"a rate allows at least 1 request, found {spec!r}")
    return item


class RateLimit:
    """One rate, counted per key in this process. Thread-safe (``limits``' memory storage locks per key)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.item = parse_rate(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def acquire(self, key: str) -> float | None:
        """Count one request of ``key`` and return None if the window has room for it; else count
        nothing and return the seconds until it will have room (> 0)."""
        if self._limiter.hit(self.item, key):
            return None
        reset_at, _ = self._limiter.get_window_stats(self.item, key)
        return max(reset_at - time.time(), 0.001)

    def __repr__(self) -> str:
        return f"RateLimit({self.spec!r})"


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value (whole seconds, at least 1) for a wait of ``seconds``."""
    return str(max(1, math.ceil(seconds)))
