"""Per-token request rate limits (`token create --rate-limit N/s`): a token bucket per key.

A bucket holds up to N requests and refills at N per second, so a client may burst N calls and then
keep to N a second.  A refused call takes nothing from the bucket; it is told to retry once one
request's worth has refilled (at least one second, since Retry-After counts whole seconds).
Buckets live in memory: limits are per process, and a restart refills them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    level: float
    stamp: float


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, key: str, per_second: float, now: float | None = None) -> int | None:
        """None if a call under `key` may go ahead (and count it); else the seconds to wait."""
        now = time.monotonic() if now is None else now
        capacity = max(per_second, 1.0)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(capacity, now)
        bucket.level = min(capacity, bucket.level + (now - bucket.stamp) * per_second)
        bucket.stamp = now
        if bucket.level >= 1.0:
            bucket.level -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.level) / per_second))

    def _forget_full(self, now: float) -> None:
        """Drop buckets idle long enough to have refilled: forgetting them changes nothing."""
        for key in [k for k, b in self._buckets.items() if now - b.stamp > 60]:
            del self._buckets[key]
