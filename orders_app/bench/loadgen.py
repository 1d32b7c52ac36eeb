"""A small HTTP/1.1 load client: N keep-alive connections on asyncio, prebuilt requests, per-request timings.

Written for the benchmarks rather than taken from a library so that it costs little CPU on a 2-core box
shared with the server (the report shows its CPU use), keeps connections alive (and reconnects when a
server closes them, as gunicorn's sync workers do), and records each request's start, end, status and
body for the caller to read order ids from.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator


@dataclass(frozen=True)
class Sample:
    started: float  # time.perf_counter()
    finished: float
    status: int  # 0: the connection failed
    body: bytes


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def client_cpu_percent(self) -> float:
        return 100 * self.client_cpu_s / self.wall_s if self.wall_s else 0.0


def build_request(host: str, port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(host: str, port: int, raw: bytes, stream: Stream | None) -> tuple[int, bytes, Stream | None]:
    """One request on `stream` (None: connect first): its status (0: the connection failed), its body, and the
    stream to send the next one on (None when the server closed it or it failed)."""
    try:
        if stream is None:
            stream = await asyncio.open_connection(host, port)
        stream[1].write(raw)
        status, body, close = await read_response(stream[0])
    except (OSError, asyncio.IncompleteReadError, ValueError):
        status, body, close = 0, b"", True
    if close and stream is not None:
        stream[1].close()
        stream = None
    return status, body, stream


async def _connection(host: str, port: int, requests: Iterator[bytes], samples: list[Sample],
                      deadline: float | None, on_done: Callable[[], None] | None) -> None:
    stream = None
    for raw in requests:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        status, body, stream = await _exchange(host, port, raw, stream)
        samples.append(Sample(started, time.perf_counter(), status, body))
        if on_done is not None:
            on_done()
    if stream is not None:
        stream[1].close()


def run_load(host: str, port: int, requests: Iterator[bytes], *, concurrency: int,
             duration_s: float | None = None, on_done: Callable[[], None] | None = None) -> LoadResult:
    """Send `requests` (shared by all connections, each taken once) over `concurrency` connections, until
    they run out or `duration_s` passes."""
    result = LoadResult()

    async def main() -> None:
        deadline = time.perf_counter() + duration_s if duration_s is not None else None
        await asyncio.gather(*(_connection(host, port, requests, result.samples, deadline, on_done)
                               for _ in range(concurrency)))

    cpu_started, wall_started = time.process_time(), time.perf_counter()
    asyncio.run(main())
    result.wall_s = time.perf_counter() - wall_started
    result.client_cpu_s = time.process_time() - cpu_started
    return result


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (not necessarily sorted); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def run_paced(host: str, port: int, requests: Iterator[bytes], *, rate: float, connections: int,
              on_response: Callable[[Sample], None]) -> LoadResult:
    """Open loop: request i is due at t0 + i / rate whatever the service does, sent on the first free one of
    `connections` keep-alive connections. Each Sample's `started` is the request's due time, so a slow
    service shows as latency instead of as fewer requests (no coordinated omission). Samples go to
    `on_response` and are not kept: a soak sends millions."""
    result = LoadResult()

    async def main() -> None:
        due: asyncio.Queue = asyncio.Queue(maxsize=connections * 4)

        async def connection() -> None:
            stream = None
            while (item := await due.get()) is not None:
                scheduled, raw = item
                status, body, stream = await _exchange(host, port, raw, stream)
                on_response(Sample(scheduled, time.perf_counter(), status, body))
            if stream is not None:
                stream[1].close()

        senders = [asyncio.create_task(connection()) for _ in range(connections)]
        t0 = time.perf_counter()
        for index, raw in enumerate(requests):
            scheduled = t0 + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await due.put((scheduled, raw))
        for _ in senders:
            await due.put(None)
        await asyncio.gather(*senders)

    cpu_started, wall_started = time.process_time(), time.perf_counter()
    asyncio.run(main())
    result.wall_s = time.perf_counter() - wall_started
    result.client_cpu_s = time.process_time() - cpu_started
    return result
