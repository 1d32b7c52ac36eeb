"""Accounts (available and locked per user and asset) and their append-only ledger.

Every change to an account is one conditional UPDATE plus one `ledger_entries` row in the same
transaction, so an account's balance always equals the sum of its entries.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import NamedTuple, cast

from sqlalchemy import CursorResult, insert, select, text, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.orm import Session

from orders_app.models import Account, LedgerEntry
from orders_app.repositories.bulk import json_rows, json_table


def _journal(session: Session, user_id: int, asset: str, delta_available: Decimal, delta_locked: Decimal,
             reason: str, order_id: int | None = None) -> None:
    session.execute(insert(LedgerEntry).values(
        user_id=user_id, asset=asset, delta_available=delta_available, delta_locked=delta_locked,
        reason=reason, order_id=order_id))


def credit(session: Session, user_id: int, asset: str, amount: Decimal, reason: str) -> None:
    """Add to available, creating the account on first use."""
    statement = mysql_insert(Account).values(user_id=user_id, asset=asset, available=amount, locked=0)
    session.execute(statement.on_duplicate_key_update(available=Account.available + statement.inserted.available))
    _journal(session, user_id, asset, amount, Decimal(0), reason)


def debit(session: Session, user_id: int, asset: str, amount: Decimal, reason: str) -> bool:
    """Take from available if there is enough; False (and nothing changed) otherwise."""
    result = cast(CursorResult, session.execute(
        update(Account)
        .where(Account.user_id == user_id, Account.asset == asset, Account.available >= amount)
        .values(available=Account.available - amount)))
    if result.rowcount != 1:
        return False
    _journal(session, user_id, asset, -amount, Decimal(0), reason)
    return True


def hold(session: Session, user_id: int, asset: str, amount: Decimal, order_id: int | None = None) -> bool:
    """Move `amount` from available to locked in one conditional update; False if not enough available."""
    if amount == 0:
        return True
    result = cast(CursorResult, session.execute(
        update(Account)
        .where(Account.user_id == user_id, Account.asset == asset, Account.available >= amount)
        .values(available=Account.available - amount, locked=Account.locked + amount)))
    if result.rowcount != 1:
        return False
    _journal(session, user_id, asset, -amount, amount, "order_hold", order_id)
    return True


_INSERT_LEDGER = text(
    "INSERT INTO ledger_entries (user_id, asset, delta_available, delta_locked, reason, order_id, trade_id) "
    "SELECT j.user_id, j.asset, j.d_available, j.d_locked, j.reason, j.order_id, j.trade_id FROM "
    + json_table("user_id BIGINT", "asset VARCHAR(16)", "d_available DECIMAL(38,18)", "d_locked DECIMAL(38,18)",
                 "reason VARCHAR(32)", "order_id BIGINT", "trade_id BIGINT")
    + " ORDER BY j.ord")


def journal_many(session: Session, rows: Sequence[Sequence[object]]) -> None:
    """Ledger rows [user_id, asset, d_available, d_locked, reason, order_id, trade_id], in one statement."""
    if rows:
        session.execute(_INSERT_LEDGER, {"rows": json_rows(rows)})


def get(session: Session, user_id: int, asset: str) -> Account | None:
    return session.execute(
        select(Account).where(Account.user_id == user_id, Account.asset == asset)).scalar_one_or_none()


def list_for_user(session: Session, user_id: int, asset: str | None = None) -> list[Account]:
    statement = select(Account).where(Account.user_id == user_id).order_by(Account.asset)
    if asset is not None:
        statement = statement.where(Account.asset == asset)
    return list(session.execute(statement).scalars())


_WRITE_ACCOUNTS = text(
    "INSERT INTO accounts (user_id, asset, available, locked) SELECT j.user_id, j.asset, j.available, j.locked "
    "FROM " + json_table("user_id BIGINT", "asset VARCHAR(16)", "available DECIMAL(38,18)", "locked DECIMAL(38,18)",
                         "d_available DECIMAL(38,18)", "d_locked DECIMAL(38,18)") +
    " ORDER BY j.ord ON DUPLICATE KEY UPDATE"
    " available = accounts.available + j.d_available, locked = accounts.locked + j.d_locked")


class BalanceChange(NamedTuple):
    """An account's new balance as computed from its locked row (or from zero when it had none), and the
    move that led there."""
    available: Decimal
    locked: Decimal
    d_available: Decimal
    d_locked: Decimal


_LOCK_MANY = text(
    "SELECT a.user_id, a.asset, a.available, a.locked FROM " + json_table("user_id BIGINT", "asset VARCHAR(16)")
    + " JOIN accounts a ON a.user_id = j.user_id AND a.asset = j.asset ORDER BY j.ord FOR UPDATE")


def lock_many(session: Session, keys: Collection[tuple[int, str]]) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
    """Lock the accounts a batch touches, in (user_id, asset) order (the keys are sent sorted and joined
    in that order, primary-key lookups): {(user, asset): (available, locked)}. An account that does not
    exist yet (a buyer's first base asset) is absent. Plain SQL: this is on every order's path, and the
    ORM statement cost ~4x the CPU of the round trip itself."""
    if not keys:
        return {}
    rows = session.execute(_LOCK_MANY, {"rows": json_rows(sorted(keys))}).all()
    return {(user_id, asset): (available, locked) for user_id, asset, available, locked in rows}


def write_balances(session: Session, changes: dict[tuple[int, str], BalanceChange]) -> None:
    """Write the changes of accounts locked by `lock_many`, sorted, in one statement.

    A missing account is inserted with its new balance (never negative: the database checks an inserted
    row's CHECK constraints before it sees a duplicate key, so the insert carries absolute values). An
    existing one gets the deltas added, not the computed value written: for a locked row both are the same,
    and an account that did not exist when `lock_many` ran (READ COMMITTED takes no gap lock) but was
    created since, by a deposit or another market's credit, keeps what that transaction put there."""
    if changes:
        rows = [[user_id, asset, *change] for (user_id, asset), change in sorted(changes.items())]
        session.execute(_WRITE_ACCOUNTS, {"rows": json_rows(rows)})
