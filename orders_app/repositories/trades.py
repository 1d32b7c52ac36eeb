"""Trades and the aggregated order book, read for the public market-data endpoints."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from orders_app.models import OPEN_STATUSES, MarketState, Order, Trade


def page(session: Session, market_id: int, limit: int, before_id: int | None) -> list[Trade]:
    statement = select(Trade).where(Trade.market_id == market_id).order_by(Trade.id.desc()).limit(limit)
    if before_id is not None:
        statement = statement.where(Trade.id < before_id)
    return list(session.execute(statement).scalars())


def book_levels(session: Session, market_id: int, side: str, depth: int
                ) -> Sequence[tuple[Decimal, Decimal]]:
    """(price, total remaining) per price level of resting limit orders, best first. Only orders the
    worker has applied (seq <= market_state.last_seq) count: an accepted order not yet matched could
    cross the book, and is not resting yet."""
    applied = select(MarketState.last_seq).where(MarketState.market_id == market_id).scalar_subquery()
    order = Order.price.desc() if side == "buy" else Order.price.asc()
    rows = session.execute(
        select(Order.price, func.sum(Order.quantity - Order.filled_quantity))
        .where(Order.market_id == market_id, Order.side == side, Order.status.in_(OPEN_STATUSES),
               Order.type == "limit", Order.seq <= applied)
        .group_by(Order.price).order_by(order).limit(depth)).all()
    return [(price, quantity) for price, quantity in rows if price is not None and quantity is not None]


def applied_seq(session: Session, market_id: int) -> int:
    return int(session.execute(select(MarketState.last_seq).where(MarketState.market_id == market_id)).scalar_one())


class TradeMinute(NamedTuple):
    minute: int  # minutes since the epoch
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int


_MINUTES = text(
    "SELECT TIMESTAMPDIFF(MINUTE, '1970-01-01', created_at) AS minute, MIN(price), MAX(price), SUM(quantity), "
    "SUM(price * quantity), COUNT(*), MIN(id), MAX(id) FROM trades "
    "WHERE market_id = :market_id AND created_at >= :since GROUP BY minute ORDER BY minute")
_PRICES = text("SELECT id, price FROM trades WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


_LAST_ID = text("SELECT COALESCE(MAX(id), 0) FROM trades WHERE market_id = :market_id")


def minutes_since(session: Session, market_id: int, since: datetime) -> tuple[list[TradeMinute], int]:
    """Per-minute aggregates of a market's trades since `since` (open and close by trade id), and the id
    of its last trade."""
    last_id = int(session.execute(_LAST_ID, {"market_id": market_id}).scalar_one())
    rows = session.execute(_MINUTES, {"market_id": market_id, "since": since}).all()
    if not rows:
        return [], last_id
    ids = sorted({r[6] for r in rows} | {r[7] for r in rows})
    prices: dict[int, Decimal] = dict(session.execute(_PRICES, {"ids": ids}).all())
    return [TradeMinute(int(minute), prices[first], high, low, prices[last], volume, quote, int(count))
            for minute, low, high, volume, quote, count, first, last in rows], last_id
