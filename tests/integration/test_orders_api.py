"""The API contract (docs/api.md), endpoint by endpoint, against the real database and broker."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from orders_app import runtime_of
from orders_app.services.markets import add_market

SEED_BODY = {"userId": None, "order_type": "buy", "currency_symbol": "BTC", "price": 5.123456, "quantity": 2.0}


def test_seed_request_body_works_unchanged(alice):
    body = dict(SEED_BODY, userId=alice.id)
    response = alice.place(**body)
    assert response.status_code == 201
    order = response.json["order"]
    assert order["user_id"] == alice.id
    assert order["price"] == "5.123456" and order["quantity"] == "2"
    assert order["status"] == "pending" and order["filled_quantity"] == "0" and order["sell_quantity"] == "0"
    assert order["remaining_quantity"] == "2" and order["type"] == "limit" and order["time_in_force"] == "GTC"
    assert order["timestamp"].endswith("Z") and order["post_only"] is False


def test_limit_buy_holds_price_times_quantity_exactly(make_user):
    user = make_user(USD="100")
    response = user.place(order_type="buy", currency_symbol="BTC", price="5.123456", quantity="2")
    assert response.status_code == 201
    usd = user.balances()["USD"]
    assert usd == {"user_id": user.id, "currency_symbol": "USD", "balance": "100",
                   "available": "89.753088", "locked": "10.246912"}


def test_sell_holds_base_quantity(make_user):
    user = make_user(BTC="1")
    assert user.place(order_type="sell", currency_symbol="BTC", price="100", quantity="0.25").status_code == 201
    assert user.balances()["BTC"]["available"] == "0.75" and user.balances()["BTC"]["locked"] == "0.25"


def test_string_and_number_amounts_are_the_same(make_user):
    user = make_user(USD="1000")
    first = user.place(order_type="buy", currency_symbol="ETH", price=5.123456, quantity=1).json["order"]
    second = user.place(order_type="buy", currency_symbol="ETH", price="5.1234560", quantity="1.0").json["order"]
    assert (first["price"], first["quantity"]) == (second["price"], second["quantity"]) == ("5.123456", "1")


def test_insufficient_funds_is_400_and_changes_nothing(make_user):
    user = make_user(USD="10")
    before = user.balances()
    response = user.place(order_type="buy", currency_symbol="BTC", price="5", quantity="2.00000001")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "INSUFFICIENT_FUNDS"
    assert user.balances() == before and user.orders() == []


def test_exact_available_balance_can_be_held(make_user):
    user = make_user(USD="10")
    assert user.place(order_type="buy", currency_symbol="BTC", price="5", quantity="2").status_code == 201
    assert user.balances()["USD"]["available"] == "0"


def test_market_buy_by_quote_quantity_holds_it(make_user):
    user = make_user(USD="50")
    response = user.place(order_type="buy", type="market", currency_symbol="BTC", quote_quantity="12.5")
    assert response.status_code == 201
    order = response.json["order"]
    assert order["price"] is None and order["quantity"] is None and order["quote_quantity"] == "12.5"
    assert order["time_in_force"] == "IOC"
    assert user.balances()["USD"]["locked"] == "12.5"


def test_market_buy_by_quantity_holds_the_cost_at_resting_asks_plus_collar(make_user):
    seller = make_user(BTC="5")
    # A private price level far above anything else in the test database would be unreliable, so use
    # ETH-independent arithmetic: the hold is at most the user's funds and at least zero.
    assert seller.place(order_type="sell", currency_symbol="BTC", price="1000000", quantity="1").status_code == 201
    buyer = make_user(USD="100000000")
    response = buyer.place(order_type="buy", type="market", currency_symbol="BTC", quantity="0.001")
    assert response.status_code == 201
    locked = Decimal(buyer.balances()["USD"]["locked"])
    assert Decimal(0) <= locked <= Decimal("1050")  # best asks cost at most 1000 for 0.001 BTC, + 5%


def test_market_buy_by_quantity_prices_every_page_of_asks_once(app, make_user, monkeypatch):
    import uuid

    from orders_app.repositories import orders as order_queries
    from orders_app.services.markets import add_market
    symbol = "Q" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, runtime_of(app).ctx)
    seller = make_user("s", **{symbol: "10"})
    for price in ("10", "11", "12", "13", "14"):
        assert seller.place(order_type="sell", currency_symbol=symbol, price=price, quantity="1").status_code == 201
    monkeypatch.setattr(order_queries, "RESTING_ASKS_PAGE_ROWS", 2)  # three pages
    buyer = make_user("b", USD="1000")
    response = buyer.place(order_type="buy", type="market", currency_symbol=symbol, quantity="4.5")
    assert response.status_code == 201
    # 10 + 11 + 12 + 13 + 0.5 x 14 = 53, plus the 5 % collar
    assert buyer.balances()["USD"]["locked"] == "55.65"


def test_market_sell_holds_quantity(make_user):
    user = make_user(ETH="3")
    response = user.place(order_type="sell", type="market", currency_symbol="ETH", quantity="1.5")
    assert response.status_code == 201 and response.json["order"]["price"] is None
    assert user.balances()["ETH"]["locked"] == "1.5"


def test_client_order_id_repeat_returns_first_order_and_changes_nothing(make_user):
    user = make_user(USD="100")
    first = user.place(order_type="buy", currency_symbol="BTC", price="1", quantity="10", client_order_id="abc-1")
    assert first.status_code == 201
    balances = user.balances()
    again = user.place(order_type="buy", currency_symbol="BTC", price="2", quantity="1", client_order_id="abc-1")
    assert again.status_code == 200
    assert again.json["order"] == first.json["order"]
    assert user.balances() == balances and len(user.orders()) == 1


def test_client_order_ids_are_per_user(alice, bob):
    for user in (alice, bob):
        response = user.place(order_type="sell", currency_symbol="ETH", price="9", quantity="1",
                              client_order_id="shared-id")
        assert response.status_code == 201


def test_unknown_symbol_is_400_unknown_symbol(alice):
    response = alice.place(order_type="buy", currency_symbol="DOGE", price="1", quantity="1")
    assert response.status_code == 400 and response.json["error"]["code"] == "UNKNOWN_SYMBOL"
    assert response.json["error"]["field"] == "currency_symbol"


def test_list_orders_newest_first_with_filters_and_pagination(make_user):
    user = make_user(USD="1000", ETH="10")
    ids = [user.place(order_type="buy", currency_symbol="BTC", price="1", quantity="1").json["order"]["id"]
           for _ in range(3)]
    sell_id = user.place(order_type="sell", currency_symbol="ETH", price="50", quantity="1").json["order"]["id"]
    assert [o["id"] for o in user.orders()] == [sell_id, *reversed(ids)]
    assert [o["id"] for o in user.orders(currency_symbol="BTC")] == list(reversed(ids))
    assert [o["id"] for o in user.orders(order_type="sell")] == [sell_id]
    assert [o["id"] for o in user.orders(status="pending", limit=2)] == [sell_id, ids[2]]
    assert [o["id"] for o in user.orders(before_id=ids[2])] == [ids[1], ids[0]]
    assert user.orders(status="completed") == []
    assert [o["id"] for o in user.orders(userId=user.id, limit=1)] == [sell_id]


def test_admin_lists_any_users_orders(client, admin_headers, alice):
    order_id = alice.place(order_type="buy", currency_symbol="BTC", price="1", quantity="1").json["order"]["id"]
    response = client.get("/api/orders", query_string={"userId": alice.id}, headers=admin_headers)
    assert response.status_code == 200 and response.json["orders"][0]["id"] == order_id


def test_get_order_by_id(alice):
    order = alice.place(order_type="buy", currency_symbol="BTC", price="1", quantity="1").json["order"]
    response = alice._client.get(f"/api/orders/{order['id']}", headers=alice.headers)
    assert response.status_code == 200 and response.json["order"] == order


def test_someone_elses_order_is_404_not_403(client, alice, bob):
    order_id = alice.place(order_type="buy", currency_symbol="BTC", price="1", quantity="1").json["order"]["id"]
    for method in (client.get, client.delete):
        response = method(f"/api/orders/{order_id}", headers=bob.headers)
        assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"
    assert client.get(f"/api/orders/{order_id}", headers=alice.headers).json["order"]["cancel_requested"] is False


def test_other_users_id_in_body_query_or_path_is_403(client, alice, bob):
    assert alice.place(userId=bob.id, order_type="buy", currency_symbol="BTC", price="1",
                       quantity="1").status_code == 403
    response = client.get("/api/orders", query_string={"userId": bob.id}, headers=alice.headers)
    assert response.status_code == 403 and response.json["error"]["code"] == "FORBIDDEN"
    assert client.get(f"/api/balances/{bob.id}", headers=alice.headers).status_code == 403


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
def test_missing_or_unknown_key_is_401(client, headers):
    for response in (client.get("/api/orders", headers=headers),
                     client.post("/api/orders", json={}, headers=headers),
                     client.get("/api/balances/1", headers=headers),
                     client.post("/api/admin/users", json={}, headers=headers)):
        assert response.status_code == 401 and response.json["error"]["code"] == "UNAUTHORIZED"


def test_user_key_on_admin_endpoint_is_403(client, alice):
    for path, body in (("/api/admin/users", {}),
                       ("/api/admin/deposits", {"userId": alice.id, "currency_symbol": "USD", "amount": "1"}),
                       ("/api/admin/withdrawals", {"userId": alice.id, "currency_symbol": "USD", "amount": "1"})):
        response = client.post(path, json=body, headers=alice.headers)
        assert response.status_code == 403 and response.json["error"]["code"] == "FORBIDDEN"


def test_admin_places_orders_for_a_user_and_must_name_it(client, admin_headers, alice):
    body = {"order_type": "buy", "currency_symbol": "BTC", "price": "1", "quantity": "1"}
    assert client.post("/api/orders", json=body, headers=admin_headers).status_code == 400
    response = client.post("/api/orders", json=dict(body, userId=alice.id), headers=admin_headers)
    assert response.status_code == 201 and response.json["order"]["user_id"] == alice.id
    missing = client.post("/api/orders", json=dict(body, userId=10**12), headers=admin_headers)
    assert missing.status_code == 404


def test_cancel_is_accepted_asynchronously(client, alice):
    order = alice.place(order_type="buy", currency_symbol="BTC", price="1", quantity="1").json["order"]
    response = client.delete(f"/api/orders/{order['id']}", headers=alice.headers)
    assert response.status_code == 202
    assert response.json["order"]["id"] == order["id"] and response.json["order"]["cancel_requested"] is True
    assert response.json["order"]["status"] in ("pending", "cancelled")
    again = client.delete(f"/api/orders/{order['id']}", headers=alice.headers)
    assert again.status_code in (202, 409)


def test_unknown_order_id_is_404(client, alice):
    assert client.get("/api/orders/999999999999", headers=alice.headers).status_code == 404
    assert client.delete("/api/orders/999999999999", headers=alice.headers).status_code == 404


def test_create_user_returns_id_name_and_key(client, admin_headers):
    response = client.post("/api/admin/users", json={"name": "carol"}, headers=admin_headers)
    assert response.status_code == 201
    assert response.json["user"]["name"] == "carol" and len(response.json["api_key"]) > 30
    anonymous = client.post("/api/admin/users", json={}, headers=admin_headers)
    assert anonymous.status_code == 201 and anonymous.json["user"]["name"] is None


def test_deposit_and_withdrawal(client, admin_headers, make_user):
    user = make_user()
    deposit = client.post("/api/admin/deposits", headers=admin_headers,
                          json={"userId": user.id, "currency_symbol": "USD", "amount": "100.00000000000001"})
    assert deposit.status_code == 201
    assert deposit.json["balance"] == {"user_id": user.id, "currency_symbol": "USD", "balance": "100.00000000000001",
                                       "available": "100.00000000000001", "locked": "0"}
    withdrawal = client.post("/api/admin/withdrawals", headers=admin_headers,
                             json={"userId": user.id, "currency_symbol": "USD", "amount": 0.00000000000001})
    assert withdrawal.status_code == 201 and withdrawal.json["balance"]["available"] == "100"
    too_much = client.post("/api/admin/withdrawals", headers=admin_headers,
                           json={"userId": user.id, "currency_symbol": "USD", "amount": "100.01"})
    assert too_much.status_code == 400 and too_much.json["error"]["code"] == "INSUFFICIENT_FUNDS"
    assert user.balances()["USD"]["available"] == "100"


def test_withdrawal_cannot_take_held_funds(client, admin_headers, make_user):
    user = make_user(BTC="1")
    user.place(order_type="sell", currency_symbol="BTC", price="10", quantity="0.6")
    response = client.post("/api/admin/withdrawals", headers=admin_headers,
                           json={"userId": user.id, "currency_symbol": "BTC", "amount": "0.5"})
    assert response.status_code == 400 and response.json["error"]["code"] == "INSUFFICIENT_FUNDS"


def test_funding_an_unknown_user_is_404_and_unknown_asset_400(client, admin_headers):
    response = client.post("/api/admin/deposits", headers=admin_headers,
                           json={"userId": 10**12, "currency_symbol": "USD", "amount": "1"})
    assert response.status_code == 404
    response = client.post("/api/admin/deposits", headers=admin_headers,
                           json={"userId": 1, "currency_symbol": "XYZ", "amount": "1"})
    assert response.status_code == 400 and response.json["error"]["code"] == "UNKNOWN_SYMBOL"


def test_balances_one_per_asset_and_symbol_filter(client, make_user):
    user = make_user(USD="5", BTC="0.1")
    assert set(user.balances()) == {"USD", "BTC"}
    response = client.get(f"/api/balances/{user.id}", query_string={"symbol": "BTC"}, headers=user.headers)
    assert [b["currency_symbol"] for b in response.json["balances"]] == ["BTC"]
    unknown = client.get(f"/api/balances/{user.id}", query_string={"symbol": "NOPE"}, headers=user.headers)
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "UNKNOWN_SYMBOL"


def test_health_ready_and_docs(client):
    assert client.get("/health").json == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    spec = client.get("/openapi.json").json
    paths = {"/api/orders", "/api/orders/{order_id}", "/api/balances/{user_id}", "/api/admin/users"}
    assert paths <= set(spec["paths"])
    assert "PlaceOrderRequest" in spec["components"]["schemas"]
    page = client.get("/docs")
    assert page.status_code == 200 and b"/docs/assets/swagger-ui-bundle.js" in page.data
    assert b"http" not in page.data.split(b"<body>")[0].replace(b"http-equiv", b"")  # no CDN
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    asset.close()


def test_every_response_carries_a_request_id(client):
    response = client.get("/health", headers={"X-Request-ID": "trace-123"})
    assert response.headers["X-Request-ID"] == "trace-123"
    assert len(client.get("/health").headers["X-Request-ID"]) == 32


def _metric(client, line_prefix: str) -> float:
    for line in client.get("/metrics").data.decode().splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_and_orders_by_outcome(client, make_user):
    user = make_user(USD="10")
    accepted = 'orders_accepted_total{side="buy",symbol="ETH",type="limit"}'
    refused = 'orders_refused_total{code="INSUFFICIENT_FUNDS"}'
    requests_ok = 'orders_http_requests_total{endpoint="/api/orders",method="POST",status="201"}'
    before = [_metric(client, name) for name in (accepted, refused, requests_ok)]
    assert user.place(order_type="buy", currency_symbol="ETH", price="1", quantity="1").status_code == 201
    assert user.place(order_type="buy", currency_symbol="ETH", price="100", quantity="1").status_code == 400
    after = [_metric(client, name) for name in (accepted, refused, requests_ok)]
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    assert "orders_http_request_duration_seconds_bucket" in response.data.decode()


def test_a_limit_order_below_the_markets_minimum_notional_is_refused(client, admin_headers, make_user, app):
    ctx = runtime_of(app).ctx
    symbol = "N" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx, min_notional=Decimal("10"))
    user = make_user("notional", USD="1000", **{symbol: "10"})

    small = user.place(currency_symbol=symbol, order_type="buy", price="9.99", quantity="1")
    assert small.status_code == 400, small.json
    assert small.json["error"]["code"] == "VALIDATION_ERROR"
    assert "minimum notional of 10 USD" in small.json["error"]["message"]
    assert user.place(currency_symbol=symbol, order_type="sell", price="5", quantity="2").status_code == 201
    assert user.balances()["USD"]["locked"] == "0"


def test_a_market_buy_whose_budget_cannot_buy_one_quantity_step_at_one_price_step_is_refused(make_user, app):
    """With a price step of 0.01 the smallest trade costs 0.01 x 0.00000001 = 1e-10 USD: a budget below that
    buys nothing on any book, and the worker would have to reject it after a 201."""
    symbol = "Q" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, runtime_of(app).ctx, price_step=Decimal("0.01"))
    user = make_user("dust", USD="1")
    dust = user.place(order_type="buy", type="market", currency_symbol=symbol, quote_quantity="0.00000000001")
    assert dust.status_code == 400 and dust.json["error"]["field"] == "quote_quantity", dust.json
    assert user.place(order_type="buy", type="market", currency_symbol=symbol,
                      quote_quantity="0.0000000001").status_code == 201
