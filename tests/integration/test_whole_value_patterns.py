"""A pattern matches the whole value: a trailing newline never passes (Python's `$` matches before one).

Covers every pattern a client or an operator reaches: client_order_id, the X-Request-ID header, a new
market's symbol; settings have theirs in tests/unit/test_config.py.
"""
from __future__ import annotations

import json
import uuid

import pytest


@pytest.fixture()
def funded(make_user):
    return make_user("pattern", USD="100", BTC="1")


@pytest.mark.parametrize("client_order_id", ["abc\n", "x" * 64 + "\n", "abc\n\n", "\nabc"])
def test_a_client_order_id_with_a_newline_is_400_and_places_nothing(funded, client_order_id):
    before = funded.balances()
    response = funded.place(order_type="buy", currency_symbol="BTC", price="5", quantity="1",
                            client_order_id=client_order_id)
    assert response.status_code == 400, response.json
    assert response.json["error"] == {**response.json["error"], "code": "VALIDATION_ERROR",
                                      "field": "client_order_id"}
    assert funded.orders() == [] and funded.balances() == before


def test_a_client_order_id_of_exactly_64_allowed_characters_is_accepted(funded):
    response = funded.place(order_type="buy", currency_symbol="BTC", price="5", quantity="1",
                            client_order_id="x" * 64)
    assert response.status_code == 201 and response.json["order"]["client_order_id"] == "x" * 64


@pytest.mark.parametrize("request_id", ["req-1\n", "req-1\r"])
def test_a_request_id_header_with_a_line_break_is_replaced_by_a_fresh_one(client, request_id):
    # Through the WSGI environ: werkzeug's test client refuses to send such a header at all.
    response = client.get("/health", environ_base={"HTTP_X_REQUEST_ID": request_id})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] != request_id.strip()
    assert "\n" not in response.headers["X-Request-ID"]


def test_a_well_formed_request_id_header_is_kept(client):
    response = client.get("/health", headers={"X-Request-ID": "req-1"})
    assert response.headers["X-Request-ID"] == "req-1"


def test_add_market_refuses_a_symbol_with_a_trailing_newline(app):
    symbol = "N" + uuid.uuid4().hex[:8].upper()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["add-market", symbol + "\n"])
    assert result.exit_code == 1 and "base must be" in result.output
    listed = json.loads(runner.invoke(args=["list-markets"]).stdout)["markets"]
    assert not any(market["symbol"].startswith(symbol) for market in listed)
