"""Orders carry their market; cancel by client_order_id, cancel all, and batches of orders, over HTTP."""
from __future__ import annotations

import dataclasses
import threading

import pytest

from orders_app.services import group_commit


def _limit_buy(price: str = "1", quantity: str = "1", symbol: str = "BTC", **extra) -> dict:
    return {"order_type": "buy", "currency_symbol": symbol, "price": price, "quantity": quantity, **extra}


def test_an_open_order_names_its_market_with_nothing_filled_and_no_status_reason(alice):
    order = alice.place(**_limit_buy()).json["order"]
    assert (order["market"], order["currency_symbol"]) == ("BTC-USD", "BTC")
    assert (order["filled_quote"], order["status_reason"]) == ("0", None)


def test_a_market_named_in_full_is_the_market_of_its_base_asset(ctx):
    assert ctx.resolve_market("BTC-USD") is ctx.resolve_market("BTC") is ctx.markets["BTC-USD"]
    assert ctx.resolve_market("BTC-EUR") is None and ctx.resolve_market("NOPE-USD") is None


def test_cancel_by_client_order_id_requests_the_cancel_of_the_callers_order(client, alice):
    placed = alice.place(**_limit_buy(client_order_id="to-cancel")).json["order"]
    response = client.delete("/api/orders/by-client-id/to-cancel", headers=alice.headers)
    assert response.status_code == 202
    order = response.json["order"]
    assert (order["id"], order["cancel_requested"], order["market"]) == (placed["id"], True, "BTC-USD")
    again = client.delete("/api/orders/by-client-id/to-cancel", headers=alice.headers)
    assert again.status_code == 202 and again.json["order"]["id"] == placed["id"]


def test_cancel_by_client_order_id_finds_only_the_callers_own_order(client, alice, bob):
    alice.place(**_limit_buy(client_order_id="shared-id"))
    response = client.delete("/api/orders/by-client-id/shared-id", headers=bob.headers)
    assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"
    assert client.delete("/api/orders/by-client-id/never-used", headers=alice.headers).status_code == 404
    assert alice.orders()[0]["cancel_requested"] is False


def test_admin_cancels_by_client_order_id_naming_the_user(client, admin_headers, alice):
    placed = alice.place(**_limit_buy(client_order_id="admin-cancels")).json["order"]
    unnamed = client.delete("/api/orders/by-client-id/admin-cancels", headers=admin_headers)
    assert unnamed.status_code == 400 and unnamed.json["error"]["field"] == "userId"
    named = client.delete("/api/orders/by-client-id/admin-cancels", query_string={"userId": alice.id},
                          headers=admin_headers)
    assert named.status_code == 202 and named.json["order"]["id"] == placed["id"]


def test_cancel_all_requests_every_open_order_of_the_caller_and_no_one_elses(client, alice, bob):
    mine = [alice.place(**_limit_buy(symbol=symbol)).json["order"]["id"] for symbol in ("BTC", "BTC", "ETH")]
    bobs = bob.place(**_limit_buy()).json["order"]["id"]
    response = client.delete("/api/orders", headers=alice.headers)
    assert response.status_code == 202
    assert sorted(order["id"] for order in response.json["orders"]) == sorted(mine)
    assert all(order["cancel_requested"] for order in response.json["orders"])
    assert [order["cancel_requested"] for order in bob.orders() if order["id"] == bobs] == [False]
    repeated = client.delete("/api/orders", headers=alice.headers)
    assert repeated.status_code == 202 and repeated.json["orders"] == []  # each asked once already


@pytest.mark.parametrize("name", ["ETH", "ETH-USD"])
def test_cancel_all_of_one_market_leaves_the_callers_other_markets(client, make_user, name):
    user = make_user(USD="100")
    btc = user.place(**_limit_buy()).json["order"]["id"]
    eth = user.place(**_limit_buy(symbol="ETH")).json["order"]["id"]
    response = client.delete("/api/orders", query_string={"currency_symbol": name}, headers=user.headers)
    assert response.status_code == 202 and [order["id"] for order in response.json["orders"]] == [eth]
    assert {order["id"]: order["cancel_requested"] for order in user.orders()} == {btc: False, eth: True}


def test_cancel_all_of_an_unknown_market_is_400_and_admin_must_name_an_existing_user(client, admin_headers, alice):
    unknown = client.delete("/api/orders", query_string={"currency_symbol": "NOPE"}, headers=alice.headers)
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "UNKNOWN_SYMBOL"
    assert client.delete("/api/orders", headers=admin_headers).status_code == 400
    missing = client.delete("/api/orders", query_string={"userId": 10**12}, headers=admin_headers)
    assert missing.status_code == 404


def test_cancel_all_is_bounded_by_the_open_order_cap_over_several_transactions(ctx, client, make_user, monkeypatch):
    from orders_app.services import cancelling
    monkeypatch.setattr(cancelling, "CANCEL_ALL_ORDERS_PER_TRANSACTION", 2)
    user = make_user(USD="100")
    placed = [user.place(**_limit_buy()).json["order"]["id"] for _ in range(5)]
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, max_open_orders_per_user=4))
    first = client.delete("/api/orders", headers=user.headers).json["orders"]
    assert [order["id"] for order in first] == placed[:4]
    second = client.delete("/api/orders", headers=user.headers).json["orders"]
    assert [order["id"] for order in second] == placed[4:]


def test_a_batch_answers_each_order_as_it_would_be_answered_alone_in_order(client, make_user):
    user = make_user(USD="10")
    bodies = [_limit_buy(client_order_id="b-1"),
              _limit_buy(price="100"),  # more than the 9 USD left
              {"order_type": "buy", "currency_symbol": "BTC", "quantity": "1"},  # a limit order needs a price
              _limit_buy(client_order_id="b-1"),  # a repeat of the first
              "not an object",
              _limit_buy(symbol="NOPE"),
              _limit_buy(userId=user.id + 1),
              _limit_buy(quantity="2", unknown_field=1),
              _limit_buy(price="3", symbol="ETH")]
    response = client.post("/api/orders/batch", json={"orders": bodies}, headers=user.headers)
    assert response.status_code == 200
    results = response.json["results"]
    assert [result["status"] for result in results] == [201, 400, 400, 200, 400, 400, 403, 400, 201]
    assert [result.get("error", {}).get("code") for result in results] == [
        None, "INSUFFICIENT_FUNDS", "VALIDATION_ERROR", None, "VALIDATION_ERROR", "UNKNOWN_SYMBOL", "FORBIDDEN",
        "VALIDATION_ERROR", None]
    assert results[2]["error"]["field"] == "price" and results[7]["error"]["field"] == "unknown_field"
    assert results[3]["order"] == results[0]["order"]
    assert results[8]["order"]["market"] == "ETH-USD" and results[0]["order"]["id"] < results[8]["order"]["id"]
    assert user.balances()["USD"]["locked"] == "4"
    for index in (0, 1, 2, 5, 6, 7):  # alone, each answers the same now (the first: as its repeat)
        alone = client.post("/api/orders", json=bodies[index], headers=user.headers)
        expected = results[index] if index else {**results[0], "status": 200}
        assert {"status": alone.status_code, **alone.json} == expected


def test_a_batch_whose_commit_outlives_the_wait_answers_each_order_unknown_and_a_retry_finds_them(
        client, make_user, monkeypatch):
    user = make_user(USD="100")
    batch_may_finish = threading.Event()
    real_place_batch = group_commit.place_batch

    def slow_place_batch(batch, ctx_):
        batch_may_finish.wait(10)
        return real_place_batch(batch, ctx_)
    monkeypatch.setattr(group_commit, "place_batch", slow_place_batch)
    monkeypatch.setattr(group_commit, "WAIT_TIMEOUT_S", 0.2)
    bodies = {"orders": [_limit_buy(client_order_id="late-1"), _limit_buy(client_order_id="late-2")]}
    try:
        response = client.post("/api/orders/batch", json=bodies, headers=user.headers)
    finally:
        batch_may_finish.set()
    monkeypatch.undo()
    assert response.status_code == 200
    assert [(result["status"], result["error"]["code"]) for result in response.json["results"]] == [
        (503, "ORDER_STATUS_UNKNOWN")] * 2
    retried = client.post("/api/orders/batch", json=bodies, headers=user.headers).json["results"]
    assert [(result["status"], result["order"]["client_order_id"]) for result in retried] == [
        (200, "late-1"), (200, "late-2")]
    assert user.balances()["USD"]["locked"] == "2"


@pytest.mark.parametrize("body", [{"orders": []}, {"orders": [_limit_buy()] * 21}, {"orders": "x"}, {},
                                  {"orders": [_limit_buy()], "extra": 1}, [_limit_buy()]])
def test_a_batch_with_a_malformed_top_level_is_400_and_places_nothing(client, make_user, body):
    user = make_user(USD="100")
    response = client.post("/api/orders/batch", json=body, headers=user.headers)
    assert response.status_code == 400 and response.json["error"]["code"] == "VALIDATION_ERROR"
    assert user.orders() == []


def test_every_new_endpoint_is_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json["paths"]
    assert {"post"} <= set(paths["/api/orders/batch"])
    assert {"delete"} <= set(paths["/api/orders"])
    assert {"delete"} <= set(paths["/api/orders/by-client-id/{client_order_id}"])
    assert {"get"} <= set(paths["/api/fills"])
    schemas = client.get("/openapi.json").json["components"]["schemas"]

    def body_ref(path: str) -> str:
        return paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    items = schemas[body_ref("/api/orders/batch").rsplit("/", 1)[1]]["properties"]["orders"]["items"]
    assert items == {"$ref": body_ref("/api/orders")}  # each order documented as a single order's body
    reason = schemas["Order"]["properties"]["status_reason"]
    assert reason["nullable"] is True and {"filled", "user_cancel", "market_halted", None} <= set(reason["enum"])
