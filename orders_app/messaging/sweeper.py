"""The outbox sweeper: publishes rows that stayed unpublished (Kafka was down, a process died), and
the matching worker's trade events, which only the sweeper publishes (at once, not after the grace).

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several sweepers never publish the same row at once,
sent in id order (which is sequence order within a market), flushed, then marked published in the same
transaction. A crash between send and commit republishes them: at-least-once, by design.
"""
from __future__ import annotations

import logging

from sqlalchemy.orm import sessionmaker

from orders_app.config import Settings
from orders_app.repositories import outbox
from orders_app.services import utc_now
from orders_app.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


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
        futures = [producer.send(row.topic, key=row.message_key.encode(), value=row.payload.encode())
                   for row in rows]
        producer.flush(timeout=settings.kafka_request_timeout_ms / 1000)
        for future in futures:
            future.get(timeout=0)  # raises the send error, if any: nothing is marked, all retried later
        outbox.mark_published(session, [row.id for row in rows], utc_now())
        uow.commit()
        log.debug("outbox sweeper published %d rows (ids %d..%d)", len(rows), rows[0].id, rows[-1].id)
        return len(rows)
