"""A number that cannot be held exactly is 400 wherever a number is accepted, never a 5xx, and changes nothing.

JSON numbers are decoded as `Decimal`: an exponent beyond Decimal's own limits raises
`decimal.InvalidOperation` and a value with thousands of digits cannot be reduced within the money context;
neither is a `ValueError`, so each needs its own test on every endpoint that reads numbers.
"""
from __future__ import annotations

import json

import pytest

HOSTILE_NUMBERS = {
    "exponent-beyond-decimal": "1e9999999999999999999",
    "negative-exponent-beyond-decimal": "-1e9999999999999999999",
    "tiny-exponent-beyond-decimal": "1e-9999999999999999999",
    "exponent-within-decimal": "1E+999999999999999999",
    "five-thousand-fraction-digits": "1." + "0" * 5000 + "1",
    "a-hundred-significant-digits": "0." + "1" * 100,
    "integer-of-4400-digits": "9" * 4400,
}
ORDER_BODIES = {
    "price": '{"order_type": "buy", "currency_symbol": "BTC", "quantity": "1", "price": %s}',
    "quantity": '{"order_type": "sell", "currency_symbol": "BTC", "price": "5", "quantity": %s}',
    "quote_quantity": '{"order_type": "buy", "type": "market", "currency_symbol": "BTC", "quote_quantity": %s}',
    "userId": '{"order_type": "buy", "currency_symbol": "BTC", "price": "5", "quantity": "1", "userId": %s}',
}
FUND_BODIES = {
    "amount": '{"userId": %(user)d, "currency_symbol": "USD", "amount": %(number)s}',
    "userId": '{"userId": %(number)s, "currency_symbol": "USD", "amount": "1"}',
}
QUERY_STRING_NUMBERS = ["1e9999999999999999999", "1E+5", "9" * 5000, "-0", "1.0", "0x10", "1_000", " 5",
                        "\u0665"]
NUMBER_PARAMETERS = [("/api/orders", "limit"), ("/api/orders", "before_id"), ("/api/orders", "userId"),
                     ("/api/orderbook/BTC", "depth"), ("/api/trades", "limit"), ("/api/trades", "before_id")]


@pytest.fixture()
def funded(make_user):
    return make_user("hostile", USD="100", BTC="1")


def _post_raw(client, path: str, body: str, headers: dict):
    return client.post(path, data=body.encode(), headers=dict(headers, **{"Content-Type": "application/json"}))


def _assert_validation_error(response):
    assert response.status_code == 400, response.data[:300]
    assert response.json["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("number", HOSTILE_NUMBERS.values(), ids=HOSTILE_NUMBERS.keys())
@pytest.mark.parametrize("field", ORDER_BODIES)
def test_an_order_with_a_number_that_cannot_be_held_exactly_is_400_and_places_nothing(client, funded, field,
                                                                                        number):
    before = funded.balances()
    response = _post_raw(client, "/api/orders", ORDER_BODIES[field] % number, funded.headers)
    _assert_validation_error(response)
    assert funded.balances() == before and funded.orders() == []


@pytest.mark.parametrize("number", HOSTILE_NUMBERS.values(), ids=HOSTILE_NUMBERS.keys())
@pytest.mark.parametrize("field", FUND_BODIES)
@pytest.mark.parametrize("path", ["/api/admin/deposits", "/api/admin/withdrawals"])
def test_a_deposit_or_withdrawal_with_a_number_that_cannot_be_held_exactly_is_400_and_moves_nothing(
        client, admin_headers, funded, path, field, number):
    before = funded.balances()
    response = _post_raw(client, path, FUND_BODIES[field] % {"user": funded.id, "number": number}, admin_headers)
    _assert_validation_error(response)
    assert funded.balances() == before


@pytest.mark.parametrize("number", HOSTILE_NUMBERS.values(), ids=HOSTILE_NUMBERS.keys())
def test_a_user_name_given_as_a_hostile_number_is_400(client, admin_headers, number):
    _assert_validation_error(_post_raw(client, "/api/admin/users", '{"name": %s}' % number, admin_headers))


@pytest.mark.parametrize("value", QUERY_STRING_NUMBERS)
@pytest.mark.parametrize("path,parameter", NUMBER_PARAMETERS)
def test_a_query_string_number_with_an_exponent_or_huge_value_is_400(client, funded, path, parameter, value):
    query = {parameter: value, "currency_symbol": "BTC"} if path == "/api/trades" else {parameter: value}
    _assert_validation_error(client.get(path, query_string=query, headers=funded.headers))


@pytest.mark.parametrize("path", ["/api/orders/%s", "/api/balances/%s"])
@pytest.mark.parametrize("number", ["9" * 30, "9" * 5000])
def test_a_huge_id_in_a_path_is_a_4xx_never_a_5xx(client, funded, path, number):
    for method in ("get", "delete") if path.startswith("/api/orders") else ("get",):
        response = getattr(client, method)(path % number, headers=funded.headers)
        assert 400 <= response.status_code < 500, (method, response.status_code, response.data[:300])
        assert set(json.loads(response.data)["error"]) >= {"code", "message"}
