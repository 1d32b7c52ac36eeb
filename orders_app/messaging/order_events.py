"""The worker's side of `order-events`: a consumer-group member with manual offsets.

`OrderEventsConsumer.connect(settings)` creates missing topics, joins the group and subscribes; the worker
then polls, commits after its database commits, and asks which markets its partitions hold (a market's key
picks its partition the way the producer does, murmur2). Every Kafka option is spelled out here with why.
"""
from __future__ import annotations

import logging

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.partitioner.default import murmur2

from orders_app.config import Settings
from orders_app.messaging.topics import ensure_topics

log = logging.getLogger("orders_app.worker")
POLL_RECORDS_MAX = 1000
CLOSE_TIMEOUT_MS = 3000  # leaving the group is a courtesy: offsets are already committed
LAG_POSITION_TIMEOUT_MS = 100


def partition_of(key: str, partition_count: int) -> int:
    """The partition a message keyed `key` goes to (kafka-python's default partitioner)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partition_count


class _Assignment(ConsumerRebalanceListener):
    def __init__(self, consumer: "OrderEventsConsumer"):
        self.consumer = consumer

    def on_partitions_revoked(self, revoked):
        log.info("partitions revoked", extra={"partitions": sorted(tp.partition for tp in revoked)})

    def on_partitions_assigned(self, assigned):
        self.consumer.assigned_partitions = {tp.partition for tp in assigned}
        log.info("partitions assigned", extra={"partitions": sorted(self.consumer.assigned_partitions)})


class OrderEventsConsumer:
    def __init__(self, kafka: KafkaConsumer, partition_count: int | None):
        self._kafka = kafka
        self.partition_count = partition_count
        self.assigned_partitions: set[int] | None = None  # None until the group assigned some

    @classmethod
    def connect(cls, settings: Settings) -> "OrderEventsConsumer":
        """Raises whatever kafka-python raises when the broker cannot be reached."""
        ensure_topics(settings)
        kafka = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.kafka_consumer_group,
            client_id="orders-worker",
            enable_auto_commit=False,  # offsets are committed only after the database commit
            auto_offset_reset="earliest",
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            max_poll_records=POLL_RECORDS_MAX,
            # The broker may hold a fetch this long waiting for data (kafka-python: 500 ms); 100 ms keeps an
            # idle worker at ~4 % of a core (20 ms: 11 %) and adds little lag.
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            # A group join can take up to the session timeout on some brokers (Tansu: ~half of it), and the
            # JoinGroup request must outlive it: with kafka-python's 45 s default session and a request
            # timeout below the join time, the join was retried forever and every command reached the worker
            # through the database catch-up instead (~1 s later).
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 3),
            request_timeout_ms=max(settings.kafka_request_timeout_ms,
                                   settings.kafka_max_poll_interval_ms + settings.kafka_session_timeout_ms + 5000),
        )
        partitions = kafka.partitions_for_topic(settings.order_events_topic)
        consumer = cls(kafka, len(partitions) if partitions else None)
        kafka.subscribe([settings.order_events_topic], listener=_Assignment(consumer))
        log.info("consuming", extra={"topic": settings.order_events_topic, "group": settings.kafka_consumer_group})
        return consumer

    def owns(self, key: str) -> bool:
        """Whether this member holds `key`'s partition; every key while it holds no assignment."""
        if self.assigned_partitions is None or not self.partition_count:
            return True
        return partition_of(key, self.partition_count) in self.assigned_partitions

    def poll(self, timeout_ms: int) -> list:
        """The records of one poll, all partitions together."""
        polled = self._kafka.poll(timeout_ms=timeout_ms, max_records=POLL_RECORDS_MAX)
        return [record for records in polled.values() for record in records]

    def commit(self) -> None:
        self._kafka.commit()

    def lags(self) -> dict[int, int]:
        """{partition: records behind its high-water mark}, from the last fetch response (no request)."""
        lags = {}
        for partition in self._kafka.assignment():
            high_water = self._kafka.highwater(partition)
            if high_water is not None:
                position = self._kafka.position(partition, timeout_ms=LAG_POSITION_TIMEOUT_MS)
                lags[partition.partition] = max(0, high_water - position)
        return lags

    def close(self) -> None:
        self._kafka.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
