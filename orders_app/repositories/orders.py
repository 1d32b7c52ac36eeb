"""Orders: insert, look up, list with filters, and mark cancel requests."""
from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, and_, bindparam, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from orders_app.errors import invariant, present
from orders_app.models import OPEN_STATUSES, Order, OrderAmendment
from orders_app.repositories.bulk import ids_by_market_seq, json_rows, json_table

RESTING_ASKS_PAGE_ROWS = 200
STRING_COLUMN_LENGTH_MAX = 64  # client_order_id, request_id


_NEW_ORDER_COLUMNS = ("market_id", "user_id", "side", "type", "time_in_force", "post_only", "price", "quantity",
                      "quote_quantity", "locked_amount", "client_order_id", "seq", "request_id", "fee_asset")
_INSERT_NEW_ORDERS = text(
    "INSERT INTO orders (market_id, user_id, side, type, time_in_force, post_only, price, quantity, quote_quantity, "
    "filled_quantity, filled_quote, locked_amount, status, client_order_id, seq, request_id, fee, fee_asset, "
    "created_at, updated_at) SELECT j.market_id, j.user_id, j.side, j.type, j.tif, j.post_only, j.price, "
    "j.quantity, j.quote_quantity, 0, 0, j.locked, 'pending', j.client_order_id, j.seq, j.request_id, 0, "
    "j.fee_asset, :now, :now FROM "
    + json_table("market_id INT", "user_id BIGINT", "side VARCHAR(4)", "type VARCHAR(8)", "tif VARCHAR(3)",
                 "post_only TINYINT", "price DECIMAL(38,18)", "quantity DECIMAL(38,18)",
                 "quote_quantity DECIMAL(38,18)", "locked DECIMAL(38,18)", "client_order_id VARCHAR(64)",
                 "seq BIGINT", "request_id VARCHAR(64)", "fee_asset VARCHAR(16)")
    + " ORDER BY j.ord")


_NEW_ORDER_IDS = text("SELECT id, seq FROM orders WHERE market_id = :market_id AND seq BETWEEN :low AND :high")


def add_many(session: Session, rows: list[dict], now) -> dict[tuple[int, int], int]:
    """Insert new pending orders (dicts with `_NEW_ORDER_COLUMNS`) in one statement; returns
    {(market_id, seq): id}."""
    if not rows:
        return {}
    for row in rows:  # JSON_TABLE would truncate a longer string silently
        invariant(all(len(row[column] or "") <= STRING_COLUMN_LENGTH_MAX
                      for column in ("client_order_id", "request_id")),
                  f"order {row['market_id']}/{row['seq']}: a string longer than its column")
    session.execute(_INSERT_NEW_ORDERS, {"now": now, "rows": json_rows(
        [[int(row[column]) if column == "post_only" else row[column] for column in _NEW_ORDER_COLUMNS]
         for row in rows])})
    return ids_by_market_seq(session, _NEW_ORDER_IDS, ((row["market_id"], row["seq"]) for row in rows))


_LOCK_USERS_COUNT_OPEN = text(
    "SELECT u.id, (SELECT COUNT(*) FROM orders o"
    " WHERE o.user_id = u.id AND o.status IN ('pending', 'partially_filled'))"
    " FROM users u WHERE u.id IN :user_ids ORDER BY u.id FOR UPDATE").bindparams(bindparam("user_ids", expanding=True))


def lock_users_count_open(session: Session, user_ids: set[int]) -> dict[int, int]:
    """{user_id: open orders} of existing users, locking their rows (sorted) until commit, so that two
    transactions placing orders for one user count each other's (ix_orders_user_status: walks open orders
    only). The matching worker only ever lowers the count, so it takes no such lock."""
    if not user_ids:
        return {}
    return {int(user_id): int(count)
            for user_id, count in session.execute(_LOCK_USERS_COUNT_OPEN, {"user_ids": sorted(user_ids)})}


def get(session: Session, order_id: int) -> Order | None:
    return session.get(Order, order_id)


def find_by_client_order_id(session: Session, user_id: int, client_order_id: str) -> Order | None:
    return session.execute(
        select(Order).where(Order.user_id == user_id, Order.client_order_id == client_order_id)
    ).scalar_one_or_none()


def find_by_client_order_ids(session: Session, keys: set[tuple[int, str]],
                             locking: bool = True) -> dict[tuple[int, str], Order]:
    """{(user_id, client_order_id): order} of those that exist. A locking read (shared): an order with one of
    these ids that another transaction inserted but has not committed yet is waited for, not missed.
    `locking=False` for a caller that holds the users' locks every inserter holds: nothing is left to wait for."""
    if not keys:
        return {}
    statement = select(Order).where(tuple_(Order.user_id, Order.client_order_id).in_(sorted(keys)))
    rows = session.execute(statement.with_for_update(read=True) if locking else statement).scalars()
    return {(order.user_id, present(order.client_order_id, "found by its client_order_id")): order
            for order in rows}


def search(session: Session, *, user_id: int | None, market_id: int | None, side: str | None,
           status: str | None, limit: int, before_id: int | None) -> list[Order]:
    """Newest first; `before_id` pages backwards. Served by ix_orders_user_id / the primary key."""
    statement = select(Order).order_by(Order.id.desc()).limit(limit)
    if user_id is not None:
        statement = statement.where(Order.user_id == user_id)
    if market_id is not None:
        statement = statement.where(Order.market_id == market_id)
    if side is not None:
        statement = statement.where(Order.side == side)
    if status is not None:
        statement = statement.where(Order.status == status)
    if before_id is not None:
        statement = statement.where(Order.id < before_id)
    return list(session.execute(statement).scalars())


def mark_cancel_requested(session: Session, order_id: int, now: datetime) -> bool:
    """Record a cancel request on an open order that has none yet; False if it is final or already asked."""
    result = cast(CursorResult, session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(OPEN_STATUSES), Order.cancel_requested_at.is_(None))
        .values(cancel_requested_at=now, updated_at=now)))
    return result.rowcount == 1


def lock_open_without_cancel_request(session: Session, user_id: int, market_id: int | None,
                                     limit: int) -> list[Order]:
    """The user's open orders (of one market if given) with no cancel requested, oldest first, locked
    (ix_orders_user_status: walks the user's open orders only)."""
    statement = (select(Order).where(Order.user_id == user_id, Order.status.in_(OPEN_STATUSES),
                                     Order.cancel_requested_at.is_(None))
                 .order_by(Order.id).limit(limit).with_for_update())
    if market_id is not None:
        statement = statement.where(Order.market_id == market_id)
    return list(session.execute(statement).scalars())


def mark_cancels_requested(session: Session, locked: list[Order], now: datetime) -> None:
    """Record a cancel request on orders locked by `lock_open_without_cancel_request`, in one statement;
    the loaded rows show it without being read again."""
    session.execute(update(Order).where(Order.id.in_([order.id for order in locked]))
                    .values(cancel_requested_at=now, updated_at=now)
                    .execution_options(synchronize_session=False))
    for order in locked:
        set_committed_value(order, "cancel_requested_at", now)
        set_committed_value(order, "updated_at", now)


def lock_mergeable_buy(session: Session, user_id: int, market_id: int, price) -> Order | None:
    """MERGE_SAME_PRICE_ORDERS: the user's oldest untouched resting GTC limit buy at `price`, locked."""
    return session.execute(
        select(Order).where(Order.user_id == user_id, Order.market_id == market_id, Order.side == "buy",
                            Order.type == "limit", Order.time_in_force == "GTC", Order.post_only.is_(False),
                            Order.price == price, Order.status == "pending", Order.filled_quantity == 0,
                            Order.cancel_requested_at.is_(None))
        .order_by(Order.id).limit(1).with_for_update()).scalar_one_or_none()


def add_to_order(session: Session, order: Order, *, seq: int, quantity, hold, now: datetime) -> None:
    """Grow an order by a merged one: quantity and hold at once, the queue move when the worker applies
    the amendment (`seq`)."""
    session.execute(update(Order).where(Order.id == order.id).values(
        quantity=Order.quantity + quantity, locked_amount=Order.locked_amount + hold, updated_at=now))
    session.execute(insert(OrderAmendment).values(order_id=order.id, market_id=order.market_id, seq=seq,
                                                  added_quantity=quantity, added_hold=hold, created_at=now))


def resting_asks(session: Session, market_id: int, after: tuple | None = None):
    """Open limit sells best first (price, then time), one page of (price, remaining, seq) rows after
    the (price, seq) position `after`."""
    statement = (select(Order.price, Order.quantity - Order.filled_quantity, Order.seq)
                 .where(Order.market_id == market_id, Order.side == "sell", Order.status.in_(OPEN_STATUSES),
                        Order.type == "limit")
                 .order_by(Order.price, Order.seq).limit(RESTING_ASKS_PAGE_ROWS))
    if after is not None:
        price, seq = after
        statement = statement.where(or_(Order.price > price, and_(Order.price == price, Order.seq > seq)))
    return session.execute(statement).all()
