"""Orders matched by a real `python consumer.py` show up in the candles and the ticker, exactly."""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import pytest

from orders_app.processes import WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.services.candles import INTERVALS_S
from orders_app.services.markets import add_market
from tests.support.book import Book
from tests.support.trades import api_candles, brute_force_candles

pytestmark = pytest.mark.slow


@pytest.fixture()
def book(stack_env, client, ctx):
    worker = WorkerProcess("worker-market-data", KAFKA_MAX_POLL_INTERVAL_MS="3000")
    symbol = "M" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    try:
        yield Book(client, ctx, symbol)
        Book(client, ctx, symbol).settle()
    finally:
        assert worker.stop() == 0
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()


def test_trades_settled_by_the_worker_are_in_the_candles_and_the_ticker(client, book, make_user):
    seller = make_user("seller", **{book.symbol: "2"})
    buyer = make_user("buyer", USD="1000")
    book.place(seller, order_type="sell", price="100", quantity="1")
    book.place(seller, order_type="sell", price="101", quantity="1")
    book.place(buyer, order_type="buy", price="95", quantity="1")
    book.settle()
    book.place(buyer, order_type="buy", price="101", quantity="1.5")
    book.settle()

    trades = [(t["id"], Decimal(t["price"]), Decimal(t["quantity"]),
               datetime.strptime(t["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")) for t in book.trades()]
    assert sorted((price, quantity) for _, price, quantity, _ in trades) == [(100, 1), (101, Decimal("0.5"))]
    for interval, interval_s in INTERVALS_S.items():
        response = client.get(f"/api/candles/{book.symbol}-USD", query_string={"interval": interval})
        assert api_candles(response.json["candles"]) == brute_force_candles(trades, interval_s), interval
    assert client.get(f"/api/ticker/{book.symbol}").json == {
        "market": f"{book.symbol}-USD", "last_price": "101", "best_bid": "95", "best_ask": "101",
        "open_24h": "100", "high_24h": "101", "low_24h": "100", "volume_24h": "1.5", "quote_volume_24h": "150.5",
        "trade_count_24h": 2}
