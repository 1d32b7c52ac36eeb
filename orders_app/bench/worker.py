"""Worker throughput: settled orders/s with a backlog of accepted orders waiting.

    ./dev run  (or any stack with DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS set), then:
    .venv/bin/python -m orders_app.bench.worker [--orders 20000] [--threads 8]

It adds a market of its own, places the orders through the placing service (the API's own use case,
many threads) while no worker serves that market... then starts `python consumer.py` and times how long
it takes until every command of the market is settled. Prints orders/s, trades, and the reconciliation.
Nothing else is started; stop your own `consumer.py` first if you want the worker to start cold.
"""
from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from orders_app.processes import BENCH_LOG_DIR, WorkerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from orders_app.bootstrap import bootstrap
    from orders_app.config import Settings
    from orders_app.messages import Fund, PlaceOrder
    from orders_app.models import MarketSequence, MarketState, Trade
    from orders_app.reconcile import reconcile
    from orders_app.repositories import outbox
    from orders_app.services.funding import create_user, fund
    from orders_app.services.markets import add_market
    from orders_app.services.placing import place_order

    ctx = bootstrap(Settings.from_env({"LOG_LEVEL": "WARNING"}, needs_admin_token=False), role="bench").ctx
    symbol = "W" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    from decimal import Decimal
    users = []
    for _ in range(args.users):
        user, _key = create_user("bench", ctx)
        fund(Fund(user["id"], "USD", Decimal("100000000"), "deposit"), ctx)
        fund(Fund(user["id"], symbol, Decimal("1000000"), "deposit"), ctx)
        users.append(user["id"])
    rng = random.Random(args.seed)
    commands = [PlaceOrder(user_id=rng.choice(users), side=side, symbol=symbol,
                           price=Decimal(rng.randint(9_900, 10_100)) / 100 if side else None,
                           quantity=Decimal(rng.randint(1, 500)) / 100)
                for side in (rng.choice(["buy", "sell"]) for _ in range(args.orders))]

    print(f"placing {args.orders} orders in {symbol} with {args.threads} threads (the worker is not running)...")
    started = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(lambda command: place_order(command, ctx), commands))
    print(f"  accepted in {time.perf_counter() - started:.1f}s "
          f"({args.orders / (time.perf_counter() - started):.0f} orders/s through the service, no HTTP)")
    while True:  # every order event on Kafka before the worker starts, as with a live API
        with ctx.uow() as uow:
            if outbox.unpublished_count(uow.session, market_id) == 0:
                break
        time.sleep(0.2)

    def applied() -> int:
        with ctx.uow() as uow:
            return uow.session.execute(select(MarketState.last_seq)
                                       .where(MarketState.market_id == market_id)).scalar_one()
    with ctx.uow() as uow:
        target = uow.session.execute(select(MarketSequence.last_seq)
                                     .where(MarketSequence.market_id == market_id)).scalar_one()

    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = WorkerProcess("bench-worker", log_dir=BENCH_LOG_DIR)
    try:
        launched = time.perf_counter()
        while applied() == 0:
            time.sleep(0.005)
        first = time.perf_counter()
        while applied() < target:
            time.sleep(0.01)
        done = time.perf_counter()
    finally:
        worker.stop()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker and its relay, start-up included
    worker_cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    with ctx.uow() as uow:
        trades = uow.session.execute(select(func.count()).select_from(Trade)
                                     .where(Trade.market_id == market_id)).scalar()
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    settle_s = done - first
    print(f"worker: {target} commands settled in {settle_s:.2f}s after its first batch "
          f"({target / settle_s:.0f} orders/s); {done - launched:.2f}s including start-up; {trades} trades; "
          f"worker CPU {worker_cpu_s:.2f}s (with its relay; less sensitive than wall time to a busy machine)")
    print(report.render().splitlines()[0])
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
