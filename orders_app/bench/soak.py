"""Soak benchmark: a long run of orders at a fixed rate through the end-to-end path, watching memory and the
outbox.

    python -m orders_app.bench soak [--orders 1000000] [--rate 250] [--sample-every-s 5] [--prune-every-s 30]

Starts the service as `bench e2e` does (same market set-up, users, warm-up), then sends order i at
t0 + i / rate over keep-alive connections (open loop). Every `--sample-every-s` it records the resident
memory (RSS) of each process — the gunicorn master and each of its workers, the matching worker and its
children (the outbox relay), MariaDB, the broker — the outbox's rows, the market's open orders and the
accepted and settled counts. Every `--prune-every-s` it prunes the outbox as an operator would (the service
behind `orders-cli prune-outbox`, cut-off `--prune-older-than-minutes`). At the end it waits until every
order is settled and runs the reconciliation. Figures and time series go to bench-results/soak-*.json.

Memory drift of a process: the mean RSS of the last 10 % of the samples against the mean of the samples
from 10 % to 20 % of the run (the first tenth is start-up), in percent of the latter.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from array import array
from datetime import timedelta
from decimal import Decimal
from typing import Callable, Iterator

from sqlalchemy import func, select

from orders_app.bench.e2e import (
    MID,
    RESULTS_DIR,
    TICK,
    accounted_processes,
    machine,
    order_request,
    prepared,
    random_order,
)
from orders_app.bench.loadgen import Sample, percentile, run_paced
from orders_app.bench.memory import drift, named_processes, rss_mib
from orders_app.errors import present

# A counter-order's price crosses every price the e2e mix uses (mid ±20 ticks).
CROSSING_TICKS = 20
OUR_PROCESSES = ("API", "matching worker", "outbox relay")
BROKER = "broker"
PROGRESS_EVERY_S = 30.0


def balanced_orders(rng: random.Random, count: int, makers: list[str], takers: list[str]
                    ) -> Iterator[tuple[str, Decimal, Decimal, str]]:
    """(side, price, quantity, API key): the e2e mix's orders, each followed by a counter-order of the
    opposite side and the same quantity at a price that crosses the whole book. Bought and sold quantities
    stay equal, so the book cannot grow (an order left resting is taken by a later counter-order), and
    balances circulate. Counter-orders come from other users than the mix's orders: self-trade prevention
    would cancel a counter-order's rest and leave its quantity in the book."""
    for index in range(count):
        if index % 2 == 0:
            side, price, quantity = random_order(rng)
            yield side, price, quantity, rng.choice(makers)
        else:
            counter = "sell" if side == "buy" else "buy"
            crossing = MID - CROSSING_TICKS * TICK if counter == "sell" else MID + CROSSING_TICKS * TICK
            yield counter, crossing, quantity, rng.choice(takers)


class Every(threading.Thread):
    """Calls `action` every `interval_s` until stopped (and once more when stopped, for the last figures)."""

    def __init__(self, interval_s: float, action: Callable[[], None], name: str):
        super().__init__(name=name, daemon=True)
        self._interval_s, self._action, self._halt = interval_s, action, threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._halt.wait(self._interval_s):
                self._action()
            self._action()
        except BaseException as error:  # noqa: BLE001 — reported by the run, which must not hang on it
            self.error = error

    def stop(self) -> None:
        self._halt.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"{self.name} failed") from self.error


class Recorder:
    """The soak's time series: one row per sample, and the load client's answers as they come."""

    def __init__(self, ctx, market_id: int, seq_before: int, processes: dict[str, int], t0: float):
        self._ctx, self._market_id, self._seq_before = ctx, market_id, seq_before
        self.processes, self.t0 = processes, t0
        self.rows: list[dict] = []
        self.statuses: dict[str, int] = {}
        self.refusals: list[str] = []
        self.latencies_ms = array("d")
        self._window_ms: list[float] = []
        self.pruned_rows = 0
        self.prune_s: list[float] = []
        self._progress_drawn_s = 0.0

    def on_response(self, sample: Sample) -> None:
        key = str(sample.status)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if sample.status == 201:
            latency = (sample.finished - sample.started) * 1000
            self.latencies_ms.append(latency)
            self._window_ms.append(latency)
        elif len(self.refusals) < 5:
            self.refusals.append(f"{sample.status} {sample.body[:200]!r}")

    def sample(self) -> None:
        from orders_app.models import OPEN_STATUSES, MarketState, Order, OutboxEvent
        from orders_app.repositories.settlement import accepted_seq
        window, self._window_ms = self._window_ms, []
        with self._ctx.session_factory() as session:
            outbox_rows = session.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()
            # Both sides named: a range over (market, side, status) of the book index reads the open orders
            # only, where the market alone would read every order the soak ever placed.
            open_orders = session.execute(select(func.count()).select_from(Order).where(
                Order.market_id == self._market_id, Order.side.in_(("buy", "sell")),
                Order.status.in_(OPEN_STATUSES))).scalar_one()
            accepted = accepted_seq(session, self._market_id)
            settled = session.execute(select(MarketState.last_seq)
                                      .where(MarketState.market_id == self._market_id)).scalar_one()
        self.rows.append({
            "t_s": round(time.perf_counter() - self.t0, 1),
            "rss_mib": {name: round(rss, 1) if (rss := rss_mib(pid)) is not None else None
                        for name, pid in self.processes.items()},
            "outbox_rows": int(outbox_rows), "open_orders": int(open_orders),
            "accepted": int(accepted) - self._seq_before, "settled": int(settled) - self._seq_before,
            "accept_p99_ms": round(percentile(window, 0.99), 1) if window else None,
            "load_1m": round(os.getloadavg()[0], 2),
        })
        self._progress(self.rows[-1])

    def _progress(self, row: dict) -> None:
        if row["t_s"] - self._progress_drawn_s < PROGRESS_EVERY_S and len(self.rows) > 1:
            return
        self._progress_drawn_s = row["t_s"]
        memory = ", ".join(f"{name} {rss:.0f}" for name, rss in row["rss_mib"].items() if rss is not None)
        print(f"soak {row['t_s']:>7.0f} s: accepted {row['accepted']:,}, settled {row['settled']:,}, outbox "
              f"{row['outbox_rows']:,} rows, {row['open_orders']:,} open orders, p99 {row['accept_p99_ms']} ms; "
              f"RSS MiB: {memory}", file=sys.stderr, flush=True)

    def prune(self, older_than_minutes: int) -> None:
        from orders_app.clock import utc_now
        from orders_app.services.retention import prune_outbox
        started = time.perf_counter()
        self.pruned_rows += prune_outbox(self._ctx, utc_now() - timedelta(minutes=older_than_minutes))
        self.prune_s.append(time.perf_counter() - started)


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orders", type=_positive(int), default=1_000_000)
    parser.add_argument("--rate", type=_positive(float), default=250.0, help="orders per second, sent open loop")
    parser.add_argument("--connections", type=_positive(int), default=32)
    parser.add_argument("--users", type=_positive(int), default=64, help="half place the mix, half counter it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-every-s", type=_positive(float), default=5.0)
    parser.add_argument("--prune-every-s", type=_positive(float), default=30.0)
    parser.add_argument("--prune-older-than-minutes", type=_positive(int), default=1)


def run(args) -> dict:
    from orders_app.reconcile import reconcile

    with prepared(users=args.users, resting=0, url=None, seed=args.seed, concurrency=args.connections) as setup:
        ctx, service, market_id, rng = setup.ctx, setup.service, setup.market_id, setup.rng
        api, worker = present(service.api, "started here"), present(service.worker, "started here")
        seq_before = setup.accepted_seq()
        others = {name: pid for name, pid in accounted_processes(service).items() if name in ("MariaDB", BROKER)}
        processes = named_processes([("API: gunicorn master", api.process.pid, "API: gunicorn worker"),
                                     ("matching worker", worker.process.pid, "outbox relay")]
                                    + [(name, pid, None) for name, pid in others.items()])
        half = len(setup.keys) // 2
        requests = (order_request(side, price, quantity, key, setup.symbol, setup.host, setup.port)
                    for side, price, quantity, key in balanced_orders(rng, args.orders, setup.keys[:half],
                                                                      setup.keys[half:]))
        recorder = Recorder(ctx, market_id, seq_before, processes, time.perf_counter())
        sampler = Every(args.sample_every_s, recorder.sample, "soak-sampler")
        pruner = Every(args.prune_every_s, lambda: recorder.prune(args.prune_older_than_minutes), "soak-pruner")
        recorder.sample()
        sampler.start()
        pruner.start()
        load = run_paced(setup.host, setup.port, requests, rate=args.rate, connections=args.connections,
                         on_response=recorder.on_response)
        setup.wait_applied()
        settled_after_s = time.perf_counter() - recorder.t0
        sampler.stop()
        pruner.stop()
        with ctx.session_factory() as session:
            report = reconcile(session)
        symbol = setup.symbol
    return figures(args, recorder, load.wall_s, load.client_cpu_s, settled_after_s, report) | {
        "machine": machine(), "symbol": symbol}


def figures(args, recorder: Recorder, load_s: float, client_cpu_s: float, settled_after_s: float, report) -> dict:
    rows = recorder.rows
    accepted = len(recorder.latencies_ms)
    latencies = list(recorder.latencies_ms)
    memory = {}
    for name in recorder.processes:
        values = [row["rss_mib"][name] for row in rows if row["rss_mib"].get(name) is not None]
        found = drift(values)
        if found is not None:
            memory[name] = found | {"start": values[0], "max": max(values),
                                    "ours": name.startswith(OUR_PROCESSES)}
    return {
        "orders": args.orders, "rate_per_s": args.rate, "connections": args.connections, "users": args.users,
        "sample_every_s": args.sample_every_s, "prune_every_s": args.prune_every_s,
        "prune_older_than_minutes": args.prune_older_than_minutes,
        "load_s": round(load_s, 1), "all_settled_after_s": round(settled_after_s, 1),
        "achieved_rate_per_s": round(accepted / load_s, 1) if load_s else 0.0,
        "accepted": accepted, "non_2xx": sum(n for status, n in recorder.statuses.items() if status != "201"),
        "statuses": recorder.statuses, "refusals": recorder.refusals,
        "accept_latency_ms": {"p50": round(percentile(latencies, 0.5), 1),
                              "p99": round(percentile(latencies, 0.99), 1),
                              "max": round(max(latencies, default=0.0), 1)},
        "rss_mib": memory,
        "outbox_rows": {"max": max(row["outbox_rows"] for row in rows), "end": rows[-1]["outbox_rows"]},
        "outbox_pruned_rows": recorder.pruned_rows,
        "prune_s": {"max": round(max(recorder.prune_s, default=0.0), 2), "runs": len(recorder.prune_s)},
        "open_orders": {"max": max(row["open_orders"] for row in rows), "end": rows[-1]["open_orders"]},
        "load_average_1m": {"mean": round(sum(row["load_1m"] for row in rows) / len(rows), 1),
                            "max": max(row["load_1m"] for row in rows)},
        "load_client_cpu_percent_of_one_core": round(100 * client_cpu_s / load_s, 1) if load_s else 0.0,
        "service": f"started: gunicorn {os.environ.get('GUNICORN_WORKERS', '1')} x "
                   f"{os.environ.get('GUNICORN_WORKER_CLASS', 'gthread')} {os.environ.get('GUNICORN_THREADS', '32')}"
                   " + consumer.py",
        "reconciliation": "OK" if report.ok else "BREACHES: " + ", ".join(report.breaches),
        "series": rows,
    }


def report_text(result: dict) -> str:
    latency = result["accept_latency_ms"]
    lines = [
        f"orders                 {result['orders']:,} at {result['rate_per_s']:,.0f}/s over {result['connections']} "
        f"connections: {result['accepted']:,} accepted in {result['load_s']} s "
        f"({result['achieved_rate_per_s']:,.1f}/s), non-2xx {result['non_2xx']} {result['statuses']}",
        f"accept latency         p50 {latency['p50']} ms  p99 {latency['p99']} ms  max {latency['max']} ms "
        "(from each order's scheduled time)",
        f"all settled after      {result['all_settled_after_s']} s",
        f"outbox rows            max {result['outbox_rows']['max']:,}, end {result['outbox_rows']['end']:,} "
        f"({result['outbox_pruned_rows']:,} pruned in {result['prune_s']['runs']} runs, longest "
        f"{result['prune_s']['max']} s)",
        f"open orders (book)     max {result['open_orders']['max']:,}, end {result['open_orders']['end']:,}",
        "RSS (MiB)              after warm-up -> end (drift)",
    ]
    for name, rss in result["rss_mib"].items():
        lines.append(f"  {name:<28} {rss['after_warm_up']:>8.1f} -> {rss['end']:>8.1f}  "
                     f"({rss['drift_percent']:+.1f} %)")
    lines.append(f"machine load (1 min)   mean {result['load_average_1m']['mean']}, "
                 f"max {result['load_average_1m']['max']}")
    lines.append(f"reconciliation         {result['reconciliation']}")
    return "\n".join(lines)


def write_results(result: dict) -> str:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    return str(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders_app.bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.users < 2:
        parser.error("--users must be at least 2: one half places the mix, the other counters it")
    result = run(args)
    print(report_text(result))
    print(f"figures: {write_results(result)}", file=sys.stderr)
    return 0 if result["reconciliation"] == "OK" and result["non_2xx"] == 0 else 1
