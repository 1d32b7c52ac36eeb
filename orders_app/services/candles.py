"""Candles as values: pure aggregation of trades, and the merge the database's upsert performs.

No database and no clock. A candle is what a set of trades of one interval adds up to; `merge` of the
candles of two disjoint sets is the candle of their union, whatever the order (open and close are decided
by trade id, not by arrival), which is what lets the worker add each batch to the stored candle and the
ticker join whole minutes to a part of one.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from orders_app import money
from orders_app.services.views import iso_utc

# The API's interval names and their length; repositories/candles.py stores the same set.
INTERVALS_S = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}
_EPOCH = datetime(1970, 1, 1)


class Candle(NamedTuple):
    """The column order of repositories/candles.py's reads."""
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    first_trade_id: int
    last_trade_id: int


def epoch_minute(moment: datetime) -> int:
    """Whole minutes since the epoch: the stream's ticker keeps its buckets by it."""
    return int((moment - _EPOCH).total_seconds()) // 60


def bucket_start(moment: datetime, interval_s: int) -> datetime:
    """The start of the interval holding `moment` (naive UTC), counted from the epoch: 4h and 1d candles
    start at 00:00 UTC."""
    elapsed = moment - _EPOCH
    elapsed_s = elapsed.days * 86400 + elapsed.seconds  # whole seconds, floored (timedelta normalizes so)
    return _EPOCH + timedelta(seconds=elapsed_s - elapsed_s % interval_s)


def trade_candle(trade_id: int, price: Decimal, quantity: Decimal, created_at: datetime, interval_s: int) -> Candle:
    return Candle(bucket_start(created_at, interval_s), price, price, price, price, quantity,
                  money.multiply(price, quantity), 1, trade_id, trade_id)


def merge(a: Candle, b: Candle) -> Candle:
    """The candle of both sets of trades (its open_time the earlier: the ticker merges across minutes)."""
    return Candle(min(a.open_time, b.open_time),
                  a.open if a.first_trade_id < b.first_trade_id else b.open,
                  max(a.high, b.high), min(a.low, b.low),
                  a.close if a.last_trade_id > b.last_trade_id else b.close,
                  money.add(a.volume, b.volume), money.add(a.quote_volume, b.quote_volume), a.trades + b.trades,
                  min(a.first_trade_id, b.first_trade_id), max(a.last_trade_id, b.last_trade_id))


def merge_all(candles) -> Candle | None:
    total = None
    for candle in candles:
        total = candle if total is None else merge(total, candle)
    return total


def candle_view(candle: Candle) -> dict:
    return {"open_time": iso_utc(candle.open_time), "open": candle.open, "high": candle.high, "low": candle.low,
            "close": candle.close, "volume": candle.volume, "quote_volume": candle.quote_volume,
            "trades": candle.trades}
