"""Orders through the API are matched by a real `python consumer.py` and settled to the last decimal.

Each test trades in a market of its own (added at run time), so books never interfere. After every test
the whole database reconciles: per asset, balances = deposits − withdrawals; ledger, holds and fills agree.
"""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from kafka import KafkaProducer

from orders_app.messaging.codec import MalformedMessage, decode_market_event
from orders_app.processes import WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.services.markets import add_market
from tests.support.book import Book, balances
from tests.support.kafka import TopicReader, wait_consumed
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow
SETTLE_TIMEOUT_S = 30


CONSUMER_GROUP = f"e2e-{uuid.uuid4().hex[:8]}"  # of its own: a reused group may never form on the test broker


@pytest.fixture(scope="module")
def worker(stack_env):
    process = WorkerProcess("worker-e2e", KAFKA_MAX_POLL_INTERVAL_MS="3000", KAFKA_CONSUMER_GROUP=CONSUMER_GROUP)
    process.wait_logged('"partitions assigned"')  # it reads the topic, not only the database's catch-up
    yield process
    assert process.stop() == 0


@pytest.fixture()
def market(worker, ctx):
    symbol = "T" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    yield symbol
    wait_settled(ctx)
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()


@pytest.fixture()
def book(client, ctx, market):
    return Book(client, ctx, market)


def test_buy_crossing_a_resting_sell_trades_at_the_makers_price(book, make_user):
    seller = make_user("seller", **{book.symbol: "2"})
    buyer = make_user("buyer", USD="1000")
    sell_id = book.place(seller, order_type="sell", price="100.5", quantity="1.5")
    book.settle()
    buy_id = book.place(buyer, order_type="buy", price="101", quantity="1")
    book.settle()
    assert balances(buyer, "USD") == ("899.5", "899.5", "0")  # paid 100.5, the 0.5 improvement released
    assert balances(buyer, book.symbol) == ("1", "1", "0")
    assert balances(seller, book.symbol) == ("1", "0.5", "0.5")
    assert balances(seller, "USD") == ("100.5", "100.5", "0")
    buy, sell = book.order(buyer, buy_id), book.order(seller, sell_id)
    assert (buy["status"], buy["filled_quantity"], buy["remaining_quantity"]) == ("completed", "1", "0")
    assert (sell["status"], sell["filled_quantity"], sell["remaining_quantity"]) == ("partially_filled", "1", "0.5")
    assert sell["sell_quantity"] == sell["filled_quantity"]
    [trade] = book.trades()
    assert (trade["price"], trade["quantity"], trade["taker_side"]) == ("100.5", "1", "buy")
    assert (trade["buy_order_id"], trade["sell_order_id"]) == (buy_id, sell_id)
    assert book.depth() == ([], [("100.5", "0.5")])


def test_each_side_of_a_trade_is_a_fill_of_its_owner_and_orders_sum_what_they_traded(client, book, make_user):
    seller = make_user("seller", **{book.symbol: "2"})
    buyer = make_user("buyer", USD="1000")
    sell_id = book.place(seller, order_type="sell", price="100.5", quantity="1.5")
    book.settle()
    buy_id = book.place(buyer, order_type="buy", price="101", quantity="1")
    book.settle()
    market = f"{book.symbol}-USD"
    [trade] = book.trades()
    assert trade["market"] == market
    buy, sell = book.order(buyer, buy_id), book.order(seller, sell_id)
    assert (buy["filled_quote"], buy["status_reason"], buy["market"]) == ("100.5", "filled", market)
    assert (sell["filled_quote"], sell["status_reason"]) == ("100.5", None)
    [bought] = fills(client, buyer)
    assert bought == {"trade_id": trade["id"], "order_id": buy_id, "market": market, "currency_symbol": book.symbol,
                      "side": "buy", "price": "100.5", "quantity": "1", "quote_quantity": "100.5", "fee": "0",
                      "fee_asset": book.symbol, "liquidity": "taker", "timestamp": trade["timestamp"]}
    [sold] = fills(client, seller)
    assert (sold["order_id"], sold["side"], sold["liquidity"], sold["fee_asset"]) == (sell_id, "sell", "maker", "USD")
    book.place(buyer, order_type="buy", price="100.5", quantity="0.25")
    book.settle()
    assert book.order(seller, sell_id)["filled_quote"] == "125.625"  # 100.5 + 0.25 x 100.5
    newest, older = fills(client, seller)
    assert newest["trade_id"] > older["trade_id"] == sold["trade_id"]
    assert fills(client, seller, limit=1) == [newest]
    assert fills(client, seller, limit=1, before_id=newest["trade_id"]) == [older]
    assert fills(client, seller, order_id=sell_id, currency_symbol=market) == [newest, older]
    assert fills(client, seller, order_id=buy_id) == [] and fills(client, seller, currency_symbol="ETH") == []


def test_cancels_by_client_order_id_and_of_all_orders_end_them_as_user_cancels(client, book, make_user):
    trader = make_user("t", USD="100")
    named = book.place(trader, order_type="buy", price="1", quantity="1", client_order_id="mine")
    others = [book.place(trader, order_type="buy", price="2", quantity="1") for _ in range(2)]
    book.settle()
    assert client.delete("/api/orders/by-client-id/mine", headers=trader.headers).status_code == 202
    everything = client.delete("/api/orders", query_string={"currency_symbol": book.symbol}, headers=trader.headers)
    assert sorted(order["id"] for order in everything.json["orders"]) == others
    book.settle()
    assert [(book.order(trader, order_id)["status"], book.order(trader, order_id)["status_reason"])
            for order_id in (named, *others)] == [("cancelled", "user_cancel")] * 3
    assert balances(trader, "USD") == ("100", "100", "0")


def fills(client, user, **query) -> list[dict]:
    response = client.get("/api/fills", query_string=query, headers=user.headers)
    assert response.status_code == 200, response.json
    return response.json["fills"]


def test_price_time_priority_better_price_first_then_earlier(book, make_user):
    makers = [make_user("maker", **{book.symbol: "1"}) for _ in range(3)]
    taker = make_user("taker", USD="1000")
    late_cheap = None
    first = book.place(makers[0], order_type="sell", price="10", quantity="1")
    second = book.place(makers[1], order_type="sell", price="10", quantity="1")
    late_cheap = book.place(makers[2], order_type="sell", price="9.5", quantity="1")
    book.settle()
    book.place(taker, order_type="buy", price="10", quantity="2.5")
    book.settle()
    trades = list(reversed(book.trades()))
    assert [(t["sell_order_id"], t["price"], t["quantity"]) for t in trades] == [
        (late_cheap, "9.5", "1"), (first, "10", "1"), (second, "10", "0.5")]
    assert book.order(makers[1], second)["status"] == "partially_filled"
    assert balances(taker, "USD") == ("975.5", "975.5", "0")


def test_ioc_fills_what_it_can_and_cancels_the_rest(book, make_user):
    seller, buyer = make_user("s", **{book.symbol: "1"}), make_user("b", USD="100")
    book.place(seller, order_type="sell", price="10", quantity="0.4")
    book.settle()
    ioc = book.place(buyer, order_type="buy", price="10", quantity="1", time_in_force="IOC")
    book.settle()
    order = book.order(buyer, ioc)
    assert (order["status"], order["filled_quantity"], order["status_reason"]) == ("cancelled", "0.4", "ioc")
    assert order["filled_quote"] == "4"
    assert balances(buyer, "USD") == ("96", "96", "0")
    assert book.depth() == ([], [])


def test_fok_that_cannot_fill_fully_is_rejected_without_any_trade(book, make_user):
    seller, buyer = make_user("s", **{book.symbol: "1"}), make_user("b", USD="100")
    book.place(seller, order_type="sell", price="10", quantity="0.4")
    book.settle()
    fok = book.place(buyer, order_type="buy", price="10", quantity="1", time_in_force="FOK")
    book.settle()
    assert (book.order(buyer, fok)["status"], book.order(buyer, fok)["status_reason"]) == ("rejected", "fok")
    assert book.trades() == [] and balances(buyer, "USD") == ("100", "100", "0")
    filled = book.place(buyer, order_type="buy", price="10", quantity="0.4", time_in_force="FOK")
    book.settle()
    assert (book.order(buyer, filled)["status"], book.order(buyer, filled)["status_reason"]) == ("completed", "filled")


def test_post_only_that_would_take_is_rejected_and_otherwise_rests(book, make_user):
    seller, buyer = make_user("s", **{book.symbol: "1"}), make_user("b", USD="100")
    book.place(seller, order_type="sell", price="10", quantity="1")
    book.settle()
    taking = book.place(buyer, order_type="buy", price="10", quantity="1", post_only=True)
    resting = book.place(buyer, order_type="buy", price="9.99", quantity="1", post_only=True)
    book.settle()
    assert (book.order(buyer, taking)["status"], book.order(buyer, taking)["status_reason"]) == ("rejected",
                                                                                                "post_only")
    assert (book.order(buyer, resting)["status"], book.order(buyer, resting)["status_reason"]) == ("pending", None)
    assert balances(buyer, "USD") == ("100", "90.01", "9.99")


def test_self_trade_prevention_cancels_the_incoming_rest_and_keeps_the_resting_order(book, make_user):
    trader = make_user("t", USD="100", **{book.symbol: "1"})
    other = make_user("o", **{book.symbol: "1"})
    cheaper = book.place(other, order_type="sell", price="9", quantity="0.5")
    own = book.place(trader, order_type="sell", price="10", quantity="1")
    book.settle()
    incoming = book.place(trader, order_type="buy", price="10", quantity="1")
    book.settle()
    order = book.order(trader, incoming)
    assert (order["status"], order["filled_quantity"], order["status_reason"]) == ("cancelled", "0.5", "self_trade")
    assert book.order(other, cheaper)["status"] == "completed"
    assert book.order(trader, own)["status"] == "pending"
    assert balances(trader, "USD") == ("95.5", "95.5", "0")


def test_market_buy_by_quote_buys_whole_lots_level_by_level_and_releases_the_dust(book, make_user):
    seller, buyer = make_user("s", **{book.symbol: "3"}), make_user("b", USD="100")
    book.place(seller, order_type="sell", price="3", quantity="1")
    book.place(seller, order_type="sell", price="7", quantity="2")
    book.settle()
    market = book.place(buyer, order_type="buy", type="market", quote_quantity="10.00000001")
    book.settle()
    order = book.order(buyer, market)
    # 1 at 3, then floor(7.00000001 / 7, lots) = 1.00000000 at 7: spent 10, dust 0.00000001 released
    assert (order["status"], order["filled_quantity"]) == ("completed", "2")
    assert balances(buyer, "USD") == ("90", "90", "0")
    assert balances(buyer, book.symbol) == ("2", "2", "0")


def test_market_orders_without_liquidity_are_cancelled_with_the_hold_released(book, make_user):
    trader = make_user("t", USD="50", **{book.symbol: "1"})
    sell = book.place(trader, order_type="sell", type="market", quantity="0.5")
    buy = book.place(trader, order_type="buy", type="market", quote_quantity="20")
    book.settle()
    assert book.order(trader, sell)["status"] == "cancelled" and book.order(trader, buy)["status"] == "cancelled"
    reasons = {book.order(trader, sell)["status_reason"], book.order(trader, buy)["status_reason"]}
    assert reasons == {"market_no_liquidity"}
    assert balances(trader, "USD") == ("50", "50", "0") and balances(trader, book.symbol) == ("1", "1", "0")


def test_market_sell_fills_best_bids_first(book, make_user):
    buyers = [make_user("b", USD="100") for _ in range(2)]
    seller = make_user("s", **{book.symbol: "2"})
    book.place(buyers[0], order_type="buy", price="4", quantity="1")
    book.place(buyers[1], order_type="buy", price="5", quantity="1")
    book.settle()
    sell = book.place(seller, order_type="sell", type="market", quantity="1.5")
    book.settle()
    assert book.order(seller, sell)["status"] == "completed"
    assert balances(seller, "USD") == ("7", "7", "0")  # 1 x 5 + 0.5 x 4
    assert book.depth() == ([("4", "0.5")], [])


def test_cancel_releases_the_hold_and_a_filled_order_cannot_be_cancelled(client, book, make_user):
    buyer, seller = make_user("b", USD="100"), make_user("s", **{book.symbol: "1"})
    resting = book.place(buyer, order_type="buy", price="10", quantity="2")
    filled = book.place(seller, order_type="sell", price="10", quantity="1")
    book.settle()
    assert client.delete(f"/api/orders/{resting}", headers=buyer.headers).status_code == 202
    book.settle()
    order = book.order(buyer, resting)
    assert (order["status"], order["filled_quantity"], order["status_reason"]) == ("cancelled", "1", "user_cancel")
    assert balances(buyer, "USD") == ("90", "90", "0")
    response = client.delete(f"/api/orders/{filled}", headers=seller.headers)
    assert response.status_code == 409 and response.json["error"]["code"] == "ORDER_NOT_CANCELLABLE"


def test_many_levels_and_exact_decimals(book, make_user):
    seller, buyer = make_user("s", **{book.symbol: "10"}), make_user("b", USD="1000000")
    prices = [Decimal("1.000001") + Decimal(i) / 7 // Decimal("0.000001") * Decimal("0.000001") for i in range(20)]
    for price in prices:
        book.place(seller, order_type="sell", price=str(price), quantity="0.12345678")
    book.settle()
    book.place(buyer, order_type="buy", price="100", quantity="2.46913560")  # exactly 20 x 0.12345678
    book.settle()
    cost = sum(price * Decimal("0.12345678") for price in prices)
    assert Decimal(balances(buyer, "USD")[0]) == Decimal(1000000) - cost
    assert Decimal(balances(seller, "USD")[0]) == cost
    assert len(book.trades()) == 20 and book.depth() == ([], [])


def _symbol_of(raw: bytes) -> str | None:
    """The market of a record; None for the bad records other tests put on the topic."""
    try:
        return decode_market_event(raw).symbol
    except MalformedMessage:
        return None


def test_duplicate_and_replayed_order_events_change_nothing(stack_env, book, make_user):
    seller, buyer = make_user("s", **{book.symbol: "1"}), make_user("b", USD="100")
    book.place(seller, order_type="sell", price="10", quantity="1")
    book.place(buyer, order_type="buy", price="10", quantity="0.5")
    book.settle()
    before = (balances(seller, "USD"), balances(buyer, "USD"), len(book.trades()))
    reader = TopicReader(stack_env["KAFKA_BOOTSTRAP_SERVERS"], "order-events")
    # read until both are there: the relay may publish them after the worker applied them from the database
    mine = reader.wait_until(lambda record: _symbol_of(record.value) == book.symbol, count=2)
    reader.close()
    producer = KafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    for _ in range(2):
        for record in mine:
            producer.send("order-events", key=record.key, value=record.value)
    producer.flush()
    producer.close()
    wait_consumed(stack_env["KAFKA_BOOTSTRAP_SERVERS"], CONSUMER_GROUP)  # the replays reached it
    book.settle()
    assert (balances(seller, "USD"), balances(buyer, "USD"), len(book.trades())) == before

