"""Two workers on the same markets at once never double-match: the market_state row lock decides."""
from __future__ import annotations

import random
import uuid

import pytest

from orders_app import runtime_of
from orders_app.processes import WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.services.markets import add_market
from tests.faults.replay import engine_replay, recorded_trades
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow
ORDERS = 600
SMALL_BATCHES = {"KAFKA_MAX_POLL_INTERVAL_MS": "3000", "SETTLE_BATCH_COMMANDS_MAX": "25"}


def test_two_workers_at_once_settle_each_command_once(app, make_user):
    ctx = runtime_of(app).ctx
    symbol = "D" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    spec = ctx.resolve_market(symbol)
    rng = random.Random(42)
    users = [make_user("d", USD="1000000", **{symbol: "1000"}) for _ in range(5)]
    workers = [WorkerProcess(f"worker-twin-{n}", **SMALL_BATCHES) for n in range(2)]
    try:
        for _ in range(ORDERS):
            response = rng.choice(users).place(
                order_type=rng.choice(["buy", "sell"]), currency_symbol=symbol,
                price=f"{rng.randint(98, 102)}.{rng.randint(0, 9)}", quantity=f"{rng.randint(1, 200) / 100:.2f}")
            assert response.status_code == 201
        wait_settled(ctx, timeout_s=120)
    finally:
        assert [worker.stop() for worker in workers] == [0, 0]
    settled_by = [sum(1 for line in worker.log_path.read_text().splitlines()
                      if '"settled batch"' in line and symbol in line) for worker in workers]
    expected = engine_replay(ctx, market_id, spec)
    assert sum(expected.values()) > 50
    assert recorded_trades(ctx, market_id, spec) == expected
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()
    print(f"two workers: {ORDERS} orders, batches settled per worker {settled_by}, "
          f"{sum(expected.values())} trades equal to the engine's")
