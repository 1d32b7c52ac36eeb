"""Markets as pairs, assets, halts and fees through the API, matched by a real `python consumer.py`.

Each test makes assets and markets of its own (unique names), so books and the fee account's balances of
those assets belong to it alone. Every test that trades ends with the whole database reconciling, the fee
account included.
"""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from orders_app.models import OutboxEvent
from orders_app.processes import WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.repositories import markets
from tests.support.book import Book, balances
from tests.support.waits import wait_settled, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker(stack_env):
    process = WorkerProcess("worker-markets", KAFKA_MAX_POLL_INTERVAL_MS="3000")
    yield process
    assert process.stop() == 0


@pytest.fixture()
def reconciled(ctx):
    yield
    wait_settled(ctx)
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()


def unique_asset(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:9].upper()


def create_asset(client, admin_headers, scale: int, prefix: str = "A") -> str:
    symbol = unique_asset(prefix)
    response = client.post("/api/admin/assets", json={"symbol": symbol, "scale": scale}, headers=admin_headers)
    assert response.status_code == 201, response.json
    assert response.json == {"asset": {"symbol": symbol, "scale": scale}}
    return symbol


def create_market(client, admin_headers, **body) -> dict:
    response = client.post("/api/admin/markets", json=body, headers=admin_headers)
    assert response.status_code == 201, response.json
    return response.json["market"]


def patch_market(client, admin_headers, name: str, **body) -> dict:
    response = client.patch(f"/api/admin/markets/{name}", json=body, headers=admin_headers)
    assert response.status_code == 200, response.json
    return response.json["market"]


def fees_of(client, admin_headers) -> dict[str, str]:
    response = client.get("/api/admin/fees", headers=admin_headers)
    assert response.status_code == 200, response.json
    return {fee["currency_symbol"]: fee["amount"] for fee in response.json["fees"]}


# --- assets ------------------------------------------------------------------------------------------

def test_an_asset_is_created_once_with_its_scale_and_listed(client, admin_headers):
    symbol = create_asset(client, admin_headers, 4)
    again = client.post("/api/admin/assets", json={"symbol": symbol, "scale": 8}, headers=admin_headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "ALREADY_EXISTS"
    listed = client.get("/api/assets").json["assets"]
    assert {"symbol": symbol, "scale": 4} in listed and {"symbol": "USD", "scale": 14} in listed


@pytest.mark.parametrize("body", [{"symbol": "SCALEX", "scale": 19}, {"symbol": "SCALEX", "scale": -1},
                                  {"symbol": "SCALEX", "scale": "8"}, {"symbol": "SCALEX", "scale": 8.0},
                                  {"symbol": "scalex", "scale": 8}, {"symbol": "S-X", "scale": 8},
                                  {"symbol": "SCALEX"}])
def test_an_asset_with_a_bad_symbol_or_a_scale_outside_0_to_18_is_refused(client, admin_headers, body):
    response = client.post("/api/admin/assets", json=body, headers=admin_headers)
    assert response.status_code == 400 and response.json["error"]["code"] == "VALIDATION_ERROR"
    assert "SCALEX" not in {a["symbol"] for a in client.get("/api/assets").json["assets"]}


def test_a_user_key_cannot_create_assets_markets_or_read_fees(client, make_user):
    user = make_user("nonadmin")
    assert client.post("/api/admin/assets", json={"symbol": "NOPE", "scale": 2},
                       headers=user.headers).status_code == 403
    assert client.post("/api/admin/markets", json={}, headers=user.headers).status_code == 403
    halt = client.patch("/api/admin/markets/BTC-USD", json={"status": "halted"}, headers=user.headers)
    assert halt.status_code == 403
    assert client.get("/api/admin/fees", headers=user.headers).status_code == 403


def test_deposits_and_withdrawals_of_a_new_asset_work_at_its_scale(client, admin_headers, make_user):
    symbol = create_asset(client, admin_headers, 2)
    user = make_user("scaled")
    assert user.deposit(symbol, "10.25")["available"] == "10.25"
    finer = client.post("/api/admin/deposits", headers=admin_headers,
                        json={"userId": user.id, "currency_symbol": symbol, "amount": "0.001"})
    assert finer.status_code == 400 and finer.json["error"]["field"] == "amount"
    out = client.post("/api/admin/withdrawals", headers=admin_headers,
                      json={"userId": user.id, "currency_symbol": symbol, "amount": "0.25"})
    assert out.status_code == 201 and out.json["balance"]["balance"] == "10"


# --- markets -----------------------------------------------------------------------------------------

def test_the_default_markets_are_listed_as_pairs_with_version_1_terms_and_no_fees(client):
    markets = {m["symbol"]: m for m in client.get("/api/markets").json["markets"]}
    assert markets["BTC-USD"] == {
        "symbol": "BTC-USD", "base": "BTC", "quote": "USD", "price_step": "0.000001",
        "quantity_step": "0.00000001", "min_quantity": "0.00000001", "max_price": "1000000000",
        "max_quantity": "1000000000", "min_notional": "0", "maker_fee_rate": "0", "taker_fee_rate": "0",
        "status": "trading"}
    assert markets["ETH-USD"]["base"] == "ETH"


def test_a_market_name_and_its_bare_base_asset_name_the_same_market(client, alice):
    by_name = alice.place(order_type="buy", currency_symbol="BTC-USD", price="1", quantity="0.01")
    by_base = alice.place(order_type="buy", currency_symbol="BTC", price="1", quantity="0.01")
    assert by_name.status_code == by_base.status_code == 201
    assert by_name.json["order"]["currency_symbol"] == "BTC"
    assert by_name.json["order"]["fee"] == "0" and by_name.json["order"]["fee_asset"] == "BTC"
    ids = {o["id"] for o in alice.orders(currency_symbol="BTC-USD")}
    assert {by_name.json["order"]["id"], by_base.json["order"]["id"]} <= ids
    assert ids == {o["id"] for o in alice.orders(currency_symbol="BTC")}
    assert client.get("/api/orderbook/BTC-USD").json["market"] == "BTC-USD"
    unknown = alice.place(order_type="buy", currency_symbol="BTC-EURX", price="1", quantity="0.01")
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "UNKNOWN_SYMBOL"
    for order in (by_name, by_base):  # leave the shared BTC-USD book as it was
        assert client.delete(f"/api/orders/{order.json['order']['id']}", headers=alice.headers).status_code == 202


def test_a_market_is_refused_unless_every_amount_it_can_produce_is_exact_in_its_assets(client, admin_headers):
    base, quote = create_asset(client, admin_headers, 3, "B"), create_asset(client, admin_headers, 4, "Q")
    pair = {"base": base, "quote": quote}
    for body, field in [
        ({**pair, "price_step": "0.01", "quantity_step": "0.0001"}, "quantity_step"),  # finer than base's 3
        ({**pair, "price_step": "0.001", "quantity_step": "0.01"}, "price_step"),  # 0.00001: finer than 4
        ({**pair, "price_step": "0", "quantity_step": "0.1"}, "price_step"),
        ({**pair, "price_step": "0.01", "quantity_step": "0.1", "taker_fee_rate": "0.11"}, "taker_fee_rate"),
        ({**pair, "price_step": "0.01", "quantity_step": "0.1", "maker_fee_rate": "-0.001"}, "maker_fee_rate"),
    ]:
        response = client.post("/api/admin/markets", json=body, headers=admin_headers)
        assert response.status_code == 400, (body, response.json)
        assert response.json["error"]["field"] == field, response.json
    assert f"{base}-{quote}" not in {m["symbol"] for m in client.get("/api/markets").json["markets"]}
    market = create_market(client, admin_headers, **pair, price_step="0.01", quantity_step="0.1")
    assert (market["symbol"], market["min_quantity"], market["status"]) == (f"{base}-{quote}", "0.1", "trading")
    again = client.post("/api/admin/markets", json={**pair, "price_step": "0.1", "quantity_step": "1"},
                        headers=admin_headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "ALREADY_EXISTS"
    unknown = client.post("/api/admin/markets", json={"base": base, "quote": "NOSUCHQ", "price_step": "1",
                                                       "quantity_step": "1"}, headers=admin_headers)
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "UNKNOWN_SYMBOL"


def test_the_same_base_trades_in_two_markets_with_books_of_their_own(client, admin_headers, make_user, ctx,
                                                                     worker, reconciled):
    base = create_asset(client, admin_headers, 8, "B")
    create_market(client, admin_headers, base=base, quote="USD", price_step="0.01", quantity_step="0.01")
    create_market(client, admin_headers, base=base, quote="BTC", price_step="0.000001", quantity_step="0.01")
    seller = make_user("twin", **{base: "5"})
    usd = seller.place(order_type="sell", currency_symbol=base, price="3", quantity="1")  # bare: BASE-USD
    btc = seller.place(order_type="sell", currency_symbol=f"{base}-BTC", price="0.0001", quantity="2")
    assert usd.status_code == btc.status_code == 201
    wait_settled(ctx)
    assert client.get(f"/api/orderbook/{base}-USD").json["asks"] == [{"price": "3", "quantity": "1"}]
    assert client.get(f"/api/orderbook/{base}-BTC").json["asks"] == [{"price": "0.0001", "quantity": "2"}]
    assert balances(seller, base) == ("5", "2", "3")


def test_patching_an_unknown_market_is_404_and_a_bad_status_400(client, admin_headers):
    missing = client.patch("/api/admin/markets/NOPE-USD", json={"status": "halted"}, headers=admin_headers)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "NOT_FOUND"
    bad = client.patch("/api/admin/markets/BTC-USD", json={"status": "paused"}, headers=admin_headers)
    assert bad.status_code == 400
    assert client.get("/api/markets").json["markets"][0]["status"] == "trading"


# --- halts -------------------------------------------------------------------------------------------

def test_a_halted_market_refuses_new_orders_keeps_resting_ones_and_still_cancels(
        client, ctx, admin_headers, make_user, worker, reconciled):
    base = create_asset(client, admin_headers, 8, "H")
    name = create_market(client, admin_headers, base=base, quote="USD", price_step="0.01",
                         quantity_step="0.01")["symbol"]
    book = Book(client, ctx, name)
    seller = make_user("halt", **{base: "3"}, USD="100")
    resting = book.place(seller, order_type="sell", price="10", quantity="1")
    to_cancel = book.place(seller, order_type="sell", price="11", quantity="1")
    book.settle()

    assert patch_market(client, admin_headers, name, status="halted")["status"] == "halted"
    refused = seller.place(order_type="sell", currency_symbol=name, price="12", quantity="1")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "MARKET_HALTED"
    market_buy = seller.place(order_type="buy", currency_symbol=name, type="market", quantity="1")
    assert market_buy.status_code == 409
    assert client.delete(f"/api/orders/{to_cancel}", headers=seller.headers).status_code == 202
    book.settle()
    assert book.order(seller, to_cancel)["status"] == "cancelled"
    assert book.order(seller, resting)["status"] == "pending"
    assert book.depth() == ([], [("10", "1")])
    assert balances(seller, base) == ("3", "2", "1")

    assert patch_market(client, admin_headers, name, status="trading")["status"] == "trading"
    assert seller.place(order_type="sell", currency_symbol=name, price="12", quantity="1").status_code == 201


# --- fees --------------------------------------------------------------------------------------------

def _trade_events(ctx, market: str) -> list[dict]:
    with ctx.uow() as uow:
        payloads = uow.session.execute(select(OutboxEvent.payload).where(
            OutboxEvent.topic == ctx.settings.trade_events_topic, OutboxEvent.message_key == market)
            .order_by(OutboxEvent.id)).scalars()
        return [json.loads(payload) for payload in payloads]


def test_a_cross_market_charges_each_side_its_rate_on_what_it_receives_and_reconciles(
        client, ctx, admin_headers, make_user, worker, reconciled):
    """An ETH-BTC-like market: the quote has 8 decimals. The maker sells, the taker buys."""
    base, quote = create_asset(client, admin_headers, 8, "E"), create_asset(client, admin_headers, 8, "B")
    market = create_market(client, admin_headers, base=base, quote=quote, price_step="0.00001",
                           quantity_step="0.001", maker_fee_rate="0.001", taker_fee_rate="0.002")
    name = market["symbol"]
    assert (market["maker_fee_rate"], market["taker_fee_rate"]) == ("0.001", "0.002")
    book = Book(client, ctx, name)
    seller, buyer = make_user("maker", **{base: "10"}), make_user("taker", **{quote: "1"})
    sell_id = book.place(seller, order_type="sell", price="0.05", quantity="2")
    book.settle()
    buy_id = book.place(buyer, order_type="buy", price="0.06", quantity="1.5")
    book.settle()

    # 1.5 at 0.05 = 0.075 quote. Taker buyer: 0.2 % of 1.5 base = 0.003; maker seller: 0.1 % of 0.075 = 0.000075.
    assert balances(buyer, base) == ("1.497", "1.497", "0")
    assert balances(buyer, quote) == ("0.925", "0.925", "0")  # paid 0.075, the improvement released
    assert balances(seller, quote) == ("0.074925", "0.074925", "0")
    assert balances(seller, base) == ("8.5", "8", "0.5")
    buy, sell = book.order(buyer, buy_id), book.order(seller, sell_id)
    assert (buy["fee"], buy["fee_asset"], buy["status"]) == ("0.003", base, "completed")
    assert (sell["fee"], sell["fee_asset"], sell["status"]) == ("0.000075", quote, "partially_filled")
    fees = fees_of(client, admin_headers)
    assert (fees[base], fees[quote]) == ("0.003", "0.000075")
    [event] = _trade_events(ctx, name)
    assert (event["market"], event["currency_symbol"], event["taker_side"]) == (name, base, "buy")
    assert (event["buyer_fee"], event["buyer_fee_asset"]) == ("0.003", base)
    assert (event["seller_fee"], event["seller_fee_asset"]) == ("0.000075", quote)

    # A rate change applies to the trades after it: the rest of the sell fills fee-free for both.
    patch_market(client, admin_headers, name, maker_fee_rate="0", taker_fee_rate="0")
    book.place(buyer, order_type="buy", price="0.05", quantity="0.5")
    book.settle()
    assert balances(buyer, base) == ("1.997", "1.997", "0")
    assert balances(seller, quote) == ("0.099925", "0.099925", "0")
    assert book.order(seller, sell_id)["fee"] == "0.000075"
    assert fees_of(client, admin_headers)[base] == "0.003"


def test_the_smallest_trade_pays_a_whole_smallest_unit_of_fee_never_more_than_it_received(
        client, ctx, admin_headers, make_user, worker, reconciled):
    base, quote = create_asset(client, admin_headers, 2, "F"), create_asset(client, admin_headers, 2, "G")
    name = create_market(client, admin_headers, base=base, quote=quote, price_step="1", quantity_step="0.01",
                         maker_fee_rate="0.1", taker_fee_rate="0.1")["symbol"]
    book = Book(client, ctx, name)
    seller, buyer = make_user("tiny-s", **{base: "1"}), make_user("tiny-b", **{quote: "10"})
    book.place(seller, order_type="sell", price="1", quantity="0.01")
    book.settle()
    book.place(buyer, order_type="buy", price="1", quantity="0.01")
    book.settle()
    # Each received 0.01; 10 % of it is 0.001, rounded up to the scale: 0.01, all of it.
    assert balances(buyer, base) == ("0", "0", "0")
    assert balances(seller, quote) == ("0", "0", "0")
    assert fees_of(client, admin_headers)[base] == "0.01"


def test_a_halt_and_a_resume_made_by_another_process_reach_this_one_within_about_a_second(
        client, ctx, admin_headers, make_user):
    """Another API process answered the PATCH: this one learns it from the database, not from a request."""
    base = create_asset(client, admin_headers, 8, "P")
    name = create_market(client, admin_headers, base=base, quote="USD", price_step="0.01",
                         quantity_step="0.01")["symbol"]
    seller = make_user("elsewhere", **{base: "5"})
    assert seller.place(order_type="sell", currency_symbol=name, price="10", quantity="1").status_code == 201

    def set_status(status: str) -> None:
        with ctx.uow() as uow:  # as the other process would: a committed row, this process not told
            markets.update_market(uow.session, ctx.resolve_market(name).id, status=status)
            uow.commit()

    def answered(status_code: int):
        return lambda: seller.place(order_type="sell", currency_symbol=name, price="10",
                                    quantity="0.01").status_code == status_code
    set_status("halted")
    wait_until(answered(409), timeout_s=10, what="a halted market's 409")  # about a second, on a busy machine more
    set_status("trading")
    wait_until(answered(201), timeout_s=10, what="a resumed market's 201")
