"""kill -9 of the matching worker in the middle of settling, again and again: no fill lost or doubled.

A backlog of orders in a market of its own is settled by a worker that is killed (SIGKILL) five times
while it makes progress, then left to finish. The trades in the database must equal, one for one, what
the pure engine produces from the same commands in sequence order, and the database must reconcile.
"""
from __future__ import annotations

import os
import random
import signal
import time
import uuid

import pytest
from sqlalchemy import select

from orders_app import runtime_of
from orders_app.models import MarketState
from orders_app.processes import WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.services.markets import add_market
from tests.faults.replay import engine_replay, recorded_trades
from tests.support.waits import wait_settled, wait_until

pytestmark = pytest.mark.slow
ORDERS = 2000
KILLS = 5
SEED = 20261125
SMALL_BATCHES = {"KAFKA_MAX_POLL_INTERVAL_MS": "3000", "SETTLE_BATCH_COMMANDS_MAX": "20"}


def _applied(ctx, market_id):
    with ctx.uow() as uow:
        return uow.session.execute(select(MarketState.last_seq).where(MarketState.market_id == market_id)).scalar()


def test_worker_killed_five_times_mid_batch_loses_and_doubles_no_fill(app, make_user):
    ctx = runtime_of(app).ctx
    symbol = "K" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    spec = ctx.resolve_market(symbol)
    rng = random.Random(SEED)
    users = [make_user("k", USD="1000000", **{symbol: "1000"}) for _ in range(6)]
    for _ in range(ORDERS):
        user = rng.choice(users)
        side = rng.choice(["buy", "sell"])
        price = f"{rng.randint(95, 105)}.{rng.randint(0, 99):02d}"
        response = user.place(order_type=side, currency_symbol=symbol, price=price,
                              quantity=f"{rng.randint(1, 300) / 100:.2f}",
                              time_in_force=rng.choice(["GTC", "GTC", "GTC", "IOC"]))
        assert response.status_code == 201, response.json

    kills, last_progress = 0, _applied(ctx, market_id)
    while kills < KILLS and last_progress < ORDERS:
        worker = WorkerProcess(f"worker-kill-{kills}", **SMALL_BATCHES)
        wait_until(lambda progress=last_progress: _applied(ctx, market_id) != progress, timeout_s=60, poll_s=0.01,
                   what="the new worker settling a batch")
        time.sleep(rng.uniform(0, 0.05))  # a random moment inside one of the next batches: the kill lands anywhere
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        kills += 1
        last_progress = _applied(ctx, market_id)
    assert kills == KILLS and last_progress < ORDERS, "the backlog was settled before the kills"

    final = WorkerProcess("worker-kill-final", **SMALL_BATCHES)
    try:
        wait_settled(ctx, timeout_s=120)
    finally:
        assert final.stop() == 0

    expected, actual = engine_replay(ctx, market_id, spec), recorded_trades(ctx, market_id, spec)
    assert sum(actual.values()) > 100
    assert actual == expected
    print(f"worker kill -9: {ORDERS} orders, {kills} kills, {sum(actual.values())} trades equal to the engine's")
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()
