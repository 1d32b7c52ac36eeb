"""Fan-out benchmark: many WebSocket subscribers on one stream process while the e2e order load runs.

    python -m orders_app.bench stream [--clients 1000] [--orders 10000] [--concurrency 8]

Uses the stack in DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS / ADMIN_TOKEN, as `bench e2e` does. It starts
gunicorn, `python consumer.py` and `python -m orders_app.stream`, connects `--clients` subscribers (in a
process of their own) to `trades:<market>` and `book:<market>` of a fresh market, then sends the e2e load
(its order mix, load client and warm-up, done before the subscribers connect). Each push carries the worker's
settle time (`timestamp`, stamped in the settling transaction just before it commits); a subscriber's lag is
its receipt time minus that, so it includes the relay, Kafka, the stream process and the subscriber process
itself. Reported: lag percentiles over every push to every subscriber, pushes/s, the stream process's CPU (%
of one core) and resident memory, and subscribers the stream disconnected as too slow. Figures go to bench-
results/stream-*.json.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlparse

from orders_app.bench.cpu import tree_cpu_seconds
from orders_app.bench.e2e import (
    READY_TIMEOUT_S,
    log_level,
    machine,
    make_orders,
    save_figures,
    start_api_and_worker,
)
from orders_app.bench.loadgen import percentile, run_load
from orders_app.bench.memory import rss_mib
from orders_app.processes import BENCH_LOG_DIR, StreamProcess, stop_all

CONNECT_BATCH = 50
SUBSCRIBED_TIMEOUT_S = 120
DRAIN_S = 3.0  # after the last order settled, pushes still on their way
STAMP = b'"timestamp":"'


_STAMPS: dict[bytes, float] = {}  # one push goes to every subscriber: parse each time stamp once


def _lag_s(message: bytes, received: float) -> float | None:
    """Receipt time minus the `timestamp` in the push, read without parsing the whole message."""
    at = message.rfind(STAMP)
    if at < 0:
        return None
    stamp = message[at + len(STAMP):at + len(STAMP) + 24].split(b'"')[0]
    moment = _STAMPS.get(stamp)
    if moment is None:
        moment = _STAMPS[stamp] = datetime.strptime(stamp.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc).timestamp()
    return received - moment


class _Subscriber(asyncio.Protocol):
    """A minimal WebSocket client: one subscription request, then frames read straight off the socket
    (text frames scanned for their `timestamp`, pings answered). A full client library per connection cost
    the subscriber process more CPU than the stream server spent serving it, so the process measuring
    the lag would have been what delayed it."""

    def __init__(self, host: str, port: int, channels: list[str], lags: list[float], counts: dict):
        self.handshake = (f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.request = json.dumps({"op": "subscribe", "channels": channels}).encode()
        self.lags, self.counts, self.buffer, self.upgraded = lags, counts, b"", False
        self.subscribed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.handshake)

    def data_received(self, data: bytes) -> None:
        received = time.time()
        self.buffer += data
        if not self.upgraded:
            _, separator, rest = self.buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            self.upgraded, self.buffer = True, rest
            self._send(0x1, self.request)
            self.subscribed.set_result(True)
        buffer, offset = self.buffer, 0
        while len(buffer) - offset >= 2:
            opcode, length, start = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F, offset + 2
            if length == 126:
                length, start = int.from_bytes(buffer[start:start + 2], "big"), start + 2
            elif length == 127:
                length, start = int.from_bytes(buffer[start:start + 8], "big"), start + 8
            if len(buffer) < start + length:
                break
            payload = buffer[start:start + length]
            offset = start + length
            if opcode == 0x1:
                self.counts["messages"] += 1
                lag = _lag_s(payload, received)
                if lag is not None:
                    self.lags.append(lag)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.counts["too_slow" if code == 1008 else "other"] += 1
        self.buffer = buffer[offset:]

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked client frame (the mask is zero: clients must mask, any key will do)."""
        length = len(payload)
        header = bytes([0x80 | opcode]) + (bytes([0x80 | length]) if length < 126
                                           else bytes([0x80 | 126]) + length.to_bytes(2, "big"))
        self.transport.write(header + b"\0\0\0\0" + payload)


def subscribers_main(host: str, port: int, channels: list[str], clients: int, ready, stop, results) -> None:
    """Process entry point: `clients` connections, each subscribed to `channels`, recording lags."""
    lags: list[float] = []
    counts = {"messages": 0, "too_slow": 0, "other": 0}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transports = []
        for start in range(0, clients, CONNECT_BATCH):
            made = [await loop.create_connection(lambda: _Subscriber(host, port, channels, lags, counts), host, port)
                    for _ in range(min(CONNECT_BATCH, clients - start))]
            await asyncio.gather(*(protocol.subscribed for _, protocol in made))
            transports += [transport for transport, _ in made]
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for transport in transports:
            transport.abort()

    cpu_started = time.process_time()
    asyncio.run(main())
    results.put({"lags": lags, "closed": {"too_slow": counts["too_slow"], "other": counts["other"]},
                 "messages": counts["messages"], "cpu_s": time.process_time() - cpu_started})


def run(args) -> dict:
    from orders_app.bench.e2e import SETTLE_TIMEOUT_S, SeqPoller, _wait_applied, _warm_up
    from orders_app.bootstrap import bootstrap
    from orders_app.config import Settings
    from orders_app.messages import Fund
    from orders_app.services.funding import create_user, fund
    from orders_app.services.markets import add_market

    ctx = bootstrap(Settings.from_env({"LOG_LEVEL": "WARNING"}, needs_admin_token=False), role="bench").ctx
    symbol = "W" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    market = f"{symbol}-{ctx.settings.quote_currency}"
    keys = []
    for _ in range(args.users):
        user, key = create_user("bench", ctx)
        for asset, amount in (("USD", "1000000000"), (symbol, "1000000")):
            fund(Fund(user["id"], asset, Decimal(amount), "deposit"), ctx)
        keys.append(key)
    api, worker = start_api_and_worker()
    try:
        stream = StreamProcess("bench-stream", log_dir=BENCH_LOG_DIR, ready_timeout_s=READY_TIMEOUT_S,
                               LOG_LEVEL=log_level())
    except BaseException:
        stop_all(api, worker)
        raise
    spawn = multiprocessing.get_context("spawn")
    ready, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
    channels = [f"trades:{market}", f"book:{market}"]
    subscribers = spawn.Process(target=subscribers_main, name="subscribers",
                                args=("127.0.0.1", stream.port, channels, args.clients, ready, stop, results))
    try:
        parsed = urlparse(api.url)
        host, http_port = parsed.hostname or "127.0.0.1", parsed.port or 80
        rng = random.Random(args.seed)
        poller = SeqPoller(ctx, market_id)
        poller.start()
        _warm_up(ctx, poller, market_id, rng, keys, symbol, host, http_port, args.concurrency)
        subscribers.start()
        if not ready.wait(SUBSCRIBED_TIMEOUT_S):
            raise RuntimeError(f"{args.clients} subscribers did not connect in {SUBSCRIBED_TIMEOUT_S}s")
        rss_idle = rss_mib(stream.process.pid)
        before = stream.health()
        cpu_before, t0, load_before = tree_cpu_seconds(stream.process.pid), time.perf_counter(), os.getloadavg()[0]
        load = run_load(host, http_port, iter(make_orders(rng, args.orders, keys, symbol, host, http_port)),
                        concurrency=args.concurrency)
        _wait_applied(ctx, poller, market_id, timeout_s=SETTLE_TIMEOUT_S)
        poller.stop()
        time.sleep(DRAIN_S)  # pushes of the last batches are still on their way: a fixed, reported wait
        wall_s = time.perf_counter() - t0
        cpu_s, after = tree_cpu_seconds(stream.process.pid) - cpu_before, stream.health()
        rss_loaded, load_after = rss_mib(stream.process.pid), os.getloadavg()[0]
        stop.set()
        measured = results.get(timeout=120)
        subscribers.join(timeout=60)
    finally:
        stop.set()
        if subscribers.is_alive():
            subscribers.kill()
        stop_all(stream, api, worker)
    lags_ms = [lag * 1000 for lag in measured["lags"]]
    accepted = sum(1 for sample in load.samples if sample.status == 201)
    return {
        "clients": args.clients, "channels_per_client": len(channels), "orders": args.orders,
        "accepted": accepted, "concurrency": args.concurrency, "users": args.users,
        "accepted_orders_per_s": round(accepted / load.wall_s, 1), "measured_s": round(wall_s, 2),
        "pushes": after["pushed"] - before["pushed"], "events_from_kafka": after["events"] - before["events"],
        "pushes_per_s": round((after["pushed"] - before["pushed"]) / wall_s, 1),
        "received_by_subscribers": measured["messages"], "lag_samples": len(lags_ms),
        "push_lag_ms": {"p50": round(percentile(lags_ms, 0.5), 1), "p95": round(percentile(lags_ms, 0.95), 1),
                        "p99": round(percentile(lags_ms, 0.99), 1), "max": round(max(lags_ms, default=0), 1)},
        "stream_cpu_percent_of_one_core": round(100 * cpu_s / wall_s, 1),
        "stream_rss_mib": {"connected_idle": round(rss_idle or 0, 1), "after_load": round(rss_loaded or 0, 1)},
        "subscriber_process_cpu_percent_of_one_core": round(100 * measured["cpu_s"] / wall_s, 1),
        "disconnected_too_slow": after["too_slow_disconnects"], "subscribers_closed": measured["closed"],
        "machine": machine(), "market": market,
        "load_average_1m": {"before": round(load_before, 1), "after": round(load_after, 1)},
    }


def report_text(figures: dict) -> str:
    lag = figures["push_lag_ms"]
    return "\n".join([
        f"subscribers            {figures['clients']:,} x {figures['channels_per_client']} channels "
        "on one stream process",
        f"load                   {figures['accepted']:,} orders accepted at {figures['accepted_orders_per_s']:,.0f}/s "
        f"({figures['concurrency']} connections)",
        f"pushes                 {figures['pushes']:,} ({figures['pushes_per_s']:,.0f}/s) from "
        f"{figures['events_from_kafka']:,} Kafka events; received {figures['received_by_subscribers']:,}",
        f"push lag               p50 {lag['p50']} ms  p95 {lag['p95']} ms  p99 {lag['p99']} ms  max {lag['max']} ms",
        f"stream process         {figures['stream_cpu_percent_of_one_core']} % of one core, RSS "
        f"{figures['stream_rss_mib']['connected_idle']} MiB idle -> {figures['stream_rss_mib']['after_load']} MiB",
        f"subscriber process     {figures['subscriber_process_cpu_percent_of_one_core']} % of one core",
        f"too slow, disconnected {figures['disconnected_too_slow']}",
        f"machine load (1 min)   {figures['load_average_1m']['before']} before, "
        f"{figures['load_average_1m']['after']} after "
        f"on {figures['machine']['cpus']} CPUs",
    ])


def main(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m orders_app.bench stream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    figures = run(args)
    print(report_text(figures))
    print(f"figures: {save_figures(figures, 'stream')}")
    return 0
