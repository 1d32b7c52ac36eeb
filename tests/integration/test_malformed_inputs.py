"""Bad input gets a clear 4xx in the API's error shape and changes nothing (balances, orders)."""
from __future__ import annotations

import json

import pytest

VALID = {"order_type": "buy", "currency_symbol": "BTC", "price": "5.123456", "quantity": "1"}


def _with(**changes):
    body = dict(VALID)
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


_DROP = object()

# (case id, body (dict -> JSON, str/bytes -> raw), content type, expected status, expected code)
MALFORMED_ORDERS = [
    ("not-json", b"{not json", "application/json", 400, "VALIDATION_ERROR"),
    ("truncated-json", b'{"order_type": "buy"', "application/json", 400, "VALIDATION_ERROR"),
    ("json-array", b"[1, 2]", "application/json", 400, "VALIDATION_ERROR"),
    ("json-string", b'"buy"', "application/json", 400, "VALIDATION_ERROR"),
    ("json-null", b"null", "application/json", 400, "VALIDATION_ERROR"),
    ("invalid-utf8", b'{"order_type": "\xff\xfe"}', "application/json", 400, "VALIDATION_ERROR"),
    ("nan-literal", b'{"order_type":"buy","currency_symbol":"BTC","price":NaN,"quantity":"1"}',
     "application/json", 400, "VALIDATION_ERROR"),
    ("infinity-literal", b'{"order_type":"buy","currency_symbol":"BTC","price":Infinity,"quantity":"1"}',
     "application/json", 400, "VALIDATION_ERROR"),
    ("exponent-1e400", b'{"order_type":"buy","currency_symbol":"BTC","price":1e400,"quantity":"1"}',
     "application/json", 400, "VALIDATION_ERROR"),
    ("huge-integer",
     ('{"order_type":"buy","currency_symbol":"BTC","price":' + "9" * 5000 + ',"quantity":"1"}').encode(),
     "application/json", 400, "VALIDATION_ERROR"),
    ("deep-nesting", b'{"order_type":' + b"[" * 20000 + b"]" * 20000 + b"}", "application/json", 400,
     "VALIDATION_ERROR"),
    ("form-encoded", b"order_type=buy", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("text-plain", json.dumps(VALID).encode(), "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("missing-order-type", _with(order_type=_DROP), None, 400, "VALIDATION_ERROR"),
    ("missing-symbol", _with(currency_symbol=_DROP), None, 400, "VALIDATION_ERROR"),
    ("missing-quantity", _with(quantity=_DROP), None, 400, "VALIDATION_ERROR"),
    ("missing-price-limit", _with(price=_DROP), None, 400, "VALIDATION_ERROR"),
    ("unknown-side", _with(order_type="hold"), None, 400, "VALIDATION_ERROR"),
    ("side-wrong-case", _with(order_type="BUY"), None, 400, "VALIDATION_ERROR"),
    ("unknown-type", _with(type="stop"), None, 400, "VALIDATION_ERROR"),
    ("unknown-tif", _with(time_in_force="GTD"), None, 400, "VALIDATION_ERROR"),
    ("unknown-symbol", _with(currency_symbol="DOGE"), None, 400, "UNKNOWN_SYMBOL"),
    ("symbol-number", _with(currency_symbol=5), None, 400, "VALIDATION_ERROR"),
    ("symbol-too-long", _with(currency_symbol="B" * 100), None, 400, "VALIDATION_ERROR"),
    ("unicode-symbol", _with(currency_symbol="BTC\u202e\U0001F4B0"), None, 400, "UNKNOWN_SYMBOL"),
    ("negative-price", _with(price="-1"), None, 400, "VALIDATION_ERROR"),
    ("zero-price", _with(price=0), None, 400, "VALIDATION_ERROR"),
    ("negative-quantity", _with(quantity=-1), None, 400, "VALIDATION_ERROR"),
    ("zero-quantity", _with(quantity="0"), None, 400, "VALIDATION_ERROR"),
    ("price-too-precise", _with(price="5.1234567"), None, 400, "VALIDATION_ERROR"),
    ("quantity-too-precise", _with(quantity="0.000000001"), None, 400, "VALIDATION_ERROR"),
    ("price-too-high", _with(price="1000000000.000001"), None, 400, "VALIDATION_ERROR"),
    ("quantity-too-high", _with(quantity="1000000000.00000001", price="0.000001"), None, 400,
     "VALIDATION_ERROR"),
    ("price-bool", _with(price=True), None, 400, "VALIDATION_ERROR"),
    ("price-null", _with(price=None), None, 400, "VALIDATION_ERROR"),
    ("price-list", _with(price=[1]), None, 400, "VALIDATION_ERROR"),
    ("price-object", _with(price={"v": 1}), None, 400, "VALIDATION_ERROR"),
    ("price-exponent-string", _with(price="1e3"), None, 400, "VALIDATION_ERROR"),
    ("price-hex-string", _with(price="0x10"), None, 400, "VALIDATION_ERROR"),
    ("price-nan-string", _with(price="NaN"), None, 400, "VALIDATION_ERROR"),
    ("price-infinity-string", _with(price="Infinity"), None, 400, "VALIDATION_ERROR"),
    ("price-empty-string", _with(price=""), None, 400, "VALIDATION_ERROR"),
    ("price-with-spaces-inside", _with(price="5 1"), None, 400, "VALIDATION_ERROR"),
    ("price-unicode-digits", _with(price="\u0665"), None, 400, "VALIDATION_ERROR"),
    ("post-only-string", _with(post_only="true"), None, 400, "VALIDATION_ERROR"),
    ("post-only-number", _with(post_only=1), None, 400, "VALIDATION_ERROR"),
    ("post-only-ioc", _with(post_only=True, time_in_force="IOC"), None, 400, "VALIDATION_ERROR"),
    ("client-order-id-bad-chars", _with(client_order_id="has space"), None, 400, "VALIDATION_ERROR"),
    ("client-order-id-too-long", _with(client_order_id="x" * 65), None, 400, "VALIDATION_ERROR"),
    ("client-order-id-number", _with(client_order_id=12), None, 400, "VALIDATION_ERROR"),
    ("unknown-field", _with(quantiy="1"), None, 400, "VALIDATION_ERROR"),
    ("user-id-string-word", _with(userId="me"), None, 400, "VALIDATION_ERROR"),
    ("user-id-float", _with(userId=1.5), None, 400, "VALIDATION_ERROR"),
    ("user-id-negative", _with(userId=-1), None, 400, "VALIDATION_ERROR"),
    ("user-id-huge", _with(userId=2**70), None, 400, "VALIDATION_ERROR"),
    ("limit-with-quote-quantity", _with(quote_quantity="5"), None, 400, "VALIDATION_ERROR"),
    ("market-with-price", _with(type="market"), None, 400, "VALIDATION_ERROR"),
    ("market-buy-both-quantities", _with(type="market", price=_DROP, quote_quantity="5"), None, 400,
     "VALIDATION_ERROR"),
    ("market-buy-no-quantity", _with(type="market", price=_DROP, quantity=_DROP), None, 400, "VALIDATION_ERROR"),
    ("market-sell-by-quote", _with(order_type="sell", type="market", price=_DROP, quantity=_DROP,
                                   quote_quantity="5"), None, 400, "VALIDATION_ERROR"),
    ("market-fok", _with(type="market", price=_DROP, time_in_force="FOK"), None, 400, "VALIDATION_ERROR"),
    ("market-post-only", _with(type="market", price=_DROP, post_only=True), None, 400, "VALIDATION_ERROR"),
    ("quote-quantity-too-precise", _with(type="market", price=_DROP, quantity=_DROP,
                                         quote_quantity="1.000000000000001"), None, 400, "VALIDATION_ERROR"),
    ("quote-quantity-too-big", _with(type="market", price=_DROP, quantity=_DROP,
                                     quote_quantity="1000000000000.1"), None, 400, "VALIDATION_ERROR"),
    ("insufficient-funds", _with(price="999999", quantity="999"), None, 400, "INSUFFICIENT_FUNDS"),
    ("empty-body", b"", "application/json", 400, "VALIDATION_ERROR"),
    ("empty-object", {}, None, 400, "VALIDATION_ERROR"),
]


@pytest.fixture()
def funded(make_user):
    return make_user("fuzz", USD="100", BTC="1")


def _send(client, headers, body, content_type, path="/api/orders"):
    if isinstance(body, dict):
        return client.post(path, json=body, headers=headers)
    return client.post(path, data=body, headers=dict(headers, **{"Content-Type": content_type}))


def _assert_error_shape(response, status, code):
    assert response.status_code == status, response.data[:300]
    assert response.is_json
    error = response.json["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "field"}


@pytest.mark.parametrize("case_id,body,content_type,status,code", MALFORMED_ORDERS,
                         ids=[case[0] for case in MALFORMED_ORDERS])
def test_malformed_order_is_rejected_and_changes_nothing(client, funded, case_id, body, content_type, status, code):
    before = funded.balances()
    response = _send(client, funded.headers, body, content_type)
    _assert_error_shape(response, status, code)
    assert funded.balances() == before
    assert funded.orders() == []


def test_malformed_inputs_list_has_at_least_forty_cases():
    assert len(MALFORMED_ORDERS) >= 40


def test_body_over_64_kib_is_413(client, funded):
    body = json.dumps(dict(VALID, client_order_id="x" * (70 * 1024))).encode()
    response = _send(client, funded.headers, body, "application/json")
    _assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")
    assert funded.orders() == []


@pytest.mark.parametrize("query", [{"limit": "5000"}, {"limit": "0"}, {"limit": "-1"}, {"limit": "ten"},
                                   {"before_id": "0"}, {"before_id": "x"}, {"status": "open"},
                                   {"order_type": "hold"}, {"currency_symbol": "DOGE"}, {"userId": "abc"}])
def test_bad_order_list_query_is_400(client, funded, query):
    response = client.get("/api/orders", query_string=query, headers=funded.headers)
    expected = "UNKNOWN_SYMBOL" if "currency_symbol" in query else "VALIDATION_ERROR"
    _assert_error_shape(response, 400, expected)


@pytest.mark.parametrize("body", [{"userId": 1, "currency_symbol": "USD", "amount": "-5"},
                                  {"userId": 1, "currency_symbol": "USD", "amount": "0"},
                                  {"userId": 1, "currency_symbol": "BTC", "amount": "0.000000001"},
                                  {"userId": 1, "currency_symbol": "USD", "amount": "1000000000000.5"},
                                  {"userId": 1, "currency_symbol": "USD", "amount": 1e400},
                                  {"userId": 1, "currency_symbol": "USD"},
                                  {"userId": "one", "currency_symbol": "USD", "amount": "1"},
                                  {"userId": 1, "currency_symbol": "USD", "amount": "1", "extra": 1}])
def test_bad_deposit_is_400_and_changes_nothing(client, admin_headers, funded, body):
    body = dict(body, userId=funded.id) if body.get("userId") == 1 else body
    before = funded.balances()
    response = client.post("/api/admin/deposits", json=body, headers=admin_headers)
    _assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert funded.balances() == before


@pytest.mark.parametrize("method,path,status,code", [
    ("get", "/api/nothing-here", 404, "NOT_FOUND"),
    ("put", "/api/orders", 405, "METHOD_NOT_ALLOWED"),
    ("patch", "/api/orders/1", 405, "METHOD_NOT_ALLOWED"),
    ("get", "/api/admin/users", 405, "METHOD_NOT_ALLOWED"),
    ("get", "/api/orders/not-a-number", 404, "NOT_FOUND"),
    ("get", "/api/balances/abc", 404, "NOT_FOUND"),
])
def test_unknown_routes_and_methods_answer_json(client, funded, method, path, status, code):
    response = getattr(client, method)(path, headers=funded.headers)
    _assert_error_shape(response, status, code)
