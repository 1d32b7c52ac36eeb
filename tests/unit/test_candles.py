"""Candles as values: interval alignment in UTC, and merging partial candles is exact in any order and split."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from orders_app.repositories import candles as stored
from orders_app.services.candles import INTERVALS_S, bucket_start, merge, merge_all, trade_candle
from tests.support.trades import brute_force_candles

START = datetime(2026, 3, 1, 22, 0)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)


def test_a_trade_at_the_last_millisecond_of_a_minute_and_one_at_the_next_fall_in_two_candles():
    assert bucket_start(datetime(2026, 3, 1, 10, 4, 59, 999000), 60) == datetime(2026, 3, 1, 10, 4)
    assert bucket_start(datetime(2026, 3, 1, 10, 5, 0, 0), 60) == datetime(2026, 3, 1, 10, 5)


def test_four_hour_and_daily_intervals_start_at_midnight_utc():
    moment = datetime(2026, 3, 1, 23, 59, 59, 999000)
    assert bucket_start(moment, INTERVALS_S["4h"]) == datetime(2026, 3, 1, 20, 0)
    assert bucket_start(moment, INTERVALS_S["1d"]) == datetime(2026, 3, 1)
    assert bucket_start(moment + timedelta(milliseconds=1), INTERVALS_S["1d"]) == datetime(2026, 3, 2)
    assert bucket_start(datetime(2026, 3, 1, 3, 59), INTERVALS_S["4h"]) == datetime(2026, 3, 1, 0, 0)
    assert bucket_start(datetime(2026, 3, 1, 12, 14, 59), INTERVALS_S["15m"]) == datetime(2026, 3, 1, 12, 0)


def test_the_api_offers_exactly_the_intervals_the_database_stores():
    assert tuple(INTERVALS_S.values()) == stored.INTERVALS_S


amounts = st.integers(min_value=1, max_value=10**12).map(lambda units: Decimal(units).scaleb(-6))
trades_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3 * 86400 * 1000),  # ms after START, in any order of id
              amounts, amounts), min_size=1, max_size=60)


@PROPERTY_SETTINGS
@given(raw=trades_strategy, cuts=st.lists(st.integers(min_value=0, max_value=60)), data=st.data())
def test_merging_batches_of_trades_in_any_split_and_order_equals_computing_from_all_trades(raw, cuts, data):
    trades = [(trade_id, price, quantity, START + timedelta(milliseconds=ms))
              for trade_id, (ms, price, quantity) in enumerate(raw, start=1)]
    bounds = sorted({0, len(trades), *(cut % (len(trades) + 1) for cut in cuts)})
    batches = [trades[low:high] for low, high in zip(bounds, bounds[1:], strict=False)]
    order = data.draw(st.permutations(range(len(batches))))
    for interval_s in INTERVALS_S.values():
        stored_candles = {}
        for index in order:  # each batch becomes partial candles, merged into what is stored, as the upsert does
            partial = {}
            for trade_id, price, quantity, moment in batches[index]:
                candle = trade_candle(trade_id, price, quantity, moment, interval_s)
                partial[candle.open_time] = merge(partial[candle.open_time], candle) \
                    if candle.open_time in partial else candle
            for start, candle in partial.items():
                stored_candles[start] = merge(stored_candles[start], candle) if start in stored_candles else candle
        assert {start: (c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades)
                for start, c in stored_candles.items()} == brute_force_candles(trades, interval_s)


def test_merging_nothing_is_no_candle():
    assert merge_all([]) is None
