"""The outbox sweeper: publishes rows that stayed unpublished (Kafka was down, a process died), and
the matching worker's trade events, which only the sweeper publishes (at once, not after the grace).

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several sweepers never publish the same row at once,
sent in id order (which is sequence order within a market), flushed, then marked published in the same
transaction. A crash between send and commit republishes them: at-least-once, by design. When only part of
a batch was acknowledged (one market's partition answered, another's did not), the acknowledged rows are
marked all the same, so the next attempt re-sends only what may be missing, not a whole market twice.
"""
from __future__ import annotations

import logging

from sqlalchemy.orm import sessionmaker

from orders_app.clock import utc_now
from orders_app.config import Settings
from orders_app.repositories import outbox
from orders_app.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def delivered(sent) -> list:
    """The rows of `sent` ([(row id, (topic, message key), future)] in id order) that Kafka acknowledged and
    that no unacknowledged row of the same topic and key precedes: each market's acknowledged prefix. A row
    after a gap in its market stays unpublished, so the market's events are re-sent from the gap on, in order."""
    blocked, rows = set(), []
    for row_id, key, future in sent:
        if key in blocked:
            continue
        if future.succeeded():
            rows.append(row_id)
        else:
            blocked.add(key)
    return rows


def mark_published(session_factory: sessionmaker, event_ids: list[int]) -> None:
    with UnitOfWork(session_factory) as uow:
        outbox.mark_published(uow.session, event_ids, utc_now())
        uow.commit()


def sweep_once(session_factory: sessionmaker, producer, settings: Settings) -> int:
    """Publish one batch of stale unpublished rows; returns how many were published."""
    with UnitOfWork(session_factory) as uow:
        session = uow.session
        # OUTBOX_PUBLISHER=relay: the API does not publish, every committed row is due at once.
        stale_before = (utc_now() if settings.outbox_publisher == "relay"
                        else outbox.older_than(utc_now(), settings.outbox_sweep_grace_ms))
        rows = outbox.claim_unpublished(session, older_than=stale_before,
                                        rows_max=settings.outbox_sweep_batch_rows_max,
                                        immediate_topic=settings.trade_events_topic)
        if not rows:
            return 0
        sent, error = [], None
        try:
            for row in rows:
                sent.append((row.id, (row.topic, row.message_key),
                             producer.send(row.topic, key=row.message_key.encode(), value=row.payload.encode())))
            producer.flush(timeout=settings.kafka_request_timeout_ms / 1000)
        except Exception as raised:  # noqa: BLE001 - Kafka down or slow: mark what it acknowledged, then raise
            error = raised
        published = delivered(sent)
        if published:
            outbox.mark_published(session, published, utc_now())
            uow.commit()
        if error is None and len(published) < len(rows):
            failed = next(future for _, _, future in sent if not future.succeeded())
            error = failed.exception or TimeoutError("Kafka did not acknowledge in time")
        if error is not None:
            log.debug("outbox sweeper: %d of %d rows acknowledged before %r", len(published), len(rows), error)
            raise error
        log.debug("outbox sweeper published %d rows (ids %d..%d)", len(rows), rows[0].id, rows[-1].id)
        return len(rows)
