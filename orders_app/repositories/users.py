"""Users and their API keys (stored as SHA-256 hashes only)."""
from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.orm import Session

from orders_app.errors import present
from orders_app.models import ApiKey, ApiKeyGeneration, User


def add(session: Session, name: str | None) -> User:
    result = cast(CursorResult, session.execute(insert(User).values(name=name)))
    return session.get_one(User, int(present(result.inserted_primary_key, "an insert has a key")[0]))


def exists(session: Session, user_id: int) -> bool:
    return session.execute(select(User.id).where(User.id == user_id)).first() is not None


def add_api_key(session: Session, user_id: int, key_hash: str) -> None:
    session.execute(insert(ApiKey).values(user_id=user_id, key_hash=key_hash))


def revoke_api_keys(session: Session, user_id: int, now: datetime) -> int:
    return cast(CursorResult, session.execute(update(ApiKey).where(ApiKey.user_id == user_id,
                                                                    ApiKey.revoked_at.is_(None))
                                              .values(revoked_at=now))).rowcount


def user_id_for_key_hash(session: Session, key_hash: str) -> int | None:
    return session.execute(
        select(ApiKey.user_id).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()


def key_generation(session: Session) -> int:
    """The database-wide count of key revocations (see `bump_key_generation`)."""
    return session.execute(select(ApiKeyGeneration.generation).where(ApiKeyGeneration.id == 1)).scalar_one()


def bump_key_generation(session: Session, now: datetime) -> None:
    """Tell every process that cached API keys to drop them: call it in the transaction that revokes."""
    session.execute(update(ApiKeyGeneration).where(ApiKeyGeneration.id == 1)
                    .values(generation=ApiKeyGeneration.generation + 1, changed_at=now))
