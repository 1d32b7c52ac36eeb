"""MariaDB killed (SIGKILL) and restarted while the API and the worker run under a concurrent order load.

The test runs its own mariadbd (fresh datadir, migrated) so that killing it disturbs no other test, with
a real gunicorn, a real `consumer.py` and a broker of its own. During the outage every request must be
answered `503 SERVICE_UNAVAILABLE` with `Retry-After` (never a 500) and `/ready` must say why; afterwards
the API and the worker reconnect by themselves, every order answered 201 survived the crash (InnoDB
recovery, one durable commit per order), was matched or rests, and the reconciliation passes.
"""
from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orders_app.models import MarketState
from orders_app.processes import Broker, PrivateDatabase
from tests.faults.load import (
    System,
    account_for,
    assert_no_server_errors_but_503,
    engine_for,
    wait_published,
)
from tests.support.reconcile import reconcile_cli
from tests.support.waits import wait_settled, wait_until

pytestmark = pytest.mark.slow
OUTAGE_S = 5.0
ORDERS_BEFORE_FAULT = 150
ORDERS_AFTER_RESTART = 150


def _some_applied(engine) -> bool:
    with Session(engine) as session:
        return bool(session.execute(select(func.max(MarketState.last_seq))).scalar())


def test_database_killed_and_restarted_under_load_loses_nothing_and_answers_503(admin_headers):
    db, broker, system = PrivateDatabase("fault-db"), Broker("broker-dbfault"), None
    try:
        system = System("dbfault", admin_headers, "BTC", {"USD": "100000000", "BTC": "1000000"}, seed=7,
                        DATABASE_URL=db.url, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
        api, load = system.api, system.load.start()
        system.wait_accepted(ORDERS_BEFORE_FAULT)
        engine = engine_for(db.url)
        # the worker is settling when the database dies, not starting
        wait_until(lambda: _some_applied(engine), timeout_s=60, what="the worker applying a first command",
                   poll_s=0.05)

        db.kill()
        killed_at = time.monotonic()
        ready_during_outage = []
        while time.monotonic() - killed_at < OUTAGE_S:
            response = requests.get(f"{api.url}/ready", timeout=10)
            ready_during_outage.append((response.status_code, response.json()["error"]["message"]
                                        if response.status_code != 200 else ""))
            time.sleep(0.5)  # the probes' rate over the fixed outage: there is no condition to wait for
        accepted_at_restart = load.accepted_count()
        db.start()
        outage_s = time.monotonic() - killed_at
        system.wait_accepted(accepted_at_restart + ORDERS_AFTER_RESTART)
        reconnected_s = time.monotonic() - killed_at - outage_s
        load.stop()

        statuses = load.by_status()
        assert statuses[503] > 0, f"no request met the outage: {statuses}"
        assert_no_server_errors_but_503(load)
        assert ready_during_outage and all(status == 503 and "database unreachable" in message
                                           for status, message in ready_during_outage), ready_during_outage

        drain_s = wait_settled(engine, timeout_s=120)
        publish_s = wait_published(engine, {o.body["order"]["id"] for o in load.accepted()}, timeout_s=60)
        figures = account_for(engine, load)
        engine.dispose()
        assert system.worker.process.poll() is None, "the worker died during the database outage"
        assert requests.get(f"{api.url}/ready", timeout=10).status_code == 200
        report = reconcile_cli(db.url)
        print(f"\nMariaDB kill -9 + restart: {len(load.outcomes)} orders sent by 6 threads, answers {dict(statuses)}; "
              f"outage {outage_s:.1f}s, {ORDERS_AFTER_RESTART} more accepted {reconnected_s:.1f}s after the restart; "
              f"{figures.accepted} accepted, all present and applied {dict(figures.statuses)}; failed requests: "
              f"{figures.failed_present} present, {figures.failed_absent} absent; drained {drain_s:.1f}s after the "
              f"load stopped, all published {publish_s:.1f}s after that\n{report}")
    finally:
        try:
            if system is not None:
                system.close()
        finally:
            broker.stop()
            db.remove()
