"""PyMySQL stays a supported DATABASE_URL beside the C driver the stack hands out: an API (gunicorn) and a
worker (`python consumer.py` and its relay) that both talk `mysql+pymysql://` take two orders, match them and
settle them to the last decimal, and the database reconciles."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from orders_app.processes import ApiServer, WorkerProcess, child_pids
from orders_app.reconcile import reconcile
from orders_app.services.markets import add_market
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow


def _pymysql_url(url: str) -> str:
    return make_url(url).set(drivername="mysql+pymysql").render_as_string(hide_password=False)


def _loaded_c_driver(pid: int) -> bool:
    return "/MySQLdb/_mysql" in Path(f"/proc/{pid}/maps").read_text()


def test_an_api_and_a_worker_on_pymysql_match_and_settle_an_order(stack_env, ctx, make_user):
    symbol = "P" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)  # before the processes start: they load the markets once
    seller, buyer = make_user("seller", **{symbol: "2"}), make_user("buyer", USD="1000")
    env = {"DATABASE_URL": _pymysql_url(stack_env["DATABASE_URL"]),
           "KAFKA_CONSUMER_GROUP": f"pymysql-{uuid.uuid4().hex[:8]}"}
    api = ApiServer("api-pymysql", workers=1, threads=4, **env)
    worker = WorkerProcess("worker-pymysql", **env)
    try:
        worker.wait_logged('"partitions assigned"')

        def call(method: str, path: str, user, **body) -> dict:
            response = requests.request(method, f"{api.url}{path}", headers=user.headers, json=body or None,
                                        timeout=30)
            assert response.status_code in (200, 201), response.text
            return response.json()

        sell = call("POST", "/api/orders", seller, order_type="sell", currency_symbol=symbol, price="100.5",
                    quantity="1.5")["order"]["id"]
        buy = call("POST", "/api/orders", buyer, order_type="buy", currency_symbol=symbol, price="101",
                   quantity="1")["order"]["id"]
        wait_settled(ctx)

        def balance(user, asset: str) -> tuple[str, str]:
            entry = {b["currency_symbol"]: b for b in call("GET", f"/api/balances/{user.id}", user)["balances"]}[asset]
            return entry["available"], entry["locked"]

        assert call("GET", f"/api/orders/{buy}", buyer)["order"]["status"] == "completed"
        sold = call("GET", f"/api/orders/{sell}", seller)["order"]
        assert (sold["status"], sold["filled_quantity"], sold["remaining_quantity"]) == ("partially_filled", "1", "0.5")
        assert balance(buyer, "USD") == ("899.5", "0") and balance(buyer, symbol) == ("1", "0")
        assert balance(seller, "USD") == ("100.5", "0") and balance(seller, symbol) == ("0.5", "0.5")
        pids = [*child_pids(api.process.pid), worker.process.pid, *child_pids(worker.process.pid)]
        assert len(pids) >= 3 and not any(_loaded_c_driver(pid) for pid in pids), "a process loaded MySQLdb"
    finally:
        worker.stop()
        api.stop()
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()
