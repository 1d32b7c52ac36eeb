"""Setting records aside: an `order-events` record the worker will not apply is logged, counted and copied,
bytes unchanged, to the DLQ topic (ORDER_EVENTS_DLQ_TOPIC) with why in its headers, for a human to look at.

Headers: `reason` (the metric's label), `detail` (a sentence) and `source` (topic/partition/offset). The
copies are flushed before the worker commits the offsets of the records they came from: a crash in between
copies a record again on redelivery, never loses one.
"""
from __future__ import annotations

import logging

from kafka import KafkaProducer

from orders_app import worker_metrics
from orders_app.config import Settings
from orders_app.errors import present

log = logging.getLogger("orders_app.worker")
DETAIL_CHARS_MAX = 500
FLUSH_TIMEOUT_S = 10


class DeadLetters:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._sent: list = []  # futures of copies not confirmed yet

    def set_aside(self, record, reason: str, detail: str) -> None:
        source = f"{record.topic}/{record.partition}/{record.offset}"
        log.error("record set aside",
                  extra={"source": source, "reason": reason, "detail": detail[:DETAIL_CHARS_MAX]})
        worker_metrics.POISON_RECORDS.labels(reason).inc()
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                           client_id="orders-worker-dlq", acks="all",
                                           request_timeout_ms=self.settings.kafka_request_timeout_ms,
                                           max_request_size=16 * 1024 * 1024)
        topic = self.settings.order_events_dlq_topic
        self._sent.append(self._producer.send(topic, key=record.key, value=record.value, headers=[
            ("reason", reason.encode()), ("detail", detail[:DETAIL_CHARS_MAX].encode(errors="replace")),
            ("source", source.encode())]))

    def flush(self) -> None:
        """Raises when the copies cannot be confirmed: the caller must not commit their offsets then."""
        sent, self._sent = self._sent, []
        if sent:
            present(self._producer, "set_aside made it").flush(timeout=FLUSH_TIMEOUT_S)
            for future in sent:
                future.get(timeout=FLUSH_TIMEOUT_S)

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=FLUSH_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - leaving: whatever was not copied is redelivered to the next worker
                log.warning("DLQ producer close failed", exc_info=True)
