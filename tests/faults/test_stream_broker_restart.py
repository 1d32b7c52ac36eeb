"""A stream process whose broker restarts (a memory broker: every topic gone) reconnects, reads its books
again and pushes fresh snapshots; deltas after the restart apply on them and match `/api/orderbook`."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from orders_app import runtime_of
from orders_app.processes import Broker, StreamProcess, WorkerProcess
from orders_app.services.markets import add_market
from tests.support.stream_client import BookReplica, StreamClient
from tests.support.waits import wait_market_applied

pytestmark = pytest.mark.slow
RESNAPSHOT_TIMEOUT_S = 60


def test_after_a_broker_restart_the_stream_pushes_a_fresh_snapshot_and_follows_the_book_again(app, make_user, client):
    ctx = runtime_of(app).ctx
    symbol = "R" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    market = f"{symbol}-{ctx.settings.quote_currency}"
    maker = make_user("maker", USD="100000", **{symbol: "100"})
    broker = Broker("broker-stream")
    worker = stream = subscriber = None
    try:
        worker = WorkerProcess("worker-stream-fault", KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
                               KAFKA_MAX_POLL_INTERVAL_MS="3000")
        stream = StreamProcess("stream-fault", KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
        subscriber = StreamClient(stream.url)
        subscriber.subscribe(f"book:{market}")
        book = BookReplica(subscriber.wait_for(lambda m: m.get("channel") == f"book:{market}"))

        def place(price: str) -> None:
            response = maker.place(currency_symbol=symbol, order_type="buy", price=price, quantity="1")
            assert response.status_code == 201, response.json

        place("90")
        book.apply(subscriber.wait_for(lambda m: m.get("channel") == f"book:{market}"))
        assert book.levels("bids") == [(Decimal(90), Decimal(1))]

        broker.stop()
        broker.start()
        place("91")  # settled while the stream reconnects: the fresh snapshot must hold it
        snapshot = subscriber.wait_for(lambda m: m.get("channel") == f"book:{market}" and m["type"] == "snapshot",
                                       timeout_s=RESNAPSHOT_TIMEOUT_S)
        book = BookReplica(snapshot)
        place("92")
        applied = wait_market_applied(ctx, market_id)
        while book.seq < applied:
            message = subscriber.wait_for(lambda m: m.get("channel") == f"book:{market}",
                                          timeout_s=RESNAPSHOT_TIMEOUT_S)
            book = BookReplica(message) if message["type"] == "snapshot" else book
            if message["type"] == "delta" and message["seq"] > book.seq:
                book.apply(message)
        rest = client.get(f"/api/orderbook/{symbol}").json
        assert book.levels("bids") == [(Decimal(level["price"]), Decimal(level["quantity"])) for level in rest["bids"]]
        assert [price for price, _ in book.levels("bids")] == [Decimal(92), Decimal(91), Decimal(90)]
    finally:
        if subscriber is not None:
            subscriber.close()
        for process in (stream, worker):
            if process is not None:
                process.stop()
        broker.stop()
