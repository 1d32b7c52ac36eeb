"""The matching worker's queries: the market's applied sequence, its commands, order and account writes.

Lock order inside a settling transaction: `market_state` (FOR UPDATE) -> the batch's takers, then the
makers they hit (orders, FOR UPDATE) -> accounts, sorted by (user_id, asset), in one statement.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, func, select, text
from sqlalchemy.orm import Session

from orders_app.models import (
    OPEN_STATUSES,
    MarketSequence,
    MarketState,
    Order,
    OutboxEvent,
    Trade,
)
from orders_app.repositories.bulk import json_rows, json_table

RESTING_LOAD_PAGE_ROWS = 5000


# The statements of every settling transaction are `text()`, as on the API's order path: with ORM
# statements, SQLAlchemy's cache-key generation alone was ~6 % of the worker's samples (py-spy --gil);
# CPU per call: the market lock 334 -> 196 us, a 39-order lock 1,556 -> 1,200 us.
# The fee rates come with the lock (scalar subqueries: the market row itself is not locked), so a rate
# change applies to every batch whose transaction starts after it committed.
_LOCK_MARKET_STATE = text(
    "SELECT last_seq, (SELECT maker_fee_rate FROM markets WHERE id = :market_id) AS maker_fee_rate, "
    "(SELECT taker_fee_rate FROM markets WHERE id = :market_id) AS taker_fee_rate, "
    "(SELECT status FROM markets WHERE id = :market_id) AS status "
    "FROM market_state WHERE market_id = :market_id FOR UPDATE")
_SET_APPLIED_SEQ = text("UPDATE market_state SET last_seq = :seq, updated_at = NOW(3) WHERE market_id = :market_id")
_ACCEPTED_SEQS = text("SELECT market_id, last_seq FROM market_sequences")


def lock_market_state(session: Session, market_id: int):
    """Lock the market's applied sequence: while held, no other worker settles this market. A row of
    (last_seq, maker_fee_rate, taker_fee_rate, status): the rates and the status in force now."""
    return session.execute(_LOCK_MARKET_STATE, {"market_id": market_id}).one()


def set_applied_seq(session: Session, market_id: int, seq: int) -> None:
    session.execute(_SET_APPLIED_SEQ, {"market_id": market_id, "seq": seq})


def accepted_seq(session: Session, market_id: int) -> int:
    """The last command number the API handed out for the market (committed or about to be)."""
    return int(session.execute(select(MarketSequence.last_seq)
                               .where(MarketSequence.market_id == market_id)).scalar_one())


def accepted_seqs(session: Session) -> dict[int, int]:
    return dict(session.execute(_ACCEPTED_SEQS).all())


def applied_seqs(session: Session) -> dict[int, int]:
    """Every market's applied sequence (`market_state.last_seq`), without locking."""
    return dict(session.execute(select(MarketState.market_id, MarketState.last_seq)).all())


def commands_between(session: Session, market_id: int, first_seq: int, last_seq: int
                     ) -> Sequence[Row[int, str, int, str | None]]:
    """The market's sequenced commands first..last, (seq, event_type, order_id, request_id) rows from the
    outbox, which doubles as the command log: the database is the source of truth."""
    return session.execute(
        select(OutboxEvent.seq, OutboxEvent.event_type, OutboxEvent.order_id,
               func.json_value(OutboxEvent.payload, "$.request_id").label("request_id"))
        .where(OutboxEvent.market_id == market_id, OutboxEvent.seq >= first_seq, OutboxEvent.seq <= last_seq)
        .order_by(OutboxEvent.seq)).all()


_COMMANDS_AT = text("SELECT seq, event_type, order_id FROM outbox WHERE market_id = :market_id AND seq IN :seqs"
                    ).bindparams(bindparam("seqs", expanding=True))


def commands_at(session: Session, market_id: int, seqs: Collection[int]) -> dict[int, tuple[str, int]]:
    """{seq: (event_type, order_id)} of the market's commands among `seqs` that the outbox still holds
    (an applied command's row may have been pruned)."""
    if not seqs:
        return {}
    return {seq: (event_type, order_id) for seq, event_type, order_id in session.execute(
        _COMMANDS_AT, {"market_id": market_id, "seqs": sorted(seqs)})}


_PENDING_AMENDMENTS = text(
    "SELECT order_id, seq, added_quantity FROM order_amendments WHERE market_id = :market_id AND seq > :after_seq")


def pending_amendments(session: Session, market_id: int, after_seq: int) -> dict[int, list[tuple[int, Decimal]]]:
    """MERGE_SAME_PRICE_ORDERS amendments not applied yet: {order_id: [(seq, added_quantity), ...]}."""
    pending: dict[int, list[tuple[int, Decimal]]] = {}
    for order_id, seq, added in session.execute(_PENDING_AMENDMENTS, {"market_id": market_id, "after_seq": after_seq}):
        pending.setdefault(order_id, []).append((seq, added))
    return pending


def resting_orders(session: Session, market_id: int, applied_seq: int) -> Iterator[Row[
        int, int, str, Decimal | None, Decimal | None, Decimal, int, int | None]]:
    """Open limit orders already applied by the worker, by placement sequence, paged (the caller orders
    them by time priority: `queue_seq` when an amendment moved one back)."""
    after_seq = 0
    while True:
        page = session.execute(
            select(Order.id, Order.user_id, Order.side, Order.price, Order.quantity, Order.filled_quantity,
                   Order.seq, Order.queue_seq)
            .where(Order.market_id == market_id, Order.status.in_(OPEN_STATUSES), Order.type == "limit",
                   Order.seq > after_seq, Order.seq <= applied_seq)
            .order_by(Order.seq).limit(RESTING_LOAD_PAGE_ROWS)).all()
        yield from page
        if len(page) < RESTING_LOAD_PAGE_ROWS:
            return
        after_seq = page[-1].seq


class LockedOrder(NamedTuple):
    """An order row as settlement reads it, locked (`lock_orders`): the columns it matches and settles from."""
    id: int
    market_id: int
    user_id: int
    side: str
    type: str
    time_in_force: str
    post_only: int  # TINYINT: a text() query reads 0 or 1
    price: Decimal | None
    quantity: Decimal | None
    filled_quantity: Decimal
    filled_quote: Decimal
    locked_amount: Decimal
    status: str
    status_reason: str | None
    request_id: str | None
    seq: int
    # for the streams' order views
    quote_quantity: Decimal | None
    client_order_id: str | None
    cancel_requested_at: datetime | None
    created_at: datetime
    fee: Decimal


SETTLED_ORDER_COLUMNS = LockedOrder._fields
_LOCK_ORDERS = text(f"SELECT {', '.join(SETTLED_ORDER_COLUMNS)} FROM orders WHERE id IN :ids ORDER BY id FOR UPDATE"
                    ).bindparams(bindparam("ids", expanding=True))


def lock_orders(session: Session, order_ids: Collection[int]) -> dict[int, LockedOrder]:
    """Lock orders by id (ascending); rows with the columns settlement reads (plain rows: no ORM
    identity map on this hot path)."""
    if not order_ids:
        return {}
    return {row.id: row for row in map(LockedOrder._make, session.execute(_LOCK_ORDERS, {"ids": sorted(order_ids)}))}


# --- bulk writes (JSON_TABLE, see repositories/bulk.py) -----------------------------------------

_WRITE_ORDERS = text(
    "UPDATE orders o JOIN " + json_table(
        "id BIGINT", "filled DECIMAL(38,18)", "filled_quote DECIMAL(38,18)", "locked DECIMAL(38,18)",
        "status VARCHAR(16)", "reason VARCHAR(32)", "queue_seq BIGINT", "fee DECIMAL(38,18)") +
    " ON o.id = j.id SET o.filled_quantity = j.filled, o.filled_quote = j.filled_quote, "
    "o.locked_amount = j.locked, o.status = j.status, o.status_reason = j.reason, o.fee = j.fee, "
    "o.queue_seq = COALESCE(j.queue_seq, o.queue_seq), o.updated_at = :now")

_INSERT_TRADES = text(
    "INSERT INTO trades (market_id, price, quantity, buy_order_id, sell_order_id, buyer_user_id, seller_user_id, "
    "taker_side, seq, match_index, buyer_fee, seller_fee, created_at) SELECT :market_id, j.price, j.quantity, "
    "j.buy_order_id, j.sell_order_id, j.buyer, j.seller, j.taker_side, j.seq, j.match_index, j.buyer_fee, "
    "j.seller_fee, :now FROM "
    + json_table("price DECIMAL(38,18)", "quantity DECIMAL(38,18)", "buy_order_id BIGINT", "sell_order_id BIGINT",
                  "buyer BIGINT", "seller BIGINT", "taker_side VARCHAR(4)", "seq BIGINT", "match_index INT",
                  "buyer_fee DECIMAL(38,18)", "seller_fee DECIMAL(38,18)")
    + " ORDER BY j.ord")

_INSERT_EVENTS = text(
    "INSERT INTO outbox (topic, message_key, event_type, payload, created_at) "
    "SELECT :topic, :message_key, :event_type, j.payload, :now FROM "
    + json_table("payload LONGTEXT") + " ORDER BY j.ord")


def write_orders(session: Session, rows: Sequence[Sequence[object]], now: datetime) -> None:
    """New state of already-locked orders: [id, filled, filled_quote, locked, status, reason, queue_seq, fee]
    rows (queue_seq None: unchanged)."""
    if rows:
        session.execute(_WRITE_ORDERS, {"rows": json_rows(rows), "now": now})


def insert_trades(session: Session, market_id: int, rows: Sequence[Sequence[Any]], now: datetime
                  ) -> dict[tuple[int, int], int]:
    """Insert [price, quantity, buy_order_id, sell_order_id, buyer, seller, taker_side, seq, match_index,
    buyer_fee, seller_fee] rows;
    returns {(seq, match_index): trade id}, read back through the unique key (works without RETURNING)."""
    if not rows:
        return {}
    session.execute(_INSERT_TRADES, {"rows": json_rows(rows), "market_id": market_id, "now": now})
    seqs = [row[7] for row in rows]
    return {(seq, match_index): trade_id for trade_id, seq, match_index in session.execute(
        select(Trade.id, Trade.seq, Trade.match_index)
        .where(Trade.market_id == market_id, Trade.seq >= min(seqs), Trade.seq <= max(seqs)))}


def insert_events(session: Session, *, topic: str, key: str, event_type: str, payloads: list[str],
                  now: datetime) -> None:
    """Outbox rows of one topic/key, for the relay to publish."""
    if payloads:
        session.execute(_INSERT_EVENTS, {"topic": topic, "message_key": key, "event_type": event_type, "now": now,
                                         "rows": json_rows([[payload] for payload in payloads])})
