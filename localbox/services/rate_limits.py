"""Per-token request rate limits (`token create --rate-limit N/s`): a token bucket per key.

A bucket holds up to N requests and refills at N per second, so a client may burst N calls and then
keep to N a second.  A refused call takes nothing from the bucket; it is told to retry once one
request's worth has refilled (at least one second, since Retry-After counts whole seconds).
`RateLimiter` keeps the buckets in memory: per process (one SQLite server), and a restart refills
them.  `SharedRateLimiter` keeps them in a store several nodes share (PostgreSQL), one row per key
updated in one atomic statement, so N nodes together admit a token's rate, not N times it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from localbox.stores.base import MetadataStore, SharedRateTx


class Limiter(Protocol):
    async def check(self, key: str, per_second: float) -> int | None:
        """None if a call under `key` may go ahead (and count it); else the seconds to wait."""
        ...


@dataclass(slots=True)
class _Bucket:
    level: float
    stamp: float


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def check(self, key: str, per_second: float) -> int | None:
        return self.admit(key, per_second)

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


class SharedRateLimiter:
    """Token buckets in the metadata store (its `SharedRateTx` capability): one write per admitted or
    refused call of a rate-limited token."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def check(self, key: str, per_second: float) -> int | None:
        def _admit(tx: object) -> int | None:
            assert isinstance(tx, SharedRateTx), "SharedRateLimiter needs a store with shared token buckets"
            return tx.admit_rate(key, per_second)

        return await self.store.run(_admit)
