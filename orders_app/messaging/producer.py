"""The kafka-python producer, configured once: durable (acks=all), idempotent, ordered per partition."""
from __future__ import annotations

from kafka import KafkaProducer

from orders_app.config import Settings

PRODUCER_LINGER_MS = 5


def build_producer(settings: Settings, client_id: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=PRODUCER_LINGER_MS,
        max_in_flight_requests_per_connection=1,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        max_block_ms=settings.kafka_request_timeout_ms,
        retries=3,
    )


def close_producer(producer: KafkaProducer | None) -> None:
    """Close without waiting: whatever is unsent stays in the outbox and is published again later."""
    if producer is None:
        return
    try:
        producer.close(timeout=0)
    except Exception:  # noqa: BLE001 - a producer of a broker that is gone may fail to close; nothing to do
        pass
