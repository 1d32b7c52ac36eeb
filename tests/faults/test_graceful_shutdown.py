"""SIGTERM to the API (gunicorn) and to the worker in the middle of a concurrent order load loses nothing.

gunicorn stops accepting and lets in-flight requests finish (graceful_timeout); the worker finishes its
batch, commits and leaves. Afterwards: exactly the orders answered 201 exist (an order the client never
heard of would mean a request cut off mid-way), a restarted worker matches all of them, and the database
reconciles (`python -m orders_app.reconcile` exits 0).
"""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select

from orders_app import runtime_of
from orders_app.models import Order
from orders_app.processes import ROOT_DIR, TEST_LOG_DIR, ApiServer, WorkerProcess
from orders_app.services.markets import add_market
from tests.faults.load import make_users
from tests.support.names import unique_name
from tests.support.waits import wait_market_applied, wait_until

pytestmark = pytest.mark.slow
LOAD_THREADS = 8
ORDERS_BEFORE_SIGTERM = 40  # the load is in full swing: requests in flight in every API thread
LOAD_DEADLINE_S = 60.0
EXIT_TIMEOUT_S = 45
START_TIMEOUT_S = 60
SETTLE_TIMEOUT_S = 60


def test_sigterm_during_load_loses_no_accepted_order(stack_env, app):
    ctx = runtime_of(app).ctx
    symbol = "G" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    for name in ("api-graceful", "worker-graceful", "worker-graceful-restarted"):
        (TEST_LOG_DIR / f"{name}.log").unlink(missing_ok=True)  # the checks below read this run's lines only
    api = ApiServer("api-graceful", workers=2, threads=4)
    worker = WorkerProcess("worker-graceful", KAFKA_MAX_POLL_INTERVAL_MS="3000")
    try:
        admin = {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}
        users = make_users(api.url, admin, 4, {"USD": "10000000", symbol: "100000"}, unique_name("graceful"))
        # SIGTERM must find the worker running (during its start-up it would simply end, with nothing to lose)
        worker.wait_logged('"worker started"', timeout_s=START_TIMEOUT_S)
    except BaseException:
        worker.stop()
        api.stop()
        raise

    answered: dict[str, int] = {}  # client_order_id -> HTTP status
    failed: dict[str, str] = {}  # client_order_id -> the client's error
    lock = threading.Lock()
    stop = threading.Event()

    started = time.monotonic()

    def load(thread_index: int) -> None:
        """Until the API is gone for good (5 errors in a row), within a bounded time."""
        rng = random.Random(thread_index)
        consecutive_errors = 0
        while not stop.is_set() and consecutive_errors < 5 and time.monotonic() - started < LOAD_DEADLINE_S:
            headers = users[rng.randrange(len(users))].headers
            client_order_id = f"g{thread_index}-{uuid.uuid4().hex[:12]}"
            body = {"order_type": rng.choice(["buy", "sell"]), "currency_symbol": symbol,
                    "price": str(rng.randint(95, 105)), "quantity": str(rng.randint(1, 20)),
                    "client_order_id": client_order_id}
            try:
                response = requests.post(f"{api.url}/api/orders", json=body, timeout=30,
                                         headers={**headers, "Connection": "close"})
            except requests.RequestException as error:
                with lock:
                    failed[client_order_id] = type(error).__name__
                consecutive_errors += 1
                time.sleep(0.05)  # a client backing off from a refused connection, not a busy loop
                continue
            consecutive_errors = 0
            with lock:
                answered[client_order_id] = response.status_code

    threads = [threading.Thread(target=load, args=(index,)) for index in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        def accepted() -> int:
            with lock:
                return sum(1 for status in answered.values() if status == 201)
        wait_until(lambda: accepted() >= ORDERS_BEFORE_SIGTERM, timeout_s=START_TIMEOUT_S, poll_s=0.05,
                   what=lambda: f"{ORDERS_BEFORE_SIGTERM} orders accepted before SIGTERM (got {accepted()})")
        api.process.send_signal(signal.SIGTERM)  # the gunicorn master: it stops its workers gracefully
        worker.process.send_signal(signal.SIGTERM)
        assert api.process.wait(timeout=EXIT_TIMEOUT_S) == 0
        assert worker.process.wait(timeout=EXIT_TIMEOUT_S) == 0
    except BaseException:
        stop.set()  # a failure above: do not keep loading a server that may still be up
        raise
    finally:
        for thread in threads:
            thread.join(timeout=LOAD_DEADLINE_S)
        stop.set()
        if api.process.poll() is None:
            api.stop()
        if worker.process.poll() is None:
            worker.stop()
    worker_log = worker.log_path.read_text(errors="replace")
    assert worker_log.rfind('"worker stopped"') > worker_log.rfind('"stop requested"') >= 0

    created = {cid for cid, status in answered.items() if status == 201}
    assert set(answered.values()) == {201}, {s: list(answered.values()).count(s) for s in set(answered.values())}
    assert failed, "the load should have run into the stopped API (else SIGTERM came too late to test anything)"
    user_ids = [user.id for user in users]
    with ctx.uow() as uow:
        stored = set(uow.session.execute(select(Order.client_order_id).where(
            Order.user_id.in_(user_ids), Order.market_id == ctx.resolve_market(symbol).id)).scalars())
    assert stored == created, (f"{len(stored - created)} orders nobody was told about, "
                               f"{len(created - stored)} answered 201 but missing")

    restarted = WorkerProcess("worker-graceful-restarted", KAFKA_MAX_POLL_INTERVAL_MS="3000")
    try:
        accepted = wait_market_applied(ctx, ctx.resolve_market(symbol).id, SETTLE_TIMEOUT_S, poll_s=0.1)
        assert accepted == len(created)
        client = app.test_client()
        book = client.get(f"/api/orderbook/{symbol}").json
        if book["bids"] and book["asks"]:  # everything that could trade did: the book is not crossed
            assert Decimal(book["bids"][0]["price"]) < Decimal(book["asks"][0]["price"]), book
        reconcile = subprocess.run([sys.executable, "-m", "orders_app.reconcile"], cwd=ROOT_DIR, capture_output=True,
                                   text=True, timeout=120)
        assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
        assert reconcile.stdout.startswith("reconciliation: OK")
    finally:
        assert restarted.stop() == 0
