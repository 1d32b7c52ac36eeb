"""The outbox relay: a child process of `python consumer.py` that publishes outbox rows to Kafka.

With OUTBOX_PUBLISHER=relay (the default) it publishes every committed row — the API's `order-events`
and the matching worker's `trade-events` — polling every OUTBOX_RELAY_POLL_MS (25 ms), in id order (which
is sequence order within a market), in batches, from a saved position (messaging/relay_position.py); the
API never talks to Kafka. With OUTBOX_PUBLISHER=api the API publishes its rows after commit and the relay
only takes those left unpublished for OUTBOX_SWEEP_GRACE_MS. It runs
in its own process so that Kafka producing (pure-Python kafka-python) does not compete with matching for
one interpreter. One relay publishes at a time — a named database lock, held on a connection it keeps
open, elects it; the relays of other workers stand by — so a market's events reach Kafka in order.
With OUTBOX_PUBLISHER=api, rows are also claimed with SKIP LOCKED, so even two relays at once never publish
the same row together.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.process import BaseProcess

from sqlalchemy import text

from orders_app.messaging.producer import build_producer, close_producer
from orders_app.messaging.relay_position import PositionPublisher
from orders_app.messaging.sweeper import sweep_once
from orders_app.messaging.topics import ensure_topics

log = logging.getLogger("orders_app.relay")
RELAY_IDLE_S = 0.05
LEADERSHIP_RETRY_S = 1.0  # a standby relay tries to take over this often
LEADERSHIP_CHECK_S = 1.0
KAFKA_RETRY_BACKOFF_S = 2.0
DATABASE_RETRY_BACKOFF_S = 2.0  # the relay started while the database was down (restarted by the worker)


def run_relay(worker_pid: int) -> None:
    """Process entry point (spawned): build the app's context, then publish until SIGTERM or until the
    worker that started it is gone (killed with SIGKILL, it could not stop us)."""
    from orders_app.bootstrap import bootstrap
    from orders_app.config import ConfigError, Settings
    from orders_app.logs import configure_logging
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    runtime = None
    while runtime is None and not stopping.is_set() and os.getppid() == worker_pid:
        try:
            settings = Settings.from_env(needs_admin_token=False)
            configure_logging(settings.log_level)
            runtime = bootstrap(settings, role="relay")
        except ConfigError as error:  # the worker checked the settings: this is the database being down
            log.warning("relay cannot start yet: %s", error)
            stopping.wait(DATABASE_RETRY_BACKOFF_S)
    if runtime is None:
        return
    ctx = runtime.ctx
    settings = ctx.settings
    producer = None
    position: PositionPublisher | None = None  # OUTBOX_PUBLISHER=relay: read when elected
    published = 0
    leadership = _Leadership(ctx.session_factory)
    log.info("relay started")
    while not stopping.is_set() and os.getppid() == worker_pid:
        if not leadership.held():
            position = None  # another relay may publish meanwhile: start again from the saved position
            stopping.wait(LEADERSHIP_RETRY_S)
            continue
        if producer is None:
            try:
                ensure_topics(settings)
                producer = build_producer(settings, client_id="orders-relay")
            except Exception as error:  # noqa: BLE001 - Kafka down: rows wait in the outbox
                log.warning("relay cannot reach Kafka: %s", error)
                stopping.wait(KAFKA_RETRY_BACKOFF_S)
                continue
        try:
            if settings.outbox_publisher == "relay":
                if position is None:
                    position = PositionPublisher(ctx.session_factory, settings)
                count = position.sweep(producer)
            else:
                count = sweep_once(ctx.session_factory, producer, settings)
        except Exception as error:  # noqa: BLE001 - Kafka or database hiccup: rows stay unpublished
            log.warning("relay publish failed: %s", error)
            close_producer(producer)
            producer = None
            stopping.wait(KAFKA_RETRY_BACKOFF_S)
            continue
        published += count
        if count < settings.outbox_sweep_batch_rows_max:
            # with OUTBOX_PUBLISHER=relay, order events wait for this poll: a shorter one costs every process
            # a round per poll (docs/performance.md, levers)
            idle_s = RELAY_IDLE_S if settings.outbox_publisher == "api" else settings.outbox_relay_poll_ms / 1000
            stopping.wait(idle_s)
    close_producer(producer)
    leadership.release()
    log.info("relay stopped", extra={"published": published})


class _Leadership:
    """`GET_LOCK` on a connection of its own, checked once a second; lost with the connection."""

    LOCK_NAME = "orders_outbox_relay"

    def __init__(self, session_factory):
        self._engine = session_factory.kw["bind"]
        self._connection = None
        self._checked_at = 0.0

    def held(self) -> bool:
        now = time.monotonic()
        if self._connection is not None and now - self._checked_at < LEADERSHIP_CHECK_S:
            return True
        try:
            if self._connection is None:
                connection = self._engine.connect()
                if connection.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.LOCK_NAME}).scalar() != 1:
                    connection.close()
                    return False
                self._connection = connection
                log.info("relay publishing (elected)")
            else:
                self._connection.execute(text("SELECT 1"))
            self._checked_at = now
            return True
        except Exception as error:  # noqa: BLE001 - the database went away: the lock went with it
            log.warning("relay lost its election connection: %s", error)
            self.release()
            return False

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()  # closing the session releases the named lock
            except Exception:  # noqa: BLE001
                pass


def start_relay() -> BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=run_relay, args=(os.getpid(),),
                                                           name="outbox-relay", daemon=False)
    process.start()
    return process
