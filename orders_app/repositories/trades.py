"""Trades and the aggregated order book, read for the public market-data endpoints; a user's fills."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Select, func, literal, select, text, union_all
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


_IN_ID_RANGE_BETWEEN = text(
    "SELECT id, price, quantity, created_at FROM trades WHERE market_id = :market_id "
    "AND id BETWEEN :first_id AND :last_id AND created_at >= :start AND created_at < :end")


def in_id_range_between(session: Session, market_id: int, first_id: int, last_id: int, start: datetime,
                        end: datetime) -> list[tuple[int, Decimal, Decimal, datetime]]:
    """Trades with ids first_id..last_id (a candle's) created in [start, end): the walk is bounded by the
    candle's trades through the (market_id, id) index, with no index on time needed."""
    rows = session.execute(_IN_ID_RANGE_BETWEEN, {"market_id": market_id, "first_id": first_id,
                                                  "last_id": last_id, "start": start, "end": end}).all()
    return [(int(row[0]), row[1], row[2], row[3]) for row in rows]


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


class FillRow(NamedTuple):
    """One side of a trade: the user's order in it."""
    trade_id: int
    market_id: int
    order_id: int
    side: str
    price: Decimal
    quantity: Decimal
    taker_side: str
    created_at: datetime
    fee: Decimal  # what this side paid, in the asset it received


def fills(session: Session, user_id: int, *, market_id: int | None, order_id: int | None, limit: int,
          before_id: int | None) -> list[FillRow]:
    return [FillRow(*row) for row in session.execute(
        fills_statement(user_id, market_id=market_id, order_id=order_id, limit=limit, before_id=before_id))]


def fills_statement(user_id: int, *, market_id: int | None, order_id: int | None, limit: int,
                    before_id: int | None) -> Select:
    """The user's fills, newest first: its trades as buyer and as seller, each side walked newest first
    through its index and stopped at `limit`, then merged. The index is named: on a small or young table
    the optimizer prefers walking the primary key backwards, which for a user with few trades among many
    reads them all. A user's side: (user, id); one order's: its order index (an order has few trades).
    EXPLAIN on MariaDB (asserted by tests/integration/test_fills.py):
      <derived2>  ALL  -                 Using filesort   (the merge: at most 2 x limit rows)
      trades      ref  ix_trades_buyer   Using where      (read backwards along id: no filesort)
      trades      ref  ix_trades_seller  Using where
    `range` instead of `ref` with before_id; with order_id the order indexes, `ref`."""
    branches = []
    for side, user_column, order_column, fee_column, user_index, order_index in (
            ("buy", Trade.buyer_user_id, Trade.buy_order_id, Trade.buyer_fee, "ix_trades_buyer",
             "ix_trades_buy_order_id"),
            ("sell", Trade.seller_user_id, Trade.sell_order_id, Trade.seller_fee, "ix_trades_seller",
             "ix_trades_sell_order_id")):
        index = user_index if order_id is None else order_index
        branch = (select(Trade.id.label("trade_id"), Trade.market_id, order_column.label("order_id"),
                         literal(side).label("side"), Trade.price, Trade.quantity, Trade.taker_side,
                         Trade.created_at, fee_column.label("fee"))
                  .with_hint(Trade, f"FORCE INDEX ({index})", "mysql")
                  .where(user_column == user_id).order_by(Trade.id.desc()).limit(limit))
        if market_id is not None:
            branch = branch.where(Trade.market_id == market_id)
        if order_id is not None:
            branch = branch.where(order_column == order_id)
        if before_id is not None:
            branch = branch.where(Trade.id < before_id)
        branches.append(branch)
    both = union_all(*branches).subquery()
    return select(both).order_by(both.c.trade_id.desc(), both.c.side).limit(limit)
