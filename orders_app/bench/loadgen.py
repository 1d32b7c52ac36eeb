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


async def _connection(host: str, port: int, requests: Iterator[bytes], samples: list[Sample],
                      deadline: float | None, on_done: Callable[[], None] | None) -> None:
    reader = writer = None
    for raw in requests:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        try:
            if reader is None or writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(raw)
            status, body, close = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, body, close = 0, b"", True
        samples.append(Sample(started, time.perf_counter(), status, body))
        if on_done is not None:
            on_done()
        if close and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


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
