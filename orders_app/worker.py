"""The standalone worker process (`python consumer.py`): outbox sweeping and (see issue #3) matching.

It builds the same app (config, engine, schema check) as the API and drives the same services. SIGTERM or
SIGINT lets the current step finish, then the worker leaves cleanly.
"""
from __future__ import annotations

import logging
import signal
import threading
import time

from sqlalchemy.orm import sessionmaker

from orders_app.config import Settings
from orders_app.messaging.producer import build_producer
from orders_app.messaging.sweeper import sweep_once
from orders_app.messaging.topics import ensure_topics

log = logging.getLogger("orders_app.worker")
KAFKA_RETRY_BACKOFF_S = 2.0


class Worker:
    def __init__(self, settings: Settings, session_factory: sessionmaker):
        self.settings = settings
        self.session_factory = session_factory
        self.stopping = threading.Event()
        self._producer = None

    def install_signal_handlers(self) -> None:
        def request_stop(signum, _frame):
            log.info("stop requested", extra={"signal": signal.Signals(signum).name})
            self.stopping.set()
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def _producer_or_none(self):
        if self._producer is None:
            try:
                ensure_topics(self.settings)
                self._producer = build_producer(self.settings, client_id="orders-worker")
                log.info("connected to Kafka", extra={"bootstrap": self.settings.kafka_bootstrap_servers})
            except Exception as error:  # noqa: BLE001 - any Kafka failure means "retry later"
                log.warning("Kafka unavailable: %s", error)
                return None
        return self._producer

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # noqa: BLE001
                pass

    def sweep_outbox(self) -> int:
        producer = self._producer_or_none()
        if producer is None:
            return 0
        try:
            return sweep_once(self.session_factory, producer, self.settings)
        except Exception as error:  # noqa: BLE001 - Kafka or DB hiccup: rows stay unpublished, retry
            log.warning("outbox sweep failed: %s", error)
            self._drop_producer()
            return 0

    def run(self) -> None:
        log.info("worker started", extra={"sweep_interval_ms": self.settings.outbox_sweep_interval_ms})
        interval_s = self.settings.outbox_sweep_interval_ms / 1000
        while not self.stopping.is_set():
            published = self.sweep_outbox()
            if published < self.settings.outbox_sweep_batch_rows_max:
                self.stopping.wait(interval_s if self._producer else KAFKA_RETRY_BACKOFF_S)
        self._drop_producer()
        log.info("worker stopped")
