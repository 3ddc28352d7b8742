"""What happened to each API call: a per-request record (filled in as the call goes) and the bounded
in-memory log of finished ones that `GET /admin/requests` and `localbox requests --follow` read."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CallRecord:
    route: str
    started: float = field(default_factory=time.time)
    account: str | None = None  # the caller's email, once authenticated
    status: int | None = None  # None: no response was sent (dropped)
    error: str | None = None  # the error's tag path, e.g. lookup_failed/incorrect_offset
    faults: list[str] = field(default_factory=list)  # "<rule id>:<kind>" of every fault injected
    # What the call's faults ask of the HTTP layer.
    drop: bool = False  # close the connection instead of answering
    bytes_per_second: int | None = None  # throttle the request and response bodies
    body_prefix: int | None = None  # partial_body: take only this many bytes of the request body ...
    body_fraction: float | None = None  # ... or this share of it
    reset_after: int | None = None  # connection_reset: break the connection after this many body bytes ...
    reset_fraction: float | None = None  # ... or this share of the response's Content-Length

    @property
    def resets(self) -> bool:
        return self.reset_after is not None or self.reset_fraction is not None

    def note(self, rule_id: str, kind: str, detail: str = "") -> None:
        self.faults.append(f"{rule_id}:{kind}" + (f"({detail})" if detail else ""))


# The record of the call the current task serves, for code that has no request at hand (batch hooks).
CURRENT: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar("localbox_call", default=None)


class RequestLog:
    """The last `size` finished calls, each with a sequence number; readers can wait for new ones."""

    def __init__(self, size: int = 2000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._seq = itertools.count(1)
        self._last = 0
        self._waiters: set[asyncio.Future[None]] = set()

    def add(self, record: CallRecord, finished: float) -> None:
        self._last = next(self._seq)
        self._entries.append({
            "seq": self._last,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.started))
                    + f".{int(record.started * 1000) % 1000:03d}Z",
            "route": record.route, "account": record.account, "status": record.status, "error": record.error,
            "duration_ms": round((finished - record.started) * 1000, 1), "faults": list(record.faults),
        })
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def clear(self) -> None:
        self._entries.clear()

    def since(self, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        return [e for e in self._entries if e["seq"] > after][:limit]

    @property
    def last_seq(self) -> int:
        return self._last

    async def wait(self, after: int, timeout: float, limit: int = 1000) -> list[dict[str, Any]]:
        """Entries after `after` (the oldest `limit`), waiting up to `timeout` seconds for the first one."""
        found = self.since(after, limit)
        if found or timeout <= 0:
            return found
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
        return self.since(after, limit)
