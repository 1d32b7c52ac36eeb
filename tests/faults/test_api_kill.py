"""kill -9 of gunicorn worker processes in the middle of requests, under a concurrent order load.

gunicorn respawns a killed worker. Requests in flight on it fail at the client (connection reset); each
such order is wholly in the database (hold, order, command) or wholly absent. Every order answered 201 is
there, applied by the matching worker and published, and the database reconciles. Run with both
publishers: OUTBOX_PUBLISHER=relay (the default: the worker's relay publishes every row) and =api (the API
publishes after commit; rows a killed process never published are republished by the relay once they
are older than OUTBOX_SWEEP_GRACE_MS).
"""
from __future__ import annotations

import os
import random
import signal
import time
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from orders_app import runtime_of
from orders_app.models import OutboxEvent
from orders_app.processes import child_pids
from orders_app.services.markets import add_market
from tests.faults.load import (
    FAST_RECOVERY,
    System,
    account_for,
    assert_no_server_errors_but_503,
    engine_for,
    wait_published,
)
from tests.support.reconcile import reconcile_cli
from tests.support.waits import wait_settled, wait_until

pytestmark = pytest.mark.slow
KILLS = 3
ORDERS_BETWEEN_KILLS = 80
GUNICORN_WORKERS = 2  # ApiServer's default


def _respawned(master_pid: int, killed: int, timeout_s: float = 60) -> None:
    def replaced() -> bool:
        children = child_pids(master_pid)
        return len(children) == GUNICORN_WORKERS and killed not in children
    wait_until(replaced, timeout_s=timeout_s, poll_s=0.05,
               what=lambda: f"gunicorn replacing worker {killed} (children now {child_pids(master_pid)})")


def _published_late(engine, order_ids: set[int]) -> int:
    """Placements published only after the sweep grace: with OUTBOX_PUBLISHER=api, the relay's catching
    up with rows whose API process was killed before it published them."""
    grace_s = int(FAST_RECOVERY["OUTBOX_SWEEP_GRACE_MS"]) / 1000
    with Session(engine) as session:
        rows = session.execute(select(OutboxEvent.order_id, OutboxEvent.created_at, OutboxEvent.published_at)
                               .where(OutboxEvent.event_type == "order_placed")).all()
    return sum(1 for order_id, created, published in rows
               if order_id in order_ids and published is not None and (published - created).total_seconds() >= grace_s)


@pytest.mark.parametrize("publisher", ["relay", "api"])
def test_api_workers_killed_mid_request_lose_no_accepted_order(app, admin_headers, stack_env, publisher):
    ctx = runtime_of(app).ctx
    symbol = "A" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    rng, system = random.Random(99), None
    try:
        system = System(f"apikill-{publisher}", admin_headers, symbol, {"USD": "100000000", symbol: "1000000"},
                        threads=8, seed=11, OUTBOX_PUBLISHER=publisher)
        load = system.load.start()
        master = system.api.process.pid
        system.wait_accepted(ORDERS_BETWEEN_KILLS)
        for _ in range(KILLS):
            victim = rng.choice(child_pids(master))
            os.kill(victim, signal.SIGKILL)
            _respawned(master, victim)
            system.wait_accepted(load.accepted_count() + ORDERS_BETWEEN_KILLS)
        load.stop()
        load_stopped = time.monotonic()

        statuses = load.by_status()
        assert_no_server_errors_but_503(load)
        assert statuses["no answer"] > 0, f"no request was in flight on a killed process: {statuses}"
        engine = engine_for(stack_env["DATABASE_URL"])
        drain_s = wait_settled(engine, timeout_s=120)
        figures = account_for(engine, load)
        present = {o.body["order"]["id"] for o in load.accepted()}
        with Session(engine) as session:
            present |= {order_id for (order_id,) in session.execute(select(OutboxEvent.order_id).where(
                OutboxEvent.event_type == "order_placed", OutboxEvent.message_key == symbol))}
        wait_published(engine, present, timeout_s=60)
        published_s = time.monotonic() - load_stopped
        late = _published_late(engine, present)
        engine.dispose()
        report = reconcile_cli(stack_env["DATABASE_URL"])
        print(f"\ngunicorn worker kill -9 (OUTBOX_PUBLISHER={publisher}): {KILLS} kills, {len(load.outcomes)} "
              f"orders sent by 8 threads, answers "
              f"{dict(statuses)}; {figures.accepted} accepted, all present and applied {dict(figures.statuses)}; "
              f"requests cut by a kill: {figures.failed_present} orders present, {figures.failed_absent} absent; "
              f"{late} placements published only after the sweep grace; drained {drain_s:.1f}s, all published "
              f"{published_s:.1f}s after the load stopped\n{report}")
    finally:
        if system is not None:
            system.close()
