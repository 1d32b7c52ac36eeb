"""The stream process's one Kafka consumer, on a thread of its own, feeding the asyncio loop.

No consumer group: it assigns itself every partition of the topics it reads and starts at their end,
so every stream process sees every event and none disturbs another. Records are decoded here and handed
to `Hub.dispatch` on the loop, one poll at a time (the end may fall inside the last record batch, so a few
events from before the start can come first: the hub skips what it already has). When the broker lost
its topics (a memory broker that restarted: a partition's end went back), it reads the new topics from
their beginning and asks the hub to read every book again; after any other failure it goes on where it
left off.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from decimal import Decimal

from kafka import KafkaConsumer, TopicPartition

from orders_app.messaging.topics import ensure_topics

log = logging.getLogger("orders_app.stream.feed")
POLL_TIMEOUT_MS = 100
POLL_RECORDS_MAX = 2000
FETCH_MAX_WAIT_MS = 20  # the broker holds an empty fetch this long: push lag when events are rare
RESTART_CHECK_S = 2.0
RETRY_BACKOFF_S = 1.0
API_SOURCE, WORKER_SOURCE = 0, 1  # at one seq, the worker's view of an order is the newer


class MarketDirectory:
    """Market names by base symbol and by name, re-read from the database when an unknown one appears
    (at most once a second)."""

    RELOAD_INTERVAL_S = 1.0

    def __init__(self, load):
        self._load, self._lock = load, threading.Lock()
        self._by_name: dict = load()
        self._loaded_at = time.monotonic()

    def get(self, name: str):
        """The market called `name`; an unknown name waits for the next allowed reload (a market added
        a moment ago is found; a stream of bad names costs one query a second)."""
        spec = self._by_name.get(name)
        if spec is None and self._reload(wait=True):
            spec = self._by_name.get(name)
        return spec

    def name_of_symbol(self, symbol: str) -> str | None:
        for attempt in range(2):
            for name, spec in self._by_name.items():
                if spec.symbol == symbol:
                    return name
            if attempt == 0 and not self._reload():
                return None
        return None

    def _reload(self, wait: bool = False) -> bool:
        with self._lock:
            early_s = self.RELOAD_INTERVAL_S - (time.monotonic() - self._loaded_at)
            if early_s > 0 and not wait:
                return False
            if early_s > 0:
                time.sleep(early_s)
            self._by_name, self._loaded_at = self._load(), time.monotonic()
            return True


class BrokerRestarted(RuntimeError):
    """A partition's end went back: the broker made its logs anew (a memory broker that restarted)."""


class Feed(threading.Thread):
    def __init__(self, settings, directory: MarketDirectory, deliver, on_restart):
        super().__init__(name="stream-feed", daemon=True)
        self.settings, self.directory = settings, directory
        self.deliver, self.on_restart = deliver, on_restart
        self.topics = (settings.book_events_topic, settings.trade_events_topic, settings.order_updates_topic,
                       settings.order_events_topic)
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.received = 0
        self.ends: dict[TopicPartition, int] = {}  # the partitions' ends seen last
        self.positions: dict[TopicPartition, int] = {}  # the next offset to read, per partition read from
        # A restart seen while following: the next connection starts the new logs from their beginning and
        # resnapshots, even if by then they have outgrown the old ends (ends alone would no longer tell).
        self.restart_seen = False

    def run(self) -> None:
        while not self.stopping.is_set():
            consumer = None
            try:
                consumer, made_anew = self._connect()
                if made_anew:
                    self.on_restart()
                    self.restart_seen = False
                self.connected.set()
                self._follow(consumer)
            except Exception as error:  # noqa: BLE001 - broker away or topics gone: start over
                self.restart_seen = self.restart_seen or isinstance(error, BrokerRestarted)
                log.warning("stream feed restarting: %s", error)
                self.connected.clear()
                self.stopping.wait(RETRY_BACKOFF_S)
            finally:
                if consumer is not None:
                    consumer.close(autocommit=False)

    def _connect(self) -> tuple[KafkaConsumer, bool]:
        """A consumer of every partition: at their end the first time; after that where it left off, or at
        the beginning of logs made anew (a partition whose end went back: the broker restarted), which the
        second value tells."""
        ensure_topics(self.settings)
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, client_id="orders-stream", group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_poll_records=POLL_RECORDS_MAX, request_timeout_ms=self.settings.kafka_request_timeout_ms + 1000)
        try:
            partitions = []
            for topic in self.topics:
                numbers = consumer.partitions_for_topic(topic)
                if not numbers:
                    raise RuntimeError(f"topic {topic} has no partitions yet")
                partitions += [TopicPartition(topic, n) for n in sorted(numbers)]
            consumer.assign(partitions)
            ends = consumer.end_offsets(partitions)
            made_anew = bool(self.ends) and (self.restart_seen or self._went_back(ends))
            if not self.ends:
                consumer.seek_to_end(*partitions)
            elif made_anew:
                consumer.seek_to_beginning(*partitions)  # all a new log holds is news
                self.positions.clear()
            for partition in partitions:
                if not made_anew and partition in self.positions:
                    consumer.seek(partition, self.positions[partition])
                # resolved now: events after this point are ours (and a reconnection resumes here)
                self.positions[partition] = consumer.position(partition)
        except Exception:
            consumer.close(autocommit=False)
            raise
        self.ends = ends
        return consumer, made_anew

    def _went_back(self, ends: dict) -> bool:
        """A partition's end only grows; one that went back is a log made anew (compared with the end seen
        before, not with our position: a Tansu broker reports the end as the last batch's base + 1)."""
        return any(ends.get(p) is None or ends[p] < end for p, end in self.ends.items())

    def _follow(self, consumer: KafkaConsumer) -> None:
        checked_at, positions = time.monotonic(), self.positions
        while not self.stopping.is_set():
            polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=POLL_RECORDS_MAX)
            batch = []
            for partition, records in polled.items():
                positions[partition] = records[-1].offset + 1
                batch += records
            # Partitions come in no particular order; the relay sent in commit order, which the records'
            # time stamps keep (to the millisecond; the hub drops an older state of an order that comes late).
            batch.sort(key=lambda record: record.timestamp)
            events = [event for record in batch for event in self._decode(record)]
            if events:
                self.received += len(events)
                self.deliver(events)
            if time.monotonic() - checked_at > RESTART_CHECK_S:
                checked_at = time.monotonic()
                latest = consumer.end_offsets(list(consumer.assignment()))
                if self._went_back(latest):
                    raise BrokerRestarted("the broker lost its topics (restarted)")
                self.ends = latest

    def _decode(self, record) -> list[tuple]:
        """(kind, market, ...) tuples; a record that is not what the worker writes is skipped."""
        try:
            data = json.loads(record.value)
            topic, settings = record.topic, self.settings
            if topic == settings.book_events_topic and data.get("type") == "delta":
                return [("delta", data["market"], data)]
            if topic == settings.order_updates_topic and data.get("type") == "orders":
                return [("order", data["market"], update["user_id"], data["seq"], WORKER_SOURCE, update["order"])
                        for update in data["orders"]]
            if topic == settings.trade_events_topic and data.get("type") == "trade":
                market = self.directory.name_of_symbol(data["currency_symbol"])
                if market is None:
                    return []
                data["market"] = market
                data.pop("version", None)
                Decimal(data["price"]), Decimal(data["quantity"])  # noqa: B018 - refuse a record we cannot read
                return [("trade", market, data)]
            if topic == settings.order_events_topic:
                market = self.directory.name_of_symbol(data["currency_symbol"])
                order = data["order"]
                if market is None or not isinstance(order, dict):
                    return []
                order.setdefault("market", market)
                return [("order", market, order["user_id"], data["seq"], API_SOURCE, order)]
        except Exception as error:  # noqa: BLE001 - one unreadable record must not stop the streams
            log.warning("stream skipped a record of %s: %s", record.topic, error)
        return []
