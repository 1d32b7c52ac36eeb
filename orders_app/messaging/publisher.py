"""After-commit publishing of outbox rows from the API process, on a background thread.

A request never waits for Kafka: `publish()` queues the committed rows and returns. The thread sends
them (key = market symbol), flushes, and marks them published in one UPDATE. When Kafka is down or the
queue is full, rows simply stay unpublished and the sweeper in `consumer.py` publishes them later —
at-least-once; the matching worker ignores duplicates by sequence number.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from orders_app.config import Settings
from orders_app.messaging.producer import build_producer, close_producer
from orders_app.messaging.sweeper import delivered, mark_published
from orders_app.messaging.topics import ensure_topics

log = logging.getLogger(__name__)

QUEUE_ROWS_MAX = 10_000
BATCH_ROWS_MAX = 500
RECONNECT_BACKOFF_S = 2.0


class OutboxPublisher:
    def __init__(self, settings: Settings, session_factory, *, connect_now: bool = False):
        """`connect_now` starts the thread, which creates missing topics and connects, at once (the API's
        start-up; gunicorn builds the app in each worker process, after the fork)."""
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_ROWS_MAX)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._settings = settings
        self._session_factory = session_factory
        self._producer = None
        self._down_until = 0.0
        self._stopping = threading.Event()
        self.published_rows = 0
        if connect_now:
            self._ensure_thread()

    def publish(self, pending) -> None:
        if not pending:
            return
        self._ensure_thread()
        for row in pending:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                return  # the sweeper will publish it

    def _ensure_thread(self) -> None:
        # Started on first use, so each gunicorn worker (forked) gets its own thread and producer.
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            self._get_producer()  # creates the topics if missing; Kafka down is fine: rows wait in the outbox
        except Exception as error:  # noqa: BLE001
            log.warning("Kafka unavailable at start-up (%s); orders are still accepted", error)
            self._reset_producer()
        while not self._stopping.is_set():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < BATCH_ROWS_MAX:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(batch)
            except Exception:  # noqa: BLE001 - never let the thread die; the sweeper covers the rows
                log.exception("outbox publish failed; %d rows left for the sweeper", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()  # `drain` waits for sent rows, not only for an empty queue

    def _send(self, batch) -> None:
        if time.monotonic() < self._down_until:
            return
        sent, error = [], None
        try:
            producer = self._get_producer()  # may block for a while on a Kafka that is down
            # Rows that waited long are the sweeper's (it takes them after the grace): sending them too
            # would duplicate them. A send may take 2 request timeouts (metadata, flush) before it is
            # marked, so only rows that will still be inside the grace then are sent; checked right here.
            timeout_ms = self._settings.kafka_request_timeout_ms
            fresh_after = time.monotonic() - (self._settings.outbox_sweep_grace_ms - 2 * timeout_ms) / 1000
            for row in batch:
                if row.queued_at >= fresh_after:
                    sent.append((row.outbox_id, (row.topic, row.key),
                                 producer.send(row.topic, key=row.key.encode(), value=row.payload)))
            producer.flush(timeout=self._settings.kafka_request_timeout_ms / 1000)
        except Exception as raised:  # noqa: BLE001 - kafka errors of every kind mean "not now"
            error = raised
        published = delivered(sent)
        if error is not None or len(published) < len(sent):
            log.warning("Kafka unavailable (%s); %d rows left for the sweeper", error or "not acknowledged",
                        len(batch) - len(published))
            self._reset_producer()
        if published:
            mark_published(self._session_factory, published)
            self.published_rows += len(published)

    def _get_producer(self):
        if self._producer is None:
            ensure_topics(self._settings)
            self._producer = build_producer(self._settings, client_id="orders-api")
        return self._producer

    def _reset_producer(self) -> None:
        self._down_until = time.monotonic() + RECONNECT_BACKOFF_S
        producer, self._producer = self._producer, None
        close_producer(producer)

    def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until every queued row was sent or given up on, the batch in flight included (tests,
        graceful shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._reset_producer()
