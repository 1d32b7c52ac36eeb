"""The broker stopped for several seconds and restarted (a memory broker: every topic and offset gone)
while orders keep arriving from concurrent clients.

Orders are accepted throughout (a request never waits for Kafka); the worker matches from the database
what Kafka cannot deliver; after the restart the outbox rows left unpublished are republished, the
consumer and producers reconnect, and every order answered 201 is applied and published; the database
reconciles.
"""
from __future__ import annotations

import time
import uuid

import pytest

from orders_app import runtime_of
from orders_app.processes import Broker
from orders_app.services.markets import add_market
from tests.faults.load import (
    System,
    account_for,
    assert_no_server_errors_but_503,
    engine_for,
    wait_published,
)
from tests.support.reconcile import reconcile_cli
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow
OUTAGE_S = 6.0
ORDERS_BEFORE_FAULT = 100
ORDERS_AFTER_RESTART = 100


def test_broker_stopped_and_restarted_under_load_loses_no_order(app, admin_headers, stack_env):
    ctx = runtime_of(app).ctx
    symbol = "B" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    broker, system = Broker("broker-fault"), None
    try:
        system = System("brokerfault", admin_headers, symbol, {"USD": "100000000", symbol: "1000000"}, seed=5,
                        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
        load = system.load.start()
        system.wait_accepted(ORDERS_BEFORE_FAULT)
        broker.stop()
        stopped_at, accepted_at_stop = time.monotonic(), load.accepted_count()
        time.sleep(OUTAGE_S)  # the outage itself: orders keep coming while the broker is away
        accepted_in_outage = load.accepted_count() - accepted_at_stop
        broker.start()
        outage_s = time.monotonic() - stopped_at
        system.wait_accepted(load.accepted_count() + ORDERS_AFTER_RESTART)
        load.stop()
        load_stopped = time.monotonic()

        statuses = load.by_status()
        assert_no_server_errors_but_503(load)
        assert set(statuses) == {201}, f"an order was refused while only Kafka was down: {statuses}"
        assert accepted_in_outage > 0, "no order was accepted while the broker was down"
        engine = engine_for(stack_env["DATABASE_URL"])
        drain_s = wait_settled(engine, timeout_s=120)
        wait_published(engine, {o.body["order"]["id"] for o in load.accepted()}, timeout_s=90)
        published_s = time.monotonic() - load_stopped
        figures = account_for(engine, load)
        engine.dispose()
        assert system.worker.process.poll() is None, "the worker died during the broker outage"
        report = reconcile_cli(stack_env["DATABASE_URL"])
        print(f"\nbroker stop + restart: {len(load.outcomes)} orders sent by 6 threads, answers {dict(statuses)}; "
              f"outage {outage_s:.1f}s with {accepted_in_outage} orders accepted during it; {figures.accepted} "
              f"accepted, all present and applied {dict(figures.statuses)}; drained {drain_s:.1f}s, all published "
              f"{published_s:.1f}s after the load stopped\n{report}")
    finally:
        try:
            if system is not None:
                system.close()
        finally:
            broker.stop()
