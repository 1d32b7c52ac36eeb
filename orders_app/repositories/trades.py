"""Trades and the aggregated order book, read for the public market-data endpoints."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from orders_app.models import OPEN_STATUSES, MarketState, Order, Trade


def page(session: Session, market_id: int, limit: int, before_id: int | None) -> list[Trade]:
    statement = select(Trade).where(Trade.market_id == market_id).order_by(Trade.id.desc()).limit(limit)
    if before_id is not None:
        statement = statement.where(Trade.id < before_id)
    return list(session.execute(statement).scalars())


def book_levels(session: Session, market_id: int, side: str, depth: int) -> list[tuple]:
    """(price, total remaining) per price level of resting limit orders, best first. Only orders the
    worker has applied (seq <= market_state.last_seq) count: an accepted order not yet matched could
    cross the book, and is not resting yet."""
    applied = select(MarketState.last_seq).where(MarketState.market_id == market_id).scalar_subquery()
    order = Order.price.desc() if side == "buy" else Order.price.asc()
    return session.execute(
        select(Order.price, func.sum(Order.quantity - Order.filled_quantity))
        .where(Order.market_id == market_id, Order.side == side, Order.status.in_(OPEN_STATUSES),
               Order.type == "limit", Order.seq <= applied)
        .group_by(Order.price).order_by(order).limit(depth)).all()


_IN_ID_RANGE_BETWEEN = text(
    "SELECT id, price, quantity, created_at FROM trades WHERE market_id = :market_id "
    "AND id BETWEEN :first_id AND :last_id AND created_at >= :start AND created_at < :end")


def in_id_range_between(session: Session, market_id: int, first_id: int, last_id: int, start: datetime,
                        end: datetime) -> list:
    """Trades with ids first_id..last_id (a candle's) created in [start, end): the walk is bounded by the
    candle's trades through the (market_id, id) index, with no index on time needed."""
    return session.execute(_IN_ID_RANGE_BETWEEN, {"market_id": market_id, "first_id": first_id, "last_id": last_id,
                                              "start": start, "end": end}).all()
