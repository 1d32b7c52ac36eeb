"""An open-loop load client: requests leave at a fixed rate whatever the server does.

Request i is due at t0 + i / rate. Its latency is counted from that scheduled moment, not from when it was
sent: a closed-loop client waits for answers before sending more, so a stalled server also stalls the
client and the orders that users would have sent meanwhile are never measured (coordinated omission).
Here they are sent on time anyway and their wait shows as latency.

Each request goes out on an idle keep-alive connection, or on a new one while fewer than `connections_max`
are open; only when all of them are busy does it wait for one, and then it counts as late to send. New
connections are opened only when a request is ready to go on them: gunicorn's gthread worker gives a
fresh connection a thread until its first request arrives, so idle pre-opened ones would hold its threads.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from orders_app.bench.loadgen import Sample, read_response

CONNECTIONS_MAX = 512
# Below gunicorn's keep-alive (5 s, gunicorn.conf.py): a connection the server is about to close could take
# a request and then be reset, which would count as the service failing an order.
IDLE_REUSE_MAX_S = 2.0


def due_offsets_s(count: int, rate_per_s: float) -> list[float]:
    """When each of `count` requests is due, in seconds after the start: evenly spaced at the rate."""
    if rate_per_s <= 0:
        raise ValueError(f"the rate must be positive, got {rate_per_s}")
    return [index / rate_per_s for index in range(count)]


@dataclass(frozen=True)
class ScheduledSample(Sample):
    """A request's timings, `scheduled` being the moment it was due (`started`: when it was sent)."""
    scheduled: float = 0.0


def latencies_from_schedule_ms(samples: Iterable[ScheduledSample]) -> list[float]:
    return [(sample.finished - sample.scheduled) * 1000 for sample in samples]


NEW = object()  # ConnectionPool.take: open a new connection for this request
WAIT = object()  # ConnectionPool.take: every allowed connection is busy


class ConnectionPool:
    """Which connection the next request goes out on, and the counts the report shows. Pure bookkeeping:
    connections are opaque objects, opened and closed by the caller, and `now` is given.

    Idle connections are reused most recently used first, so that the ones a burst opened stay unused and
    expire, rather than every connection being kept barely alive. One idle for longer than `idle_max_s` is
    not reused but handed back in `expired` for the caller to close.
    """

    def __init__(self, connections_max: int = CONNECTIONS_MAX, idle_max_s: float = IDLE_REUSE_MAX_S):
        self.connections_max, self.idle_max_s = connections_max, idle_max_s
        self.idle: list[tuple[Any, float]] = []  # ((reader, writer), idle since)
        self.expired: list = []
        self.open_count = 0
        self.opened = 0
        self.peak_open = 0
        self.late_sends = 0

    def take(self, now: float, *, already_late: bool = False):
        """An idle connection, NEW (the caller opens one; it counts as open from now) or WAIT (the caller
        waits for a release and asks again with `already_late=True`, so a request is counted late once)."""
        while self.idle:
            connection, idle_since = self.idle.pop()
            if now - idle_since <= self.idle_max_s:
                return connection
            self.expired.append(connection)
            self.open_count -= 1
        if self.open_count < self.connections_max:
            self.open_count += 1
            self.opened += 1
            self.peak_open = max(self.peak_open, self.open_count)
            return NEW
        if not already_late:
            self.late_sends += 1
        return WAIT

    def give_back(self, connection, now: float) -> None:
        self.idle.append((connection, now))

    def discard(self) -> None:
        """A connection taken (or opened) was closed, by either side."""
        self.open_count -= 1


@dataclass
class RateResult:
    samples: list[ScheduledSample] = field(default_factory=list)
    t0: float = 0.0  # time.perf_counter() at which request 0 was due
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    connections_opened: int = 0
    connections_peak: int = 0
    late_sends: int = 0


class _Sender:
    def __init__(self, host: str, port: int, pool: ConnectionPool, samples: list[ScheduledSample]):
        self.host, self.port, self.pool, self.samples = host, port, pool, samples
        self.released = asyncio.Condition()

    async def _connection(self):
        choice = self.pool.take(time.perf_counter())
        while True:
            for _, writer in self.pool.expired:
                writer.close()
            self.pool.expired.clear()
            if choice is WAIT:
                async with self.released:
                    await self.released.wait()
                choice = self.pool.take(time.perf_counter(), already_late=True)
                continue
            if choice is NEW:
                return None
            reader, writer = choice
            if not reader.at_eof():
                return choice
            writer.close()  # the server closed it while it was idle
            self.pool.discard()
            choice = self.pool.take(time.perf_counter(), already_late=True)

    async def send(self, raw: bytes, scheduled: float) -> None:
        connection = await self._connection()
        sent = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection(self.host, self.port)
            reader, writer = connection
            writer.write(raw)
            status, body, close = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, body, close = 0, b"", True
        self.samples.append(ScheduledSample(sent, time.perf_counter(), status, body, scheduled))
        if close:
            if connection is not None:
                connection[1].close()
            self.pool.discard()
        else:
            self.pool.give_back(connection, time.perf_counter())
        async with self.released:
            self.released.notify()


def run_fixed_rate(host: str, port: int, requests: list[bytes], *, rate_per_s: float,
                   connections_max: int = CONNECTIONS_MAX) -> RateResult:
    """Send `requests` at `rate_per_s`, each when it is due, and wait for every answer."""
    result = RateResult()
    pool = ConnectionPool(connections_max)

    async def main() -> None:
        sender = _Sender(host, port, pool, result.samples)
        in_flight = set()
        result.t0 = time.perf_counter()
        for raw, offset in zip(requests, due_offsets_s(len(requests), rate_per_s), strict=True):
            scheduled = result.t0 + offset
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(sender.send(raw, scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        while in_flight:
            await asyncio.gather(*list(in_flight))
        for (_, writer), _ in pool.idle:
            writer.close()

    cpu_started = time.process_time()
    asyncio.run(main())
    result.wall_s = time.perf_counter() - result.t0
    result.client_cpu_s = time.process_time() - cpu_started
    result.connections_opened, result.connections_peak = pool.opened, pool.peak_open
    result.late_sends = pool.late_sends
    return result
