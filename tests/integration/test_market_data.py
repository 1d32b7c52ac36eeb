"""The ticker and candles, served from the candles the worker maintains, equal what the trades say exactly.

Trades are written straight into the database at chosen times (tests/support/trades.py) and added to the
candles by the worker's own statement; each test uses a market of its own, added at run time.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders_app.services import market_data
from orders_app.services.candles import INTERVALS_S
from orders_app.services.markets import add_market
from tests.support.trades import api_candles, brute_force_candles, record_trades

D = Decimal


def _new_market(ctx) -> tuple[str, int]:
    symbol = "C" + uuid.uuid4().hex[:9].upper()
    return symbol, add_market(symbol, ctx)


@pytest.fixture()
def market(ctx):
    return _new_market(ctx)


def _candles(client, symbol, interval, **query):
    response = client.get(f"/api/candles/{symbol}", query_string={"interval": interval, **query})
    assert response.status_code == 200, response.json
    return response.json["candles"]


def _shape(candle: dict) -> tuple:
    return (candle["open_time"], candle["open"], candle["high"], candle["low"], candle["close"], candle["volume"],
            candle["quote_volume"], candle["trades"])


def test_a_trade_at_the_last_millisecond_of_a_minute_and_one_at_the_next_make_two_one_minute_candles(
        client, ctx, market):
    symbol, market_id = market
    record_trades(ctx, market_id, [(D("100"), D("1"), datetime(2026, 3, 1, 10, 4, 59, 999000)),
                                   (D("101.5"), D("0.5"), datetime(2026, 3, 1, 10, 5))])
    assert [_shape(c) for c in _candles(client, symbol, "1m")] == [
        ("2026-03-01T10:04:00.000Z", "100", "100", "100", "100", "1", "100", 1),
        ("2026-03-01T10:05:00.000Z", "101.5", "101.5", "101.5", "101.5", "0.5", "50.75", 1)]
    assert [_shape(c) for c in _candles(client, symbol, "5m")] == [
        ("2026-03-01T10:00:00.000Z", "100", "100", "100", "100", "1", "100", 1),
        ("2026-03-01T10:05:00.000Z", "101.5", "101.5", "101.5", "101.5", "0.5", "50.75", 1)]
    assert [_shape(c) for c in _candles(client, symbol, "15m")] == [
        ("2026-03-01T10:00:00.000Z", "100", "101.5", "100", "101.5", "1.5", "150.75", 2)]


def test_four_hour_and_daily_candles_start_at_midnight_utc(client, ctx, market):
    symbol, market_id = market
    record_trades(ctx, market_id, [(D("10"), D("1"), datetime(2026, 3, 1, 3, 59, 59, 999000)),
                                   (D("11"), D("1"), datetime(2026, 3, 1, 4, 0)),
                                   (D("12"), D("1"), datetime(2026, 3, 1, 23, 59, 59, 999000)),
                                   (D("13"), D("1"), datetime(2026, 3, 2, 0, 0))])
    assert [(c["open_time"], c["open"], c["close"], c["trades"]) for c in _candles(client, symbol, "4h")] == [
        ("2026-03-01T00:00:00.000Z", "10", "10", 1), ("2026-03-01T04:00:00.000Z", "11", "11", 1),
        ("2026-03-01T20:00:00.000Z", "12", "12", 1), ("2026-03-02T00:00:00.000Z", "13", "13", 1)]
    assert [(c["open_time"], c["open"], c["high"], c["low"], c["close"], c["trades"])
            for c in _candles(client, symbol, "1d")] == [
        ("2026-03-01T00:00:00.000Z", "10", "12", "10", "12", 3),
        ("2026-03-02T00:00:00.000Z", "13", "13", "13", "13", 1)]


def test_open_and_close_follow_trade_ids_when_a_later_batch_carries_an_earlier_time(client, ctx, market):
    """Two workers' clocks may disagree: the candle's open is still its first trade by id, not by time."""
    symbol, market_id = market
    record_trades(ctx, market_id, [(D("20"), D("1"), datetime(2026, 3, 1, 10, 0, 30))])
    record_trades(ctx, market_id, [(D("19"), D("2"), datetime(2026, 3, 1, 10, 0, 10))])
    [candle] = _candles(client, symbol, "1m")
    assert _shape(candle) == ("2026-03-01T10:00:00.000Z", "20", "20", "19", "19", "3", "58", 2)


trade_lists = st.lists(st.tuples(st.integers(min_value=0, max_value=2 * 86400 * 1000),  # ms after 2026-03-01
                                 st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**9)),
                       min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=trade_lists, cuts=st.lists(st.integers(min_value=1, max_value=39), max_size=6))
def test_stored_candles_equal_a_brute_force_computation_from_the_trades_for_any_batches(client, ctx, raw, cuts):
    symbol, market_id = _new_market(ctx)
    trades = [(D(price).scaleb(-6), D(quantity).scaleb(-8), datetime(2026, 3, 1) + timedelta(milliseconds=ms))
              for ms, price, quantity in raw]
    bounds = sorted({0, len(trades), *(cut for cut in cuts if cut < len(trades))})
    ids = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        ids += record_trades(ctx, market_id, trades[low:high])
    with_ids = [(trade_id, price, quantity, at) for trade_id, (price, quantity, at) in zip(ids, trades, strict=True)]
    for interval, interval_s in INTERVALS_S.items():
        assert api_candles(_candles(client, symbol, interval, limit=1000)) == brute_force_candles(with_ids, interval_s)


def test_candles_are_the_most_recent_with_trades_oldest_first_up_to_end_time(client, ctx, market):
    symbol, market_id = market
    hours = [datetime(2026, 3, 1, hour, 30) for hour in (1, 2, 5, 9)]  # hours 3, 4, 6-8 have no trade
    record_trades(ctx, market_id, [(D(index + 1), D("1"), at) for index, at in enumerate(hours)])
    assert [c["open_time"][11:16] for c in _candles(client, symbol, "1h", limit=3)] == ["02:00", "05:00", "09:00"]
    assert [c["open_time"][11:16] for c in _candles(client, symbol, "1h", limit=2,
                                                      end_time="2026-03-01T05:00:00Z")] == ["02:00", "05:00"]
    assert [c["open_time"][11:16] for c in _candles(client, symbol, "1h",
                                                      end_time="2026-03-01T06:59:59+02:00")] == ["01:00", "02:00"]
    assert _candles(client, symbol, "1h", end_time="2026-03-01T00:59:59.999Z") == []


def test_the_ticker_covers_exactly_the_last_24_hours(client, ctx, market, monkeypatch):
    symbol, market_id = market
    now = datetime(2026, 3, 2, 12, 0, 30, 500000)
    monkeypatch.setattr(market_data, "utc_now", lambda: now)
    start = now - timedelta(hours=24)
    record_trades(ctx, market_id, [
        (D("1"), D("100"), start - timedelta(hours=1)),  # an hour too old
        (D("2"), D("100"), start - timedelta(milliseconds=1)),  # too old by a millisecond, in the window's first minute
        (D("30"), D("1"), start),  # exactly 24 hours old: in
        (D("5"), D("2"), start + timedelta(seconds=29, milliseconds=499)),  # the last millisecond of that minute
        (D("40"), D("0.5"), start.replace(second=0, microsecond=0) + timedelta(minutes=1)),  # the next minute
        (D("35"), D("1"), now)])
    assert client.get(f"/api/ticker/{symbol}").json == {
        "market": f"{symbol}-USD", "last_price": "35", "best_bid": None, "best_ask": None, "open_24h": "30",
        "high_24h": "40", "low_24h": "5", "volume_24h": "4.5", "quote_volume_24h": "95", "trade_count_24h": 4}


def test_the_ticker_window_starting_on_a_minute_boundary_takes_that_whole_minute(client, ctx, market, monkeypatch):
    symbol, market_id = market
    now = datetime(2026, 3, 2, 12, 0)
    monkeypatch.setattr(market_data, "utc_now", lambda: now)
    record_trades(ctx, market_id, [(D("7"), D("1"), datetime(2026, 3, 1, 11, 59, 59, 999000)),
                                   (D("8"), D("1"), datetime(2026, 3, 1, 12, 0)),
                                   (D("9"), D("1"), datetime(2026, 3, 1, 12, 0, 59, 999000))])
    ticker = client.get(f"/api/ticker/{symbol}").json
    assert (ticker["open_24h"], ticker["low_24h"], ticker["trade_count_24h"]) == ("8", "8", 2)


def test_a_market_without_trades_has_null_prices_zero_volume_and_no_candles(client, market):
    symbol, _ = market
    assert client.get(f"/api/ticker/{symbol}").json == {
        "market": f"{symbol}-USD", "last_price": None, "best_bid": None, "best_ask": None, "open_24h": None,
        "high_24h": None, "low_24h": None, "volume_24h": "0", "quote_volume_24h": "0", "trade_count_24h": 0}
    assert _candles(client, symbol, "1m") == []


def test_a_market_whose_trades_are_all_older_than_a_day_keeps_its_last_price_only(client, ctx, market):
    symbol, market_id = market
    record_trades(ctx, market_id, [(D("3.25"), D("1"), datetime(2026, 1, 1))])
    ticker = client.get(f"/api/ticker/{symbol}").json
    assert (ticker["last_price"], ticker["open_24h"], ticker["high_24h"], ticker["volume_24h"],
            ticker["trade_count_24h"]) == ("3.25", None, None, "0", 0)


def test_a_market_is_named_by_its_pair_or_by_its_base_asset(client):
    assert client.get("/api/ticker/BTC-USD").json["market"] == "BTC-USD"
    assert client.get("/api/ticker/BTC").json["market"] == "BTC-USD"
    assert client.get("/api/candles/ETH-USD", query_string={"interval": "1d"}).status_code == 200


@pytest.mark.parametrize("path,query,field", [
    ("/api/candles/BTC", {}, "interval"),
    ("/api/candles/BTC", {"interval": "2m"}, "interval"),
    ("/api/candles/BTC", {"interval": "1M"}, "interval"),
    ("/api/candles/BTC", {"interval": "1m", "limit": "0"}, "limit"),
    ("/api/candles/BTC", {"interval": "1m", "limit": "1001"}, "limit"),
    ("/api/candles/BTC", {"interval": "1m", "limit": "ten"}, "limit"),
    ("/api/candles/BTC", {"interval": "1m", "end_time": "yesterday"}, "end_time"),
    ("/api/candles/BTC", {"interval": "1m", "end_time": "2026-02-30T00:00:00Z"}, "end_time"),
    ("/api/candles/BTC", {"interval": "1m", "end_time": "0001-01-01T00:00:00+01:00"}, "end_time"),
    ("/api/candles/NOPE", {"interval": "1m"}, "market"),
    ("/api/candles/BTC-EUR", {"interval": "1m"}, "market"),
    ("/api/ticker/NOPE", {}, "market"),
    ("/api/ticker/BTC-", {}, "market"),
    ("/api/ticker/-USD", {}, "market"),
])
def test_a_bad_interval_limit_end_time_or_market_is_a_400_naming_the_field(client, path, query, field):
    response = client.get(path, query_string=query)
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == field
    assert response.json["error"]["code"] in ("VALIDATION_ERROR", "UNKNOWN_SYMBOL")


def test_the_ticker_and_candles_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json["paths"]
    assert "get" in paths["/api/ticker/{market}"] and "get" in paths["/api/candles/{market}"]
