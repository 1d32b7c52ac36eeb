"""Writing records onto a topic as an outsider would, and reading what the worker set aside."""
from __future__ import annotations

import json
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

DLQ_TOPIC = "order-events.dlq"


def produce(bootstrap: str, records: list[tuple[bytes, bytes | None]], topic: str = "order-events") -> None:
    """(key, value) records, flushed."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def forged_command(symbol: str, market_id: int, seq: int, order_id: int, event_type: str) -> bytes:
    """A record that reads like the API's own."""
    return json.dumps({"type": event_type, "version": 1, "currency_symbol": symbol, "market_id": market_id,
                       "seq": seq, "order_id": order_id, "request_id": "forged", "order": {"id": order_id}}).encode()


class TopicReader:
    """Reads a topic from the start, polling until what is waited for has arrived (never stopping at a pause
    in fetching); `wait_for(keys)` until each key is there, `wait_until(matches, count)` until enough records
    match."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                      fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
        self.topic = topic
        self.records: list = []
        self._assigned = False

    def _assign(self) -> bool:
        partitions = self.consumer.partitions_for_topic(self.topic)
        if not partitions:
            return False
        self.consumer.assign([TopicPartition(self.topic, p) for p in partitions])
        self.consumer.seek_to_beginning()
        self._assigned = True
        return True

    def poll(self) -> None:
        if not self._assigned and not self._assign():
            time.sleep(0.2)  # the worker creates the topic at start
            return
        for records in self.consumer.poll(timeout_ms=200).values():
            self.records.extend(records)

    def wait_for(self, keys: set[bytes], worker=None, timeout_s: float = 30) -> dict[bytes, list]:
        """{key: [records]} once every key arrived; fails early if the worker process exited."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.by_key(keys)
            if all(found[key] for key in keys):
                return found
            if worker is not None and worker.process.poll() is not None:
                raise AssertionError(f"the worker exited with {worker.process.returncode}; see {worker.log_path}")
            if time.monotonic() > deadline:
                missing = sorted(key for key in keys if not found[key])
                raise AssertionError(f"{len(missing)} of {len(keys)} records not in {self.topic} after "
                                     f"{timeout_s}s, e.g. {missing[:3]}")
            self.poll()

    def wait_until(self, matches, count: int, timeout_s: float = 30) -> list:
        """The records for which `matches(record)` holds, once there are at least `count` of them."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [record for record in self.records if matches(record)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} records in {self.topic} after {timeout_s}s")
            self.poll()

    def by_key(self, keys: set[bytes]) -> dict[bytes, list]:
        found: dict[bytes, list] = {key: [] for key in keys}
        for record in self.records:
            if record.key in found:
                found[record.key].append(record)
        return found

    def close(self) -> None:
        self.consumer.close()


class DeadLetters(TopicReader):
    """The dead-letter topic, where the worker sets aside the records it cannot apply."""

    def __init__(self, bootstrap: str):
        super().__init__(bootstrap, DLQ_TOPIC)


def reason_of(record) -> str:
    return dict(record.headers)["reason"].decode()


def wait_consumed(bootstrap: str, group: str, partitions: list[TopicPartition] | None = None,
                  timeout_s: float = 60, topic: str = "order-events") -> None:
    """Until `group` has committed offsets up to the current end of each partition of `topic`: the worker
    commits only after handling a poll's records (settled, skipped or set aside), so all written so far was read."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        if partitions is None:
            partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        ends = reader.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while any((reader.committed(partition) or 0) < end for partition, end in ends.items() if end):
            assert time.monotonic() < deadline, f"group {group} did not consume {topic} in {timeout_s}s"
            time.sleep(0.05)  # between two reads of the committed offsets
    finally:
        reader.close()
