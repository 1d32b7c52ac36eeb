"""What an operator sees: the worker's Prometheus page moves when orders flow, a request id travels from
the API's log line to the worker's, and no secret (admin token, API key, database password) is logged.

The API (gunicorn) and the worker (`consumer.py`) are real processes here, connected to the database
as the stack's user, which has a password (a random one: finding it anywhere in a log is unambiguous),
so that masking it is actually tested.
"""
from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.engine import make_url

from orders_app import worker_metrics
from orders_app.models import MarketSequence
from orders_app.processes import TEST_LOG_DIR, ApiServer, WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.repositories import settlement
from orders_app.services.markets import add_market
from orders_app.worker import Worker
from tests.support.metrics import scrape
from tests.support.names import unique_name
from tests.support.waits import wait_until

pytestmark = pytest.mark.slow
SETTLE_TIMEOUT_S = 30
@pytest.fixture(scope="module")
def database_password(stack_env) -> str:
    password = make_url(stack_env["DATABASE_URL"]).password
    assert password and len(password) >= 24  # the dev stack's user has a random one
    return password


@pytest.fixture(scope="module")
def processes(stack_env, database_password):
    for name in ("api-observability", "worker-observability"):
        (TEST_LOG_DIR / f"{name}.log").unlink(missing_ok=True)
    env = {"DATABASE_URL": stack_env["DATABASE_URL"], "LOG_LEVEL": "INFO", "KAFKA_MAX_POLL_INTERVAL_MS": "3000"}
    api = ApiServer("api-observability", workers=2, **env)
    # A consumer group of its own: this worker gets every partition (its Kafka lag is then reported).
    worker = WorkerProcess("worker-observability", KAFKA_CONSUMER_GROUP="obs-" + uuid.uuid4().hex[:8], **env)
    try:
        worker.wait_logged('"worker started"')  # its start-up lines are checked below
    except BaseException:
        worker.stop()
        api.stop()
        raise
    yield api, worker
    api.stop()
    assert worker.stop() == 0


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def log_lines(path) -> list[dict]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_sequence_lag_and_outbox_backlog_gauges_follow_the_database(app, ctx, make_user, client):
    """In-process, deterministic: accepted-but-unapplied commands show as lag until settled."""
    symbol = "L" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    seller = make_user("lag", **{symbol: "5"})
    worker = Worker(ctx)
    for price in ("10", "11"):
        assert seller.place(order_type="sell", currency_symbol=symbol, price=price, quantity="1").status_code == 201
    worker._refresh_gauges()
    lag_samples = {s.labels["symbol"]: s.value for family in worker_metrics.REGISTRY.collect()
                   if family.name == "orders_worker_sequence_lag_commands" for s in family.samples}
    assert lag_samples[symbol] == 2
    backlog = worker_metrics.REGISTRY.get_sample_value("orders_worker_outbox_unpublished_rows")
    assert backlog is not None and backlog >= 0

    with ctx.uow() as uow:
        target = uow.session.execute(select(MarketSequence.last_seq)
                                     .where(MarketSequence.market_id == ctx.resolve_market(symbol).id)).scalar_one()
    # Another worker of this suite may settle the market first; either way the lag must fall to zero.
    worker._settle(ctx.resolve_market(symbol).name, [], up_to_seq=target)
    worker._refresh_gauges()
    assert worker_metrics.REGISTRY.get_sample_value("orders_worker_sequence_lag_commands", {"symbol": symbol}) == 0


def test_worker_metrics_move_when_orders_flow_and_request_ids_reach_its_log(processes, ctx):
    api, worker = processes
    symbol = "M" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    admin = {"Authorization": f"Bearer {ctx.settings.admin_token}"}

    def new_user(**deposits):
        created = requests.post(f"{api.url}/api/admin/users", json={"name": unique_name("obs")}, headers=admin,
                                timeout=10).json()
        for asset, amount in deposits.items():
            assert requests.post(f"{api.url}/api/admin/deposits", headers=admin, timeout=10, json={
                "userId": created["user"]["id"], "currency_symbol": asset, "amount": amount}).status_code == 201
        return created["user"]["id"], {"Authorization": f"Bearer {created['api_key']}"}

    seller_id, seller = new_user(**{symbol: "3"})
    buyer_id, buyer = new_user(USD="1000")
    before = scrape(worker.metrics_url)
    assert ("orders_worker_outbox_unpublished_rows", ()) in before  # served, with its gauges

    sell_request_id = "sell-" + uuid.uuid4().hex
    buy_request_id = "buy-" + uuid.uuid4().hex
    sell = requests.post(f"{api.url}/api/orders", timeout=10, headers={**seller, "X-Request-ID": sell_request_id},
                         json={"order_type": "sell", "currency_symbol": symbol, "price": "10", "quantity": "2"})
    assert sell.status_code == 201 and sell.headers["X-Request-ID"] == sell_request_id
    buy = requests.post(f"{api.url}/api/orders", timeout=10, headers={**buyer, "X-Request-ID": buy_request_id},
                        json={"order_type": "buy", "currency_symbol": symbol, "price": "10", "quantity": "1.5"})
    assert buy.status_code == 201
    sell_id, buy_id = sell.json()["order"]["id"], buy.json()["order"]["id"]

    def settled():
        order = requests.get(f"{api.url}/api/orders/{buy_id}", headers=buyer, timeout=10).json()["order"]
        return order["status"] == "completed"
    wait_until(settled, what="the buy filled")
    after = wait_until(lambda: (lambda s: s if value(s, "orders_worker_sequence_lag_commands", symbol=symbol) == 0
                                and ("orders_worker_sequence_lag_commands", (("symbol", symbol),)) in s else None)(
        scrape(worker.metrics_url)), what="the lag gauge of the new market at zero")

    assert value(after, "orders_worker_trades_total", symbol=symbol) == 1
    assert value(after, "orders_worker_commands_total", symbol=symbol) == 2
    assert value(after, "orders_worker_settle_batch_commands_count", symbol=symbol) >= 1
    assert value(after, "orders_worker_settle_batch_commands_sum", symbol=symbol) == 2
    assert value(after, "orders_worker_settle_batch_duration_seconds_sum", symbol=symbol) > 0
    assert (value(after, "orders_worker_orders_settled_total", outcome="completed")
            >= value(before, "orders_worker_orders_settled_total", outcome="completed") + 1)
    assert (value(after, "orders_worker_orders_settled_total", outcome="partially_filled")
            >= value(before, "orders_worker_orders_settled_total", outcome="partially_filled") + 1)
    assert value(after, "process_resident_memory_bytes") > 0
    kafka_lags = wait_until(lambda: [key for key in scrape(worker.metrics_url)
                                     if key[0] == "orders_worker_kafka_lag_records"],
                            timeout_s=60, what="a Kafka partition assigned to the worker")
    assert all(dict(labels)["partition"].isdigit() for _, labels in kafka_lags)

    # The request id of each order: in the API's request line and in the worker's settlement line.
    def worker_saw(order_id, request_id):
        for line in log_lines(worker.log_path):
            if line.get("msg") == "orders settled" and line.get("market") == f"{symbol}-USD":  # logs name markets
                if any(entry[0] == order_id and entry[2] == request_id for entry in line["orders"]):
                    return True
        return False
    wait_until(lambda: worker_saw(buy_id, buy_request_id) and worker_saw(sell_id, sell_request_id),
               timeout_s=10, what="the worker's log line with the request ids")
    api_lines = [line for line in log_lines(api.log_path)
                 if line.get("msg") == "request" and line.get("path") == "/api/orders" and line.get("method") == "POST"]
    assert {buy_request_id, sell_request_id} <= {line["request_id"] for line in api_lines}

    # A cancel is traced by its own request id: the worker's line for the order it cancelled carries it.
    cancel_request_id = "cancel-" + uuid.uuid4().hex
    cancel = requests.delete(f"{api.url}/api/orders/{sell_id}", timeout=10,
                             headers={**seller, "X-Request-ID": cancel_request_id})
    assert cancel.status_code == 202, cancel.text
    wait_until(lambda: worker_saw(sell_id, cancel_request_id), timeout_s=SETTLE_TIMEOUT_S,
               what="the worker's log line with the cancel's request id")
    assert any(line.get("request_id") == cancel_request_id and line.get("method") == "DELETE"
               for line in log_lines(api.log_path) if line.get("msg") == "request")

    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()


def test_commands_read_back_from_the_database_keep_their_request_ids(ctx, client, make_user):
    """The worker's catch-up path (Kafka lost the commands) reads them from the outbox: request ids too."""
    alice = make_user("trace", USD="100")
    placed = client.post("/api/orders", headers={**alice.headers, "X-Request-ID": "trace-place"}, json={
        "order_type": "buy", "currency_symbol": "BTC", "price": "1", "quantity": "1"})
    assert placed.status_code == 201, placed.get_json()
    order_id = placed.get_json()["order"]["id"]
    cancelled = client.delete(f"/api/orders/{order_id}", headers={**alice.headers, "X-Request-ID": "trace-cancel"})
    assert cancelled.status_code == 202, cancelled.get_json()
    with ctx.uow() as uow:
        market_id = ctx.resolve_market("BTC").id
        seqs = uow.session.execute(select(MarketSequence.last_seq).where(MarketSequence.market_id == market_id))
        last_seq = seqs.scalar_one()
        commands = settlement.commands_between(uow.session, market_id, 1, last_seq)
    mine = [(c.event_type, c.request_id) for c in commands if c.order_id == order_id]
    assert mine == [("order_placed", "trace-place"), ("cancel_requested", "trace-cancel")]


def test_no_secret_is_logged_and_settings_are_logged_masked(processes, ctx, database_password):
    api, worker = processes
    # A request with a user's key, one with the admin token, one with a wrong key: none may echo them.
    created = requests.post(f"{api.url}/api/admin/users", json={"name": unique_name("secret")}, timeout=10,
                            headers={"Authorization": f"Bearer {ctx.settings.admin_token}"}).json()
    api_key = created["api_key"]
    wrong_key = "ok_wrong-" + uuid.uuid4().hex
    assert requests.get(f"{api.url}/api/orders", headers={"Authorization": f"Bearer {api_key}"},
                        timeout=10).status_code == 200
    refused = requests.get(f"{api.url}/api/orders", headers={"Authorization": f"Bearer {wrong_key}"}, timeout=10)
    assert refused.status_code == 401
    wait_until(lambda: any(line.get("request_id") == refused.headers["X-Request-ID"]
                           for line in log_lines(api.log_path) if line.get("msg") == "request"),
               timeout_s=10, what="the refused request's log line")  # the checks below must see it
    texts = {"api": api.log_path.read_text(errors="replace"), "worker": worker.log_path.read_text(errors="replace")}
    for name, logged in texts.items():
        assert database_password not in logged, f"the database password is in the {name} log"
        assert ctx.settings.admin_token not in logged, f"the admin token is in the {name} log"
        assert api_key not in logged and wrong_key not in logged, f"an API key is in the {name} log"
        starting = [line for line in log_lines((api if name == "api" else worker).log_path)
                    if line.get("msg") == "starting"]
        assert starting, f"the {name} logs its settings at start-up"
        settings = starting[-1]["settings"]
        assert settings["admin_token"] in ("***", "") and ":***@" in settings["database_url"]
        assert Decimal(settings["rate_limit_orders_per_second"]) == 0
