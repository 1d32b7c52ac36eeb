"""The transactional outbox: events written with the change they describe, published after commit."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple, cast
from uuid import uuid4

from sqlalchemy import CursorResult, bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from orders_app.errors import ACCESS_DENIED_CODES, database_error_code, present
from orders_app.models import OutboxEvent
from orders_app.repositories.bulk import ids_by_market_seq, json_rows, json_table


def add(session: Session, *, topic: str, key: str, event_type: str, payload: str, created_at: datetime,
        market_id: int | None = None, seq: int | None = None, order_id: int | None = None) -> int:
    result = cast(CursorResult, session.execute(insert(OutboxEvent).values(
        topic=topic, message_key=key, market_id=market_id, seq=seq, order_id=order_id, event_type=event_type,
        payload=payload, created_at=created_at)))
    return int(present(result.inserted_primary_key, "an insert has a key")[0])


_INSERT_MARKET_EVENTS = text(
    "INSERT INTO outbox (topic, message_key, market_id, seq, order_id, event_type, payload, created_at) "
    "SELECT :topic, j.message_key, j.market_id, j.seq, j.order_id, j.event_type, j.payload, :now FROM "
    + json_table("message_key VARCHAR(64)", "market_id INT", "seq BIGINT", "order_id BIGINT",
                 "event_type VARCHAR(32)", "payload LONGTEXT")
    + " ORDER BY j.ord")


_INSERT_EVENTS = text(
    "INSERT INTO outbox (topic, message_key, event_type, payload, created_at) "
    "SELECT j.topic, j.message_key, j.event_type, j.payload, :now FROM "
    + json_table("topic VARCHAR(255)", "message_key VARCHAR(64)", "event_type VARCHAR(32)", "payload LONGTEXT")
    + " ORDER BY j.ord")


def add_events(session: Session, *, rows: list[list], created_at: datetime) -> None:
    """Unsequenced events [topic, key, event_type, payload] of any topics in one statement, in the order
    given (the relay publishes in id order)."""
    if rows:
        session.execute(_INSERT_EVENTS, {"now": created_at, "rows": json_rows(rows)})


_MARKET_EVENT_IDS = text("SELECT id, seq FROM outbox WHERE market_id = :market_id AND seq BETWEEN :low AND :high")


def add_market_events(session: Session, *, topic: str, rows: list[list], created_at: datetime,
                      ids_wanted: bool = True) -> dict[tuple[int, int], int]:
    """Sequenced market events [key, market_id, seq, order_id, event_type, payload] in one statement;
    returns {(market_id, seq): outbox id} (empty unless `ids_wanted`)."""
    if not rows:
        return {}
    session.execute(_INSERT_MARKET_EVENTS, {"topic": topic, "now": created_at, "rows": json_rows(rows)})
    if not ids_wanted:
        return {}
    return ids_by_market_seq(session, _MARKET_EVENT_IDS, ((row[1], row[2]) for row in rows))


_PUBLISHED_THROUGH = "(SELECT published_through FROM outbox_relay_position WHERE id = 1)"


def published_through(session: Session) -> int:
    """The relay's position: every row at or below it is published (or was never committed)."""
    return int(session.execute(text(_PUBLISHED_THROUGH[1:-1])).scalar_one())


def save_published_through(session: Session, through: int, now: datetime) -> None:
    session.execute(text("UPDATE outbox_relay_position SET published_through = :through, updated_at = :now "
                         "WHERE id = 1 AND published_through < :through"), {"through": through, "now": now})


_ROWS_AFTER = text("SELECT id, topic, message_key, payload FROM outbox WHERE id > :after ORDER BY id LIMIT :n")
_ROWS_WITH_IDS = text("SELECT id, topic, message_key, payload FROM outbox WHERE id IN :ids ORDER BY id"
                      ).bindparams(bindparam("ids", expanding=True))


def rows_after(session: Session, after_id: int, rows_max: int) -> list:
    """Committed rows above `after_id`, in id order (a primary-key range: no index but the table's own)."""
    return list(session.execute(_ROWS_AFTER, {"after": after_id, "n": rows_max}))


def rows_with_ids(session: Session, ids: list[int]) -> list:
    return list(session.execute(_ROWS_WITH_IDS, {"ids": ids})) if ids else []


class TransactionListing(NamedTuple):
    writers: frozenset[int]  # the InnoDB ids of other connections' transactions that have written rows
    fresh: bool  # made for this statement, not the server's copy of an earlier listing


def running_transactions(session: Session) -> TransactionListing | None:
    """The transactions running now, from `information_schema.INNODB_TRX`; None when the account may not list
    them (it lacks the PROCESS privilege). Call it within a transaction that has read an InnoDB table.

    The server answers from a cache that it refreshes only when nobody has read it for 0.1 s, so a listing
    may be any age: one is fresh when it shows this statement (marked by a unique comment) as our own
    transaction's query. Only writers count: a transaction whose inserted row may still be committed has
    modified rows, while read-only ones are all listed with trx_id 0 and would match each other."""
    marker = uuid4().hex
    try:
        rows = session.execute(text(
            f"SELECT /* relay listing {marker} */ trx_id, trx_mysql_thread_id = CONNECTION_ID() AS mine, "
            "trx_query, trx_rows_modified FROM information_schema.INNODB_TRX")).all()
    except DBAPIError as error:
        if database_error_code(error) in ACCESS_DENIED_CODES:
            return None
        raise
    return TransactionListing(
        writers=frozenset(int(row.trx_id) for row in rows if not row.mine and row.trx_rows_modified > 0),
        fresh=any(row.mine and marker in (row.trx_query or "") for row in rows))


def mark_published(session: Session, event_ids: list[int], now: datetime) -> None:
    session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(event_ids), OutboxEvent.published_at.is_(None))
                    .values(published_at=now))


def claim_unpublished(session: Session, *, older_than: datetime, rows_max: int,
                      immediate_topic: str | None = None) -> list[OutboxEvent]:
    """Unpublished events created before `older_than` (or of `immediate_topic`, which nobody else
    publishes), locked (SKIP LOCKED: two sweepers never take the same row), in id order, which is
    sequence order within a market, so each market's events reach Kafka in sequence."""
    due = OutboxEvent.created_at < older_than
    if immediate_topic is not None:
        due = or_(due, OutboxEvent.topic == immediate_topic)
    return list(session.execute(
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.id > text(_PUBLISHED_THROUGH), due)
        .order_by(OutboxEvent.id)
        .limit(rows_max)
        .with_for_update(skip_locked=True)).scalars())


def unpublished_count(session: Session, market_id: int | None = None) -> int:
    statement = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None),
                                                                    OutboxEvent.id > text(_PUBLISHED_THROUGH))
    if market_id is not None:
        statement = statement.where(OutboxEvent.market_id == market_id)
    return int(session.execute(statement).scalar_one())


def older_than(now: datetime, grace_ms: int) -> datetime:
    return now - timedelta(milliseconds=grace_ms)


_APPLIED = "(seq IS NULL OR seq <= (SELECT ms.last_seq FROM market_state ms WHERE ms.market_id = outbox.market_id))"
_PRUNE_BELOW_POSITION = text(
    f"DELETE FROM outbox WHERE id <= {_PUBLISHED_THROUGH} AND created_at < :before AND {_APPLIED}"
    " ORDER BY id LIMIT :rows_max")
_PRUNE_STAMPED = text(
    f"DELETE FROM outbox WHERE published_at < :before AND {_APPLIED} ORDER BY published_at, id LIMIT :rows_max")


def prune_published(session: Session, *, before: datetime, rows_max: int) -> int:
    """Delete up to `rows_max` rows published before `before` that nobody needs any more: a sequenced
    command only once its market's worker applied it (until then it is the command log the worker reads
    gaps from); an unsequenced event (a trade) once published. A row below the relay's position counts
    from its creation (it was published within moments); a row the API's publisher stamped, from the
    stamp. Returns how many were deleted."""
    params = {"before": before, "rows_max": rows_max}
    deleted = cast(CursorResult, session.execute(_PRUNE_BELOW_POSITION, params)).rowcount
    if deleted < rows_max:
        params["rows_max"] = rows_max - deleted
        deleted += cast(CursorResult, session.execute(_PRUNE_STAMPED, params)).rowcount
    return deleted
