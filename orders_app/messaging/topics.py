"""Kafka topic administration: create the project's topics when missing."""
from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from orders_app.config import Settings

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings) -> None:
    """Create `order-events`, `trade-events`, the set-aside records' `order-events.dlq` and the streams'
    `book-events` and `order-updates` if the broker
    lacks them (a memory broker that restarted has none). Raises a kafka error when the broker cannot be
    reached."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                             request_timeout_ms=settings.kafka_request_timeout_ms,
                             client_id="orders-admin")
    try:
        existing = set(admin.list_topics())
        names = (settings.order_events_topic, settings.trade_events_topic, settings.order_events_dlq_topic,
                 settings.book_events_topic, settings.order_updates_topic)
        wanted = [NewTopic(name=name, num_partitions=settings.kafka_topic_partitions, replication_factor=1)
                  for name in names if name not in existing]
        if wanted:
            try:
                admin.create_topics(wanted, timeout_ms=settings.kafka_request_timeout_ms)
                log.info("created topics %s", [t.name for t in wanted])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
