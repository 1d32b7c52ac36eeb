"""Accounts (available and locked per user and asset) and their append-only ledger.

Every change to an account is one conditional UPDATE plus one `ledger_entries` row in the same
transaction, so an account's balance always equals the sum of its entries.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.orm import Session

from orders_app.models import Account, LedgerEntry


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
    result = session.execute(
        update(Account)
        .where(Account.user_id == user_id, Account.asset == asset, Account.available >= amount)
        .values(available=Account.available - amount))
    if result.rowcount != 1:
        return False
    _journal(session, user_id, asset, -amount, Decimal(0), reason)
    return True


def hold(session: Session, user_id: int, asset: str, amount: Decimal, order_id: int | None = None) -> bool:
    """Move `amount` from available to locked in one conditional update; False if not enough available."""
    if amount == 0:
        return True
    result = session.execute(
        update(Account)
        .where(Account.user_id == user_id, Account.asset == asset, Account.available >= amount)
        .values(available=Account.available - amount, locked=Account.locked + amount))
    if result.rowcount != 1:
        return False
    _journal(session, user_id, asset, -amount, amount, "order_hold", order_id)
    return True


def get(session: Session, user_id: int, asset: str) -> Account | None:
    return session.execute(
        select(Account).where(Account.user_id == user_id, Account.asset == asset)).scalar_one_or_none()


def list_for_user(session: Session, user_id: int, asset: str | None = None) -> list[Account]:
    statement = select(Account).where(Account.user_id == user_id).order_by(Account.asset)
    if asset is not None:
        statement = statement.where(Account.asset == asset)
    return list(session.execute(statement).scalars())
