"""Candles: trades aggregated per market, interval and UTC-aligned start, kept current by the worker.

`record_trades` runs in the settling transaction, once per batch: it aggregates the batch's trades (read back
through their unique (market_id, seq, match_index) key) for every interval at once and merges them into the
stored rows. The merge is exact and order-free: sums add, high/low take the extreme, and open/close come from
whichever side holds the lower first / higher last trade id. Assignments in ON DUPLICATE KEY UPDATE see the
columns already updated to their left, so the trade ids are updated last.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

# The stored intervals, in seconds: all divide a day, so counting from the epoch aligns them in UTC.
INTERVALS_S = (60, 300, 900, 3600, 14400, 86400)
ONE_MINUTE_S = 60

_EPOCH = "TIMESTAMP('1970-01-01 00:00:00')"
_INTERVALS = " UNION ALL ".join(f"SELECT {seconds} AS interval_s" for seconds in INTERVALS_S)
_RECORD_TRADES = text(
    "INSERT INTO candles (market_id, interval_s, open_time, open_price, high_price, low_price, close_price, "
    "volume, quote_volume, trade_count, first_trade_id, last_trade_id) "
    "SELECT g.market_id, g.interval_s, g.bucket, o.price, g.top, g.bottom, c.price, g.qty, g.quote_qty, g.n, "
    "g.first_id, g.last_id FROM ("
    f"  SELECT t.market_id, i.interval_s, TIMESTAMPADD(SECOND, TIMESTAMPDIFF(SECOND, {_EPOCH}, t.created_at) "
    f"    DIV i.interval_s * i.interval_s, {_EPOCH}) AS bucket, "
    "    MAX(t.price) AS top, MIN(t.price) AS bottom, SUM(t.quantity) AS qty, SUM(t.price * t.quantity) AS quote_qty, "
    "    COUNT(*) AS n, MIN(t.id) AS first_id, MAX(t.id) AS last_id "
    f"  FROM trades t CROSS JOIN ({_INTERVALS}) i "
    "  WHERE t.market_id = :market_id AND t.seq BETWEEN :first_seq AND :last_seq "
    "  GROUP BY t.market_id, i.interval_s, bucket"
    ") g JOIN trades o ON o.id = g.first_id JOIN trades c ON c.id = g.last_id "
    "ON DUPLICATE KEY UPDATE "
    "open_price = IF(VALUES(first_trade_id) < candles.first_trade_id, VALUES(open_price), candles.open_price), "
    "close_price = IF(VALUES(last_trade_id) > candles.last_trade_id, VALUES(close_price), candles.close_price), "
    "high_price = GREATEST(candles.high_price, VALUES(high_price)), "
    "low_price = LEAST(candles.low_price, VALUES(low_price)), "
    "volume = candles.volume + VALUES(volume), "
    "quote_volume = candles.quote_volume + VALUES(quote_volume), "
    "trade_count = candles.trade_count + VALUES(trade_count), "
    "first_trade_id = LEAST(candles.first_trade_id, VALUES(first_trade_id)), "
    "last_trade_id = GREATEST(candles.last_trade_id, VALUES(last_trade_id))")

_COLUMNS = ("open_time, open_price, high_price, low_price, close_price, volume, quote_volume, trade_count, "
            "first_trade_id, last_trade_id")
_LATEST = text(f"SELECT {_COLUMNS} FROM candles WHERE market_id = :market_id AND interval_s = :interval_s "
               "AND open_time <= :end_time ORDER BY open_time DESC LIMIT :limit")
_SINCE = text(f"SELECT {_COLUMNS} FROM candles WHERE market_id = :market_id AND interval_s = :interval_s "
              "AND open_time >= :start ORDER BY open_time")


def record_trades(session: Session, market_id: int, first_seq: int, last_seq: int) -> None:
    """Merge the market's trades of commands first_seq..last_seq (this batch's, already inserted) into its
    candles of every interval: one statement."""
    session.execute(_RECORD_TRADES, {"market_id": market_id, "first_seq": first_seq, "last_seq": last_seq})


def latest(session: Session, market_id: int, interval_s: int, end_time: datetime, limit: int) -> list:
    """The `limit` most recent candles starting at or before `end_time`, newest first."""
    return list(session.execute(_LATEST, {"market_id": market_id, "interval_s": interval_s, "end_time": end_time,
                                          "limit": limit}).all())


def minutes_since(session: Session, market_id: int, start: datetime) -> list:
    """The one-minute candles starting at or after `start`, oldest first (at most 1,440 a day)."""
    return list(session.execute(_SINCE, {"market_id": market_id, "interval_s": ONE_MINUTE_S, "start": start}).all())
