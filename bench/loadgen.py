"""A cheap asyncio load client for small HTTP/1.1 requests: closed loop (N clients), open loop (fixed rate).

Why not threads + ``http.client``: at thousands of requests per second the client would take a core from the
server it measures.  Here each connection is an ``asyncio.Protocol`` on uvloop (when installed) that writes
pre-built request bytes and only parses the status line and Content-Length of the answer, so the client
costs a few microseconds per request; its CPU is reported next to every figure anyway.

- ``closed_loop``: ``clients`` connections, each sending its next request as soon as the previous answer is
  complete - the maximum throughput at that concurrency, with the latency it comes with.
- ``fixed_rate``: requests are dispatched on a fixed schedule whatever the answers do (open loop), each on an
  idle kept-alive connection (a new one is opened when none is idle), so a slow answer does not delay the
  next request.  Latency runs from dispatch to the end of the answer, including any wait for a connection;
  how late the dispatcher was against the schedule is reported separately (``lag``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

T = TypeVar("T")

# A fixed-rate dispatcher later than this (p99) against its schedule shared the cores with other work: on an
# idle machine it stays near 1 ms (uvloop timers tick in milliseconds).
BUSY_LAG_MS = 2.0

_HEADER_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


def build_request(route: str, token: str, body: bytes) -> bytes:
    """A complete POST /2/<route> request with a JSON body, as a Dropbox RPC client sends it."""
    head = (
        f"POST /2/{route} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; answers are counted, not kept."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None
        self._head = bytearray()
        self._remaining = -1  # body bytes still to come; -1 while reading the head
        self._status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._remaining < 0:
            self._head += data
            end = self._head.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(self._head[:end]).lower()
            self._status = int(head[9:12])
            at = head.find(_LENGTH)
            if at < 0:
                self._fail(ConnectionError(f"answer without content-length: {head[:200]!r}"))
                return
            value_start = at + len(_LENGTH)
            value_end = head.find(b"\r\n", value_start)
            length = int(head[value_start : value_end if value_end >= 0 else len(head)])
            self._remaining = length - (len(self._head) - end - len(_HEADER_END))
            self._head.clear()
        else:
            self._remaining -= len(data)
        if self._remaining <= 0:
            self._remaining = -1
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(self._status)

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._fail(exc or ConnectionError("server closed the connection"))

    async def request(self, data: bytes) -> int:
        """Sends one request; returns the HTTP status once the whole answer has arrived."""
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _connect(port: int) -> _Conn:
    _, conn = await asyncio.get_running_loop().create_connection(_Conn, "127.0.0.1", port)
    return conn


@dataclass
class LoadResult:
    """What one load phase measured; latencies in seconds, in completion order."""

    seconds: float  # wall time from the first dispatch to the last answer
    latencies: list[float] = field(default_factory=list)
    errors: int = 0  # answers that were not 200, and connection failures
    client_cpu_s: float = 0.0  # CPU time of this (client) process during the phase
    lag: list[float] = field(default_factory=list)  # fixed rate: dispatch time minus scheduled time
    connections: int = 0
    dispatch_s: float = 0.0  # fixed rate: from the first to the last dispatch plus one interval

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float, values: list[float] | None = None) -> float:
        """Nearest-rank percentile (q in 0..100) in milliseconds."""
        data = sorted(self.latencies if values is None else values)
        if not data:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(data)))
        return data[rank - 1] * 1000

    @property
    def answered_rate(self) -> float:
        """Fixed rate: answered requests per second of the dispatch schedule (the rate asked for if the
        dispatcher kept pace and every request was answered); closed loop: ``rate``."""
        return self.requests / self.dispatch_s if self.dispatch_s > 0 else self.rate

    @property
    def client_cpu_pct(self) -> float:
        return 100 * self.client_cpu_s / self.seconds if self.seconds > 0 else 0.0


async def _closed_loop(port: int, requests: Sequence[bytes], clients: int, seconds: float) -> LoadResult:
    conns = [await _connect(port) for _ in range(clients)]
    result = LoadResult(0.0, connections=clients)
    cpu0, start = time.process_time(), time.perf_counter()
    deadline = start + seconds

    async def client(index: int, conn: _Conn) -> None:
        i = index * 7919  # each client walks the request list from its own offset
        while time.perf_counter() < deadline:
            if not await _timed(conn, requests[i % len(requests)], time.perf_counter(), result):
                return
            i += 1

    await asyncio.gather(*(client(i, conn) for i, conn in enumerate(conns)))
    result.seconds = time.perf_counter() - start
    result.client_cpu_s = time.process_time() - cpu0
    for conn in conns:
        conn.close()
    return result


async def _timed(conn: _Conn, data: bytes, t0: float, result: LoadResult) -> bool:
    """Send one request and record its latency from `t0`; False when the connection broke."""
    try:
        status = await conn.request(data)
    except ConnectionError:
        result.errors += 1
        return False
    result.latencies.append(time.perf_counter() - t0)
    if status != 200:
        result.errors += 1
    return True


async def _fixed_rate(
    port: int, requests: Sequence[bytes], rate: float, seconds: float, warm_conns: int, max_conns: int
) -> LoadResult:
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    opened = [await _connect(port) for _ in range(warm_conns)]
    for conn in opened:
        idle.put_nowait(conn)
    result = LoadResult(0.0)
    tasks: set[asyncio.Task[None]] = set()

    async def fire(data: bytes) -> None:
        t0 = time.perf_counter()
        if idle.empty() and len(opened) < max_conns:
            opened.append(await _connect(port))
            conn = opened[-1]
        else:
            conn = await idle.get()
        if await _timed(conn, data, t0, result):
            idle.put_nowait(conn)

    total = max(1, int(rate * seconds))
    cpu0, start = time.process_time(), time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.lag.append(time.perf_counter() - scheduled)
        task = asyncio.create_task(fire(requests[i % len(requests)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    result.dispatch_s = time.perf_counter() - start + 1 / rate
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    result.client_cpu_s = time.process_time() - cpu0
    result.connections = len(opened)
    for conn in opened:
        conn.close()
    return result


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs ``coro`` on uvloop when installed (as the server does), else on the default loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def closed_loop(port: int, requests: Sequence[bytes], clients: int, seconds: float) -> LoadResult:
    """``clients`` connections, each sending back to back for ``seconds``."""
    return _run(_closed_loop(port, requests, clients, seconds))


def fixed_rate(
    port: int,
    requests: Sequence[bytes],
    rate: float,
    seconds: float,
    warm_conns: int = 8,
    max_conns: int = 64,
) -> LoadResult:
    """``rate`` requests per second for ``seconds``, open loop, on up to ``max_conns`` connections."""
    return _run(_fixed_rate(port, requests, rate, seconds, warm_conns, max_conns))
