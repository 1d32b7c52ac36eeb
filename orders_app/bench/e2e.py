"""End-to-end benchmark: orders over keep-alive HTTP until every one of them is matched and settled.

    python -m orders_app.bench e2e [--orders 20000] [--concurrency 32] [--url http://127.0.0.1:3000]

Uses the stack in DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS / ADMIN_TOKEN (`./dev run` prints them; the local
`.devstack/run/env` has them). With `--url` it loads that running service (whose worker must be running);
without it, it starts gunicorn (our gunicorn.conf.py; GUNICORN_* env) and `python consumer.py` on that
stack and stops them afterwards. It adds a market of its own (so each run starts from an empty book, or a
book of `--resting` orders far from the price), users with deposits, then sends the orders — buys and
sells around a mid price, about half of them trading — and reports accepted orders/s, accept latency
percentiles, the time until the worker applied the last one (settled orders/s), the settlement lag per
order (from its 201 to the worker's commit of its sequence number, sampled every 20 ms), the load
client's CPU, the ceiling (best trivial gunicorn set-up, same client) and the ratio to it, and the
reconciliation. Figures go to bench-results/e2e-*.json and a plot to bench-results/e2e-*.svg. With
`--batch N` the same orders go N per request to POST /api/orders/batch and are counted one by one.
Long because the set-up every HTTP benchmark shares (service, market, users, poller, warm-up) lives here
with the e2e run and its report; rate, soak and stream import it.
"""
from __future__ import annotations

import bisect
import json
import os
import random
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence
from urllib.parse import urlparse

from sqlalchemy import func, select

from orders_app.bench.ceiling import measure_ceiling
from orders_app.bench.cpu import cpu_seconds_by_name, cpu_used_since, find_pid
from orders_app.bench.loadgen import LoadResult, Sample, build_request, percentile, run_load
from orders_app.bench.memory import rss_mib
from orders_app.bench.plot import Panel, Series, render_svg
from orders_app.errors import present
from orders_app.models import Order
from orders_app.processes import BENCH_LOG_DIR, ApiServer, WorkerProcess, stop_all
from orders_app.repositories.settlement import accepted_seq

ROOT_DIR = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT_DIR / "bench-results"
READY_TIMEOUT_S = 60.0  # for the service it starts: a loaded machine boots gunicorn slowly
POLL_INTERVAL_S = 0.02
SETTLE_TIMEOUT_S = 300.0
MID = Decimal("100")
TICK = Decimal("0.01")


@dataclass
class Service:
    """The service under load: the API and worker the benchmark started, or none with --url."""
    url: str
    api: ApiServer | None = None
    worker: WorkerProcess | None = None

    def stop(self) -> None:
        stop_all(self.api, self.worker)


def log_level() -> str:
    """The log level of the processes a benchmark starts: WARNING, for a request log line costs the API
    measurable CPU (BENCH_LOG_LEVEL=INFO to have them)."""
    return os.environ.get("BENCH_LOG_LEVEL", "WARNING")


def start_api_and_worker() -> tuple[ApiServer, WorkerProcess]:
    """gunicorn as gunicorn.conf.py sets it up (GUNICORN_* env) and `python consumer.py`, on the stack in the
    environment; both log under BENCH_LOG_DIR."""
    # A consumer group of its own: a long-running local broker may still hold members of workers that
    # were killed, and a group join waits for them.
    # WORKER_METRICS_PORT=0: no metrics page, which could clash with a running `./dev run` worker's.
    worker = WorkerProcess("bench-worker", log_dir=BENCH_LOG_DIR, KAFKA_CONSUMER_GROUP=f"bench-{uuid.uuid4().hex[:8]}",
                           WORKER_METRICS_PORT="0", LOG_LEVEL=log_level())
    api = None
    try:
        api = ApiServer("bench-api", workers=None, threads=None, worker_class=None, log_dir=BENCH_LOG_DIR,
                        ready_timeout_s=READY_TIMEOUT_S, LOG_LEVEL=log_level())
        worker.check_running()  # one that failed at start (a bad setting) is reported now, not as a stalled run
        return api, worker
    except BaseException:
        stop_all(api, worker)
        raise


def start_service() -> Service:
    api, worker = start_api_and_worker()
    return Service(api.url, api, worker)


def machine() -> dict:
    """What the figures were measured on (docs/performance.md shows it): every process shares these cores."""
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpus": os.cpu_count(), "memory_gib": round(memory_bytes / 2**30, 1)}


class SeqPoller(threading.Thread):
    """Samples the market's applied sequence number (market_state.last_seq) every 20 ms."""

    def __init__(self, ctx, market_id: int):
        super().__init__(name="seq-poller", daemon=True)
        self._ctx, self._market_id = ctx, market_id
        self.times: list[float] = []
        self.seqs: list[int] = []
        self._halt = threading.Event()

    def run(self) -> None:
        from orders_app.models import MarketState
        with self._ctx.session_factory() as session:
            while not self._halt.is_set():
                seq = session.execute(select(MarketState.last_seq)
                                      .where(MarketState.market_id == self._market_id)).scalar_one()
                session.rollback()  # a fresh READ COMMITTED view next time
                self.times.append(time.perf_counter())
                self.seqs.append(int(seq))
                self._halt.wait(POLL_INTERVAL_S)

    def latest(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def settled_at(self, seq: int) -> float | None:
        """The first sample at which `seq` was applied."""
        index = bisect.bisect_left(self.seqs, seq)
        return self.times[index] if index < len(self.times) else None

    def applied_at(self, seq: int) -> float:
        """`settled_at` of a sequence number known to be applied (the caller waited for it)."""
        return present(self.settled_at(seq), f"sequence {seq} was seen applied")

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Progress:
    def __init__(self, total: int, label: str):
        self.total, self.label, self.done = total, label, 0
        self._started = time.perf_counter()
        self._last_drawn = 0.0
        self._tty = sys.stderr.isatty()

    def tick(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if now - self._last_drawn >= (0.2 if self._tty else 5.0) or self.done == self.total:
            self._last_drawn = now
            self.draw(now)

    def draw(self, now: float, extra: str = "") -> None:
        filled = int(30 * self.done / self.total) if self.total else 30
        rate = self.done / max(now - self._started, 1e-9)
        line = f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done:,}/{self.total:,}  {rate:,.0f}/s {extra}"
        sys.stderr.write(("\r" + line) if self._tty else (line + "\n"))
        if self._tty and self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def make_orders(rng: random.Random, count: int, users: list[str], symbol: str, host: str, port: int):
    requests = []
    for _ in range(count):
        side, price, quantity = random_order(rng)
        requests.append(order_request(side, price, quantity, rng.choice(users), symbol, host, port))
    return requests


def make_batches(rng: random.Random, count: int, batch: int, users: list[str], symbol: str, host: str, port: int):
    """The e2e mix, `batch` orders of one user per request to POST /api/orders/batch."""
    requests = []
    for start in range(0, count, batch):
        orders = [random_order(rng) for _ in range(min(batch, count - start))]
        body = json.dumps({"orders": [{"order_type": side, "currency_symbol": symbol, "price": str(price),
                                       "quantity": str(quantity)} for side, price, quantity in orders]}).encode()
        requests.append(build_request(host, port, "POST", "/api/orders/batch", body,
                                      {"Authorization": f"Bearer {rng.choice(users)}"}))
    return requests


def per_order(samples: list[Sample]) -> list[Sample]:
    """Batch answers as one sample per order (its own status, the body POST /api/orders would have given,
    the request's timings), so that every figure counts orders whichever endpoint carried them."""
    expanded: list[Sample] = []
    for sample in samples:
        results = json.loads(sample.body)["results"] if sample.status == 200 else [{"status": sample.status}]
        expanded.extend(Sample(sample.started, sample.finished, result["status"],
                               json.dumps({"order": result.get("order")}).encode()) for result in results)
    return expanded


def random_order(rng: random.Random) -> tuple[str, Decimal, Decimal]:
    """Buys at mid-20..mid+5 ticks, sells at mid-5..mid+20: the overlap makes about half of them trade."""
    side = rng.choice(("buy", "sell"))
    offset = rng.randint(-20, 5) if side == "buy" else rng.randint(-5, 20)
    return side, MID + offset * TICK, Decimal(rng.randint(1, 20)) / 1000


def order_request(side: str, price: Decimal, quantity: Decimal, key: str, symbol: str, host: str, port: int) -> bytes:
    body = json.dumps({"order_type": side, "currency_symbol": symbol, "price": str(price),
                       "quantity": str(quantity)}).encode()
    return build_request(host, port, "POST", "/api/orders", body, {"Authorization": f"Bearer {key}"})


def seed_resting(ctx, symbol: str, count: int, user_ids: list[int]) -> float:
    """`count` resting orders far from the mid (never reached by the load), placed through the placing
    service in batches of 500 — the API's own use case, without HTTP. Returns seconds taken."""
    from orders_app.messages import PlaceOrder
    from orders_app.services.placing import (
        PreparedOrder,
        check_order,
        hold_amount,
        place_batch,
    )
    started = time.perf_counter()
    rng = random.Random(11)
    batch = []
    for index in range(count):
        side = "buy" if index % 2 else "sell"
        price = MID - 50 - rng.randint(0, 2000) * TICK if side == "buy" else MID + 50 + rng.randint(0, 2000) * TICK
        command = PlaceOrder(user_id=user_ids[index % len(user_ids)], side=side, symbol=symbol, price=price,
                             quantity=Decimal("0.001"))
        checked = check_order(command, ctx)
        batch.append(PreparedOrder(command, checked, hold_amount(command, checked, ctx)))
        if len(batch) == 500 or index == count - 1:
            outcomes = place_batch(batch, ctx)
            bad = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
            if bad:
                raise RuntimeError(f"seeding the book failed: {bad[0]}")
            batch = []
    return time.perf_counter() - started


def buckets(values: list[tuple[float, float]], width_s: float, t_end: float, reduce) -> list[tuple[float, float]]:
    slots: dict[int, list[float]] = {}
    for t, value in values:
        slots.setdefault(int(t // width_s), []).append(value)
    return [(index * width_s + width_s / 2, reduce(slots.get(index, []))) for index in range(int(t_end // width_s) + 1)]


@dataclass
class Setup:
    """What every HTTP benchmark loads: a market of its own, funded users, the service (started or given),
    and the poller of the market's applied sequence number, warmed up."""
    ctx: Any
    symbol: str
    market_id: int
    keys: list[str]
    service: Service
    host: str
    port: int
    poller: SeqPoller
    rng: random.Random
    seeding_s: float

    def orders(self, count: int, batch: int = 1) -> list[bytes]:
        """`count` orders of the e2e mix: one per POST /api/orders, or `batch` per POST /api/orders/batch."""
        if batch == 1:
            return make_orders(self.rng, count, self.keys, self.symbol, self.host, self.port)
        return make_batches(self.rng, count, batch, self.keys, self.symbol, self.host, self.port)

    def accepted_seq(self) -> int:
        with self.ctx.uow() as uow:
            return accepted_seq(uow.session, self.market_id)

    def wait_applied(self) -> int:
        return _wait_applied(self.ctx, self.poller, self.market_id, timeout_s=SETTLE_TIMEOUT_S)

    def seqs_after(self, seq_before: int) -> dict[int, int]:
        """Order id -> sequence number of the market's orders accepted after `seq_before`."""
        with self.ctx.uow() as uow:
            return dict(uow.session.execute(select(Order.id, Order.seq).where(
                Order.market_id == self.market_id, Order.seq > seq_before)).all())

    def reconcile(self) -> str:
        from orders_app.reconcile import reconcile
        with self.ctx.session_factory() as session:
            report = reconcile(session)
        return "OK" if report.ok else "BREACHES: " + ", ".join(report.breaches)


@contextmanager
def prepared(*, users: int, resting: int, url: str | None, seed: int, concurrency: int) -> Iterator[Setup]:
    """Market, users, book, service, poller and warm-up; stops the poller and the service on the way out."""
    from orders_app.bootstrap import bootstrap
    from orders_app.config import Settings
    from orders_app.messages import Fund
    from orders_app.services.funding import create_user, fund
    from orders_app.services.markets import add_market

    ctx = bootstrap(Settings.from_env({"LOG_LEVEL": "WARNING"}, needs_admin_token=False), role="bench").ctx
    symbol = "E" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    keys, user_ids = [], []
    for _ in range(users):
        user, key = create_user("bench", ctx)
        for asset, amount in (("USD", "1000000000"), (symbol, "1000000")):
            fund(Fund(user["id"], asset, Decimal(amount), "deposit"), ctx)
        keys.append(key)
        user_ids.append(user["id"])
    seeding_s = seed_resting(ctx, symbol, resting, user_ids) if resting else 0.0

    service = Service(url) if url else start_service()
    poller = SeqPoller(ctx, market_id)
    try:
        parsed = urlparse(service.url)
        host, port = parsed.hostname, parsed.port or 80
        if host is None:
            raise SystemExit(f"the service URL {service.url!r} names no host")
        poller.start()
        rng = random.Random(seed)
        _warm_up(ctx, poller, market_id, rng, keys, symbol, host, port, concurrency)
        yield Setup(ctx, symbol, market_id, keys, service, host, port, poller, rng, seeding_s)
    finally:
        if poller.is_alive():
            poller.stop()
        service.stop()


class Answered(Protocol):
    @property
    def body(self) -> bytes: ...


def settled_times(poller: SeqPoller, seq_of: dict[int, int], samples: Sequence[Answered]) -> list[float]:
    """For each accepted order's sample, when the worker's commit of that order was first seen (all of them
    were applied: the caller waited)."""
    return [poller.applied_at(seq_of[json.loads(sample.body)["order"]["id"]]) for sample in samples]


def run(args) -> dict:
    from orders_app.models import Trade

    figures: dict = {}
    with prepared(users=args.users, resting=args.resting, url=args.url, seed=args.seed,
                  concurrency=args.concurrency) as setup:
        service, poller, ctx, market_id = setup.service, setup.poller, setup.ctx, setup.market_id
        worker_rss_before = rss_mib(service.worker.process.pid) if service.worker else None

        batch = getattr(args, "batch", 1)
        requests = setup.orders(args.orders, batch)
        # the measured orders are those after it: not the seeded book, not the warm-up
        seq_before = setup.accepted_seq()
        progress = Progress(len(requests), "orders")
        accounted = accounted_processes(service)
        cpu_before = cpu_seconds_by_name(accounted)
        t0 = time.perf_counter()
        load = run_load(setup.host, setup.port, iter(requests), concurrency=args.concurrency, on_done=progress.tick)
        if batch > 1:
            load.samples = per_order(load.samples)
        last_seq = setup.wait_applied()
        t_settled = poller.settled_at(last_seq)
        cpu_used = cpu_used_since(cpu_before, accounted)
        poller.stop()
        worker_rss = rss_mib(service.worker.process.pid) if service.worker else None

        seq_of = setup.seqs_after(seq_before)
        with ctx.uow() as uow:
            trades = uow.session.execute(select(func.count()).select_from(Trade).where(
                Trade.market_id == market_id, Trade.seq > seq_before)).scalar_one()
            traded = uow.session.execute(select(func.count()).select_from(Order).where(
                Order.market_id == market_id, Order.seq > seq_before, Order.filled_quantity > 0)).scalar_one()
        figures = _figures(args, load, t0, t_settled, poller, seq_of, trades, traded, setup.reconcile())
        figures.update(machine=machine(), worker_rss_mib_before=worker_rss_before, worker_rss_mib_after=worker_rss,
                       resting_orders=args.resting, seeding_s=round(setup.seeding_s, 1), symbol=setup.symbol,
                       service=service_label(args.url), orders_per_request=batch)
        cpu_used["load client"] = load.client_cpu_s
        figures["cpu_ms_per_order"] = {name: round(1000 * used / max(figures["accepted"], 1), 3)
                                       for name, used in cpu_used.items()}
        figures["cpu_ms_per_order_total"] = round(sum(figures["cpu_ms_per_order"].values()), 3)
        figures["_series"] = _series(load, t0, poller)
    if args.ceiling:
        runs = measure_ceiling(args.concurrency)
        best = max(runs, key=lambda r: r.requests_per_s)
        figures["ceiling"] = {"best": best.label, "requests_per_s": round(best.requests_per_s),
                              "runs": [asdict(r) | {"requests_per_s": round(r.requests_per_s)} for r in runs]}
        figures["ratio_to_ceiling"] = round(figures["settled_orders_per_s"] / best.requests_per_s, 3)
    return figures


def service_label(url: str | None) -> str:
    if url:
        return "given: " + url
    return (f"started: gunicorn {os.environ.get('GUNICORN_WORKERS', '1')} x "
            f"{os.environ.get('GUNICORN_WORKER_CLASS', 'gthread')} {os.environ.get('GUNICORN_THREADS', '32')}"
            " + consumer.py")


def _warm_up(ctx, poller, market_id, rng, keys, symbol, host, port, concurrency) -> None:
    """Rounds of 200 orders until they settle within 250 ms (p50): connections and caches are warm and the
    worker consumes from Kafka (a worker that just started must first join its consumer group; until then
    it settles from the database, ~1 s late). Gives up waiting after 60 s and goes on."""
    deadline = time.monotonic() + 60
    while True:
        warm = run_load(host, port, iter(make_orders(rng, 200, keys, symbol, host, port)), concurrency=concurrency)
        refused = [sample for sample in warm.samples if sample.status != 201]
        if refused:
            raise RuntimeError(f"warm-up order refused: {refused[0].status} {refused[0].body[:300]!r}")
        _wait_applied(ctx, poller, market_id, timeout_s=SETTLE_TIMEOUT_S)
        ids = [json.loads(s.body)["order"]["id"] for s in warm.samples]
        with ctx.uow() as uow:
            seq_of = dict(uow.session.execute(select(Order.id, Order.seq).where(Order.id.in_(ids))).all())
        lags = [at - sample.finished
                for at, sample in zip(settled_times(poller, seq_of, warm.samples), warm.samples, strict=True)]
        if percentile(lags, 0.5) < 0.25 or time.monotonic() > deadline:
            return
        print(f"warming up: settlement lag p50 {percentile(lags, 0.5) * 1000:.0f} ms", file=sys.stderr)


def accounted_processes(service: Service) -> dict[str, int]:
    """The processes whose CPU is accounted: those we started, and the local MariaDB and broker if found."""
    found = {}
    if service.api is not None:
        found["API (gunicorn)"] = service.api.process.pid
    if service.worker is not None:
        found["worker + relay"] = service.worker.process.pid
    database, kafka = urlparse(os.environ.get("DATABASE_URL", "")), os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    mariadb = find_pid("mariadbd", f"--port={database.port}") if database.port else None
    broker = find_pid("tansu", kafka.rsplit(":", 1)[-1]) if kafka else None
    if mariadb:
        found["MariaDB"] = mariadb
    if broker:
        found["broker"] = broker
    return found


def _wait_applied(ctx, poller: SeqPoller, market_id: int, timeout_s: float) -> int:
    with ctx.uow() as uow:
        wanted = accepted_seq(uow.session, market_id)
    deadline = time.monotonic() + timeout_s
    while poller.latest() < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker applied {poller.latest()} of {wanted} commands in {timeout_s:.0f}s")
        time.sleep(POLL_INTERVAL_S)
    return wanted


def _figures(args, load: LoadResult, t0, t_settled, poller, seq_of, trades, traded, reconciliation) -> dict:
    ok = [s for s in load.samples if s.status == 201]
    latencies_ms = [(s.finished - s.started) * 1000 for s in ok]
    lags_ms = [max(0.0, (settled - sample.finished) * 1000)
               for settled, sample in zip(settled_times(poller, seq_of, ok), ok, strict=True)]
    statuses: dict[str, int] = {}
    for sample in load.samples:
        statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
    return {
        "orders": args.orders, "concurrency": args.concurrency, "users": args.users,
        "accepted": len(ok), "non_2xx": len(load.samples) - len(ok), "statuses": statuses,
        "accepted_orders_per_s": round(len(ok) / load.wall_s, 1),
        "accept_latency_ms": {"p50": round(percentile(latencies_ms, 0.5), 1),
                              "p95": round(percentile(latencies_ms, 0.95), 1),
                              "p99": round(percentile(latencies_ms, 0.99), 1),
                              "max": round(max(latencies_ms, default=0), 1)},
        "load_s": round(load.wall_s, 2),
        "all_settled_after_s": round(t_settled - t0, 2),
        "settled_orders_per_s": round(len(ok) / (t_settled - t0), 1),
        "settlement_lag_ms": {"p50": round(percentile(lags_ms, 0.5), 1), "p95": round(percentile(lags_ms, 0.95), 1),
                              "p99": round(percentile(lags_ms, 0.99), 1), "max": round(max(lags_ms, default=0), 1)},
        "trades": trades, "orders_that_traded_percent": round(100 * traded / max(len(seq_of), 1), 1),
        "load_client_cpu_percent_of_one_core": round(load.client_cpu_percent, 1),
        "reconciliation": reconciliation,
    }


def _series(load: LoadResult, t0: float, poller: SeqPoller) -> dict:
    ok = [s for s in load.samples if s.status == 201]
    t_end = max((s.finished for s in ok), default=t0) - t0
    width = max(0.25, round(t_end / 60, 2))
    accepted = buckets([(s.finished - t0, 1.0) for s in ok], width, t_end, lambda v: len(v) / width)
    p50 = buckets([(s.finished - t0, (s.finished - s.started) * 1000) for s in ok], width, t_end,
                  lambda v: percentile(v, 0.5))
    p99 = buckets([(s.finished - t0, (s.finished - s.started) * 1000) for s in ok], width, t_end,
                  lambda v: percentile(v, 0.99))
    settled: list[tuple[float, float]] = []
    previous = None
    for t, seq in zip(poller.times, poller.seqs, strict=True):
        if t >= t0:
            if previous is not None:
                settled.append((t - t0, seq - previous))
            previous = seq
    settled_rate = buckets(settled, width, max(t_end, settled[-1][0] if settled else 0), lambda v: sum(v) / width)
    return {"bucket_s": width, "accepted_per_s": accepted, "settled_per_s": settled_rate,
            "latency_p50_ms": p50, "latency_p99_ms": p99}


def report_text(figures: dict) -> str:
    lat, lag = figures["accept_latency_ms"], figures["settlement_lag_ms"]
    cpus = figures.get("machine", {}).get("cpus") or os.cpu_count() or 1
    lines = [
        f"orders sent            {figures['orders']:,} over {figures['concurrency']} keep-alive connections, "
        f"{figures['users']} users ({figures['service']})"
        + (f", {figures['orders_per_request']} per request to POST /api/orders/batch"
           if figures.get("orders_per_request", 1) > 1 else ""),
        f"accepted (201)         {figures['accepted']:,}; non-2xx {figures['non_2xx']} {figures['statuses']}",
        f"accepted orders/s      {figures['accepted_orders_per_s']:,.0f}  (load {figures['load_s']} s)",
        f"accept latency         p50 {lat['p50']} ms  p95 {lat['p95']} ms  p99 {lat['p99']} ms  max {lat['max']} ms",
        f"all settled after      {figures['all_settled_after_s']} s  ->  settled orders/s "
        f"{figures['settled_orders_per_s']:,.0f}",
        f"settlement lag         p50 {lag['p50']} ms  p95 {lag['p95']} ms  p99 {lag['p99']} ms  max {lag['max']} ms",
        f"trades                 {figures['trades']:,} ({figures['orders_that_traded_percent']} % of orders traded)",
        f"load client CPU        {figures['load_client_cpu_percent_of_one_core']} % of one core",
        "CPU per order          " + ", ".join(f"{name} {ms} ms" for name, ms in figures["cpu_ms_per_order"].items())
        + f"; total {figures['cpu_ms_per_order_total']} ms -> at most "
        f"{1000 * cpus / max(figures['cpu_ms_per_order_total'], 1e-9):,.0f} orders/s on {cpus} cores",
    ]
    if figures.get("resting_orders"):
        lines.append(f"book                   {figures['resting_orders']:,} resting orders (seeded in "
                     f"{figures['seeding_s']} s)")
    if figures.get("worker_rss_mib_after") is not None:
        lines.append(f"worker RSS             {figures['worker_rss_mib_before']:.0f} MiB before, "
                     f"{figures['worker_rss_mib_after']:.0f} MiB after")
    if "ceiling" in figures:
        runs = ", ".join(f"{r['worker_class']} {r['workers']}x{r['threads']}: {r['requests_per_s']:,}/s"
                         for r in figures["ceiling"]["runs"])
        lines.append(f"ceiling (trivial POST) {figures['ceiling']['requests_per_s']:,}/s best ({runs})")
        lines.append(f"end to end / ceiling   {figures['ratio_to_ceiling']:.2f}  (settled orders/s ÷ ceiling)")
    lines.append(f"reconciliation         {figures['reconciliation']}")
    return "\n".join(lines)


def save_figures(figures, name: str) -> Path:
    """bench-results/<name>-<time>.json"""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(figures, indent=2))
    return path


def write_results(figures: dict, name: str) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    series = figures.pop("_series")
    json_path = RESULTS_DIR / f"{name}-{stamp}.json"
    json_path.write_text(json.dumps(figures | {"series": series}, indent=2))
    svg_path = RESULTS_DIR / f"{name}-{stamp}.svg"
    svg_path.write_text(render_svg(
        f"{figures['orders']:,} orders, {figures['concurrency']} connections: "
        f"{figures['settled_orders_per_s']:,.0f} settled orders/s, p99 accept {figures['accept_latency_ms']['p99']} ms",
        [Panel("Throughput", "orders/s", [Series("accepted (201)", series["accepted_per_s"]),
                                          Series("settled by the worker", series["settled_per_s"])]),
         Panel("Accept latency", "ms", [Series("p50", series["latency_p50_ms"]),
                                        Series("p99", series["latency_p99_ms"])])]))
    return json_path, svg_path
