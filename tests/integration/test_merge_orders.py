"""MERGE_SAME_PRICE_ORDERS=true (the original system's behaviour), through a real API and worker."""
from __future__ import annotations

import uuid

import pytest
import requests

from orders_app import runtime_of
from orders_app.processes import ApiServer, WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.services.markets import add_market
from tests.support.names import unique_name
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow


def test_a_merge_into_an_order_filled_in_the_same_batch_still_rests_the_merged_rest(app, make_user):
    """Deterministic, in-process: the three commands settle in one batch — the old quantity fills, then
    the amendment re-enters the merged rest at the back. (Runs before the module's worker starts.)"""
    import dataclasses
    from decimal import Decimal

    from orders_app.messages import PlaceOrder
    from orders_app.services.placing import place_order
    from orders_app.services.settling import MarketRuntime, settle_commands
    ctx = runtime_of(app).ctx
    symbol = "N" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    # A copy made after the market exists: a copy's market list is its own (reloaded at most once a second).
    merging = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, merge_same_price_orders=True))
    buyer, seller = make_user("b", USD="100"), make_user("s", **{symbol: "5"})

    def place(user, side, quantity):
        return place_order(PlaceOrder(user_id=user.id, side=side, symbol=symbol, price=Decimal("10"),
                                      quantity=Decimal(quantity)), merging).order
    first = place(buyer, "buy", "1")
    sell = place(seller, "sell", "1")
    merged = place(buyer, "buy", "2")
    assert merged["id"] == first["id"] and merged["quantity"] == Decimal("3")
    runtime = MarketRuntime(ctx.resolve_market(symbol))
    batch = settle_commands(runtime, [], ctx, up_to_seq=3)
    assert (batch.commands, batch.trades) == (3, 1)
    assert runtime.book.get(first["id"]) == 2 * 10**8  # the merged rest is in the matching book, not only in the DB
    order = buyer.orders(currency_symbol=symbol)[0]
    assert (order["status"], order["filled_quantity"], order["remaining_quantity"]) == ("partially_filled", "1", "2")
    assert seller.orders(currency_symbol=symbol)[0]["status"] == "completed" and sell["status"] == "pending"
    assert buyer.balances()["USD"]["locked"] == "20"
    book = app.test_client().get(f"/api/orderbook/{symbol}").json
    assert book["bids"] == [{"price": "10", "quantity": "2"}]
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()


@pytest.fixture(scope="module")
def merging_stack(stack_env):
    api = ApiServer("api-merge", workers=1, MERGE_SAME_PRICE_ORDERS="true")
    worker = WorkerProcess("worker-merge", KAFKA_MAX_POLL_INTERVAL_MS="3000")
    yield api
    worker.stop()
    api.stop()


def test_a_buy_at_the_same_price_joins_the_pending_buy_which_moves_to_the_back(app, merging_stack, admin_headers):
    ctx = runtime_of(app).ctx
    symbol = "M" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    url = merging_stack.url

    def user(**deposits):
        created = requests.post(f"{url}/api/admin/users", json={"name": unique_name()}, headers=admin_headers,
                                timeout=10).json()
        for asset, amount in deposits.items():
            requests.post(f"{url}/api/admin/deposits", headers=admin_headers, timeout=10,
                          json={"userId": created["user"]["id"], "currency_symbol": asset, "amount": amount})
        return created["user"]["id"], {"Authorization": f"Bearer {created['api_key']}"}

    def place(headers, **body):
        response = requests.post(f"{url}/api/orders", json=dict(body, currency_symbol=symbol), headers=headers,
                                 timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["order"]

    def order(headers, order_id):
        return requests.get(f"{url}/api/orders/{order_id}", headers=headers, timeout=10).json()["order"]

    alice_id, alice = user(USD="1000")
    _, bob = user(USD="1000")
    _, seller = user(**{symbol: "10"})
    first = place(alice, order_type="buy", price="10", quantity="1")
    wait_settled(ctx)
    bobs = place(bob, order_type="buy", price="10", quantity="1")
    merged = place(alice, order_type="buy", price="10", quantity="2")
    assert merged["id"] == first["id"] and merged["quantity"] == "3" and merged["status"] == "pending"
    other_price = place(alice, order_type="buy", price="9", quantity="1")
    assert other_price["id"] != first["id"]
    balances = requests.get(f"{url}/api/balances/{alice_id}", params={"symbol": "USD"}, headers=alice,
                            timeout=10).json()["balances"][0]
    assert (balances["locked"], balances["available"]) == ("39", "961")
    wait_settled(ctx)
    place(seller, order_type="sell", price="10", quantity="2")
    wait_settled(ctx)
    # Bob's order, placed before the merge, now comes first; Alice's merged order is behind it.
    assert order(bob, bobs["id"])["status"] == "completed"
    alice_order = order(alice, first["id"])
    assert (alice_order["status"], alice_order["filled_quantity"], alice_order["remaining_quantity"]) == (
        "partially_filled", "1", "2")
    book = requests.get(f"{url}/api/orderbook/{symbol}", timeout=10).json()
    assert book["bids"] == [{"price": "10", "quantity": "2"}, {"price": "9", "quantity": "1"}]
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()
