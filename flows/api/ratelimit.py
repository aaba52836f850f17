"""A token bucket per exhibit: ``burst`` requests at once, refilled at ``rate_per_s``.

Written here because the API needs only this much, in memory, per process; a site running several API
processes behind one balancer sets the limit per process (README, "Exhibit API").
"""

from __future__ import annotations

import threading
import time

from flows.api.errors import RateLimited


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one request of ``key``'s allowance, or raise :class:`RateLimited` with when to retry."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate_per_s
                raise RateLimited(
                    f"exhibit {key} is over its limit of {self.rate_per_s * 60:g} requests a minute", wait
                )
            self._buckets[key] = (tokens - 1.0, now)
