"""The matching worker's queries: the market's applied sequence, its commands, order and account writes.

Lock order inside a settling transaction: `market_state` (FOR UPDATE) -> the batch's takers, then the
makers they hit (orders, FOR UPDATE) -> accounts, sorted by (user_id, asset), in one statement.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Table, insert, select, tuple_, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.orm import Session

from orders_app.models import OPEN_STATUSES, Account, LedgerEntry, MarketSequence, MarketState, Order, OutboxEvent, Trade

RESTING_LOAD_PAGE_ROWS = 5000


def lock_market_state(session: Session, market_id: int) -> int:
    """Lock the market's applied sequence: while held, no other worker settles this market."""
    return int(session.execute(select(MarketState.last_seq).where(MarketState.market_id == market_id)
                               .with_for_update()).scalar_one())


def set_applied_seq(session: Session, market_id: int, seq: int) -> None:
    session.execute(update(MarketState).where(MarketState.market_id == market_id).values(last_seq=seq))


def accepted_seq(session: Session, market_id: int) -> int:
    """The last command number the API handed out for the market (committed or about to be)."""
    return int(session.execute(select(MarketSequence.last_seq)
                               .where(MarketSequence.market_id == market_id)).scalar_one())


def accepted_seqs(session: Session) -> dict[int, int]:
    return dict(session.execute(select(MarketSequence.market_id, MarketSequence.last_seq)).all())


def commands_between(session: Session, market_id: int, first_seq: int, last_seq: int) -> list[OutboxEvent]:
    """The market's sequenced commands first..last from the outbox (the database is the source of truth)."""
    return list(session.execute(
        select(OutboxEvent).where(OutboxEvent.market_id == market_id, OutboxEvent.seq >= first_seq,
                                  OutboxEvent.seq <= last_seq).order_by(OutboxEvent.seq)).scalars())


def resting_orders(session: Session, market_id: int, applied_seq: int):
    """Open limit orders already applied by the worker, in sequence (time priority) order, paged."""
    after_seq = 0
    while True:
        page = session.execute(
            select(Order.id, Order.user_id, Order.side, Order.price, Order.quantity, Order.filled_quantity,
                   Order.seq)
            .where(Order.market_id == market_id, Order.status.in_(OPEN_STATUSES), Order.type == "limit",
                   Order.seq > after_seq, Order.seq <= applied_seq)
            .order_by(Order.seq).limit(RESTING_LOAD_PAGE_ROWS)).all()
        yield from page
        if len(page) < RESTING_LOAD_PAGE_ROWS:
            return
        after_seq = page[-1].seq


def lock_orders(session: Session, order_ids) -> dict[int, Order]:
    if not order_ids:
        return {}
    rows = session.execute(select(Order).where(Order.id.in_(sorted(order_ids))).order_by(Order.id)
                           .with_for_update()).scalars()
    return {order.id: order for order in rows}


def write_orders(session: Session, rows: list[dict]) -> None:
    """Write the new state of already-locked orders in one statement (upsert of existing rows)."""
    if not rows:
        return
    statement = mysql_insert(Order).values(rows)
    session.execute(statement.on_duplicate_key_update(
        filled_quantity=statement.inserted.filled_quantity, filled_quote=statement.inserted.filled_quote,
        locked_amount=statement.inserted.locked_amount, status=statement.inserted.status,
        status_reason=statement.inserted.status_reason, updated_at=statement.inserted.updated_at))


def lock_accounts(session: Session, keys) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
    """Lock the accounts a batch touches, sorted by (user_id, asset): {(user, asset): (available, locked)}.
    An account that does not exist yet (a buyer's first base asset) is absent."""
    if not keys:
        return {}
    rows = session.execute(
        select(Account.user_id, Account.asset, Account.available, Account.locked)
        .where(tuple_(Account.user_id, Account.asset).in_(sorted(keys)))
        .order_by(Account.user_id, Account.asset).with_for_update()).all()
    return {(row.user_id, row.asset): (row.available, row.locked) for row in rows}


def write_accounts(session: Session, balances: dict[tuple[int, str], tuple[Decimal, Decimal]]) -> None:
    """Set the new (available, locked) of locked accounts in one statement, creating missing ones. Absolute
    values, not deltas: the database checks the inserted row's CHECK constraints before it sees the
    duplicate key, so a negative delta would be refused even for an existing account."""
    if not balances:
        return
    statement = mysql_insert(Account).values([
        {"user_id": user_id, "asset": asset, "available": available, "locked": locked}
        for (user_id, asset), (available, locked) in sorted(balances.items())])
    session.execute(statement.on_duplicate_key_update(available=statement.inserted.available,
                                                      locked=statement.inserted.locked))


def insert_returning_ids(session: Session, table: Table, rows: list[dict]) -> list[int]:
    """Insert rows, returning their ids in order: one statement where the server has RETURNING (MariaDB),
    one per row elsewhere (MySQL)."""
    if not rows:
        return []
    if session.get_bind().dialect.insert_returning:
        result = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        return [row[0] for row in result]
    return [int(session.execute(insert(table).values(**row)).inserted_primary_key[0]) for row in rows]


def insert_trades(session: Session, rows: list[dict]) -> list[int]:
    return insert_returning_ids(session, Trade.__table__, rows)


def insert_ledger(session: Session, rows: list[dict]) -> None:
    if rows:
        session.execute(insert(LedgerEntry), rows)


def insert_outbox(session: Session, rows: list[dict]) -> list[int]:
    return insert_returning_ids(session, OutboxEvent.__table__, rows)
