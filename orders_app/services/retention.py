"""Outbox retention: the outbox grows by one row per command and trade; once a row is published and (for a
market command) applied by the worker, the orders, trades and ledger tables hold everything it said, and
Kafka holds the message for its own retention. Operators prune it with `python -m orders_app.cli
prune-outbox`, in short transactions so the API and the worker never wait long on it."""
from __future__ import annotations

from datetime import datetime

from orders_app.repositories import outbox
from orders_app.services import ServiceContext

PRUNE_CHUNK_ROWS = 5_000


def prune_outbox(ctx: ServiceContext, published_before: datetime) -> int:
    """Delete every prunable row published before `published_before`, a chunk per transaction."""
    chunk_rows, deleted = PRUNE_CHUNK_ROWS, 0
    while True:
        with ctx.uow() as uow:
            count = outbox.prune_published(uow.session, before=published_before, rows_max=chunk_rows)
            uow.commit()
        deleted += count
        if count < chunk_rows:
            return deleted
