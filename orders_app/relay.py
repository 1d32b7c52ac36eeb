"""The outbox relay: a child process of `python consumer.py` that publishes outbox rows to Kafka.

It publishes the matching worker's `trade-events` rows as soon as they are committed, and any row the
API left unpublished for longer than OUTBOX_SWEEP_GRACE_MS. It runs in its own process so that Kafka
producing (pure-Python kafka-python, hundreds of messages per settled batch) does not compete with
matching for one interpreter. Rows are claimed with SKIP LOCKED, so any number of relays may run.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

from orders_app.messaging.producer import build_producer, close_producer
from orders_app.messaging.sweeper import sweep_once
from orders_app.messaging.topics import ensure_topics

log = logging.getLogger("orders_app.relay")
RELAY_IDLE_S = 0.05
KAFKA_RETRY_BACKOFF_S = 2.0
DATABASE_RETRY_BACKOFF_S = 2.0  # the relay started while the database was down (restarted by the worker)


def run_relay(worker_pid: int) -> None:
    """Process entry point (spawned): build the app's context, then publish until SIGTERM or until the
    worker that started it is gone (killed with SIGKILL, it could not stop us)."""
    from orders_app import create_app
    from orders_app.config import ConfigError
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    app = None
    while app is None and not stopping.is_set() and os.getppid() == worker_pid:
        try:
            app = create_app(role="worker")
        except ConfigError as error:  # the worker checked the settings: this is the database being down
            log.warning("relay cannot start yet: %s", error)
            stopping.wait(DATABASE_RETRY_BACKOFF_S)
    if app is None:
        return
    ctx = app.extensions["orders_service_context"]
    settings = ctx.settings
    producer = None
    published = 0
    log.info("relay started")
    while not stopping.is_set() and os.getppid() == worker_pid:
        if producer is None:
            try:
                ensure_topics(settings)
                producer = build_producer(settings, client_id="orders-relay")
            except Exception as error:  # noqa: BLE001 - Kafka down: rows wait in the outbox
                log.warning("relay cannot reach Kafka: %s", error)
                stopping.wait(KAFKA_RETRY_BACKOFF_S)
                continue
        try:
            count = sweep_once(ctx.session_factory, producer, settings)
        except Exception as error:  # noqa: BLE001 - Kafka or database hiccup: rows stay unpublished
            log.warning("relay publish failed: %s", error)
            close_producer(producer)
            producer = None
            stopping.wait(KAFKA_RETRY_BACKOFF_S)
            continue
        published += count
        if count < settings.outbox_sweep_batch_rows_max:
            stopping.wait(RELAY_IDLE_S)
    close_producer(producer)
    log.info("relay stopped", extra={"published": published})


def start_relay() -> multiprocessing.Process:
    process = multiprocessing.get_context("spawn").Process(target=run_relay, args=(os.getpid(),),
                                                           name="outbox-relay", daemon=False)
    process.start()
    return process
