"""The cloud's per-client request budget (10,000 requests / 5 minutes per source IP), when enabled.

Why a sliding window: clients that pace themselves (fieldsafe's fleet listing, particle-cli) must
see a 429 with an honest ``Retry-After`` (the seconds until the oldest counted request leaves the
window), not a fixed-window reset that lets bursts of twice the budget through.
Requests answered 429 are not counted, so a client that waits Retry-After gets through.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fieldsafe.emulator.state import RateLimit


class RateLimiter:
    """``check(client)`` counts one request and answers None, or the seconds to wait (then not counted)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def check(self, client: str) -> int | None:
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            horizon = now - self.limit.window
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= self.limit.requests:
                return max(1, math.ceil(hits[0] + self.limit.window - now))
            hits.append(now)
            return None

    def remaining(self, client: str) -> int:
        now = self._clock()
        with self._lock:
            hits = self._hits.get(client, deque())
            return self.limit.requests - sum(1 for t in hits if t > now - self.limit.window)
