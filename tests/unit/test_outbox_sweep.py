"""What the outbox sweeper marks published after a batch Kafka acknowledged only in part.

A market's events must reach Kafka in sequence order, and a row Kafka acknowledged must not be sent again
just because another market's partition did not answer (that re-send doubled every ETH order of one CI
run while the broker came back). So: each market's acknowledged prefix is marked, the rest stays for the
next attempt, and the attempt still fails so the relay reconnects.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from kafka.future import Future

from orders_app.config import Settings
from orders_app.messaging import sweeper

SETTINGS = Settings.from_env({"DATABASE_URL": "mysql+pymysql://u@127.0.0.1:3306/orders",
                              "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
                              "ADMIN_TOKEN": "a-long-enough-admin-token"})


def _acked() -> Future:
    return Future().success(object())


def _failed() -> Future:
    return Future().failure(NotLeaderForPartitionError())


def _pending() -> Future:
    return Future()


class FakeSession:
    def __init__(self):
        self.commits = 0

    def commit(self):
        self.commits += 1

    def rollback(self):
        pass

    def close(self):
        pass


class FakeProducer:
    """Answers each send with the future the test chose for that row (by payload)."""

    def __init__(self, outcomes: dict[str, Future], flush_error: Exception | None = None):
        self.outcomes, self.flush_error, self.sent = outcomes, flush_error, []

    def send(self, topic, key, value):
        self.sent.append(value.decode())
        return self.outcomes[value.decode()]

    def flush(self, timeout=None):
        if self.flush_error is not None:
            raise self.flush_error


def _row(row_id: int, key: str, topic: str = "order-events") -> SimpleNamespace:
    return SimpleNamespace(id=row_id, topic=topic, message_key=key, payload=f"{key}-{row_id}")


@pytest.fixture()
def outbox_table(monkeypatch):
    """The sweeper's view of the table: rows to claim; records what it marks."""
    table = SimpleNamespace(rows=[], marked=[], session=FakeSession())
    monkeypatch.setattr(sweeper.outbox, "claim_unpublished", lambda session, **_: list(table.rows))
    monkeypatch.setattr(sweeper.outbox, "mark_published", lambda session, ids, now: table.marked.extend(ids))
    return table


def test_delivered_is_each_markets_acknowledged_prefix():
    sent = [(1, ("order-events", "BTC"), _acked()), (2, ("order-events", "ETH"), _acked()),
            (3, ("order-events", "BTC"), _failed()), (4, ("order-events", "ETH"), _acked()),
            (5, ("order-events", "BTC"), _acked()),  # after BTC's gap: re-sent later, in order
            (6, ("trade-events", "BTC"), _acked()),  # another topic is another stream
            (7, ("order-events", "ETH"), _pending())]
    assert sweeper.delivered(sent) == [1, 2, 4, 6]
    assert sweeper.delivered([]) == []


def test_a_partly_acknowledged_batch_marks_what_landed_and_still_fails(outbox_table):
    outbox_table.rows = [_row(1, "BTC"), _row(2, "ETH"), _row(3, "BTC"), _row(4, "ETH"), _row(5, "BTC")]
    producer = FakeProducer({"BTC-1": _acked(), "ETH-2": _acked(), "BTC-3": _failed(), "ETH-4": _acked(),
                             "BTC-5": _acked()})
    with pytest.raises(NotLeaderForPartitionError):
        sweeper.sweep_once(lambda: outbox_table.session, producer, SETTINGS)
    assert producer.sent == ["BTC-1", "ETH-2", "BTC-3", "ETH-4", "BTC-5"]
    assert outbox_table.marked == [1, 2, 4]
    assert outbox_table.session.commits == 1


def test_a_flush_that_times_out_marks_the_rows_acknowledged_so_far(outbox_table):
    outbox_table.rows = [_row(1, "BTC"), _row(2, "ETH"), _row(3, "ETH")]
    producer = FakeProducer({"BTC-1": _pending(), "ETH-2": _acked(), "ETH-3": _acked()},
                            flush_error=KafkaTimeoutError("flush"))
    with pytest.raises(KafkaTimeoutError):
        sweeper.sweep_once(lambda: outbox_table.session, producer, SETTINGS)
    assert outbox_table.marked == [2, 3]


def test_nothing_acknowledged_marks_nothing_and_commits_nothing(outbox_table):
    outbox_table.rows = [_row(1, "BTC"), _row(2, "ETH")]
    producer = FakeProducer({"BTC-1": _failed(), "ETH-2": _pending()})
    with pytest.raises(NotLeaderForPartitionError):
        sweeper.sweep_once(lambda: outbox_table.session, producer, SETTINGS)
    assert outbox_table.marked == [] and outbox_table.session.commits == 0


def test_a_fully_acknowledged_batch_is_marked_and_counted(outbox_table):
    outbox_table.rows = [_row(1, "BTC"), _row(2, "ETH")]
    producer = FakeProducer({"BTC-1": _acked(), "ETH-2": _acked()})
    assert sweeper.sweep_once(lambda: outbox_table.session, producer, SETTINGS) == 2
    assert outbox_table.marked == [1, 2] and outbox_table.session.commits == 1
