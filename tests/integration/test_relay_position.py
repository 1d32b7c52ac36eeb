"""The relay's position against real MariaDB transactions: a row committed late, below ids already
published, is still published; an id whose transaction rolled back is closed once that transaction ended.
The producer is a recorder: what is tested is what the relay reads and decides, not Kafka."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text

from orders_app.config import Settings
from orders_app.messaging.relay_position import PositionPublisher, RelayPosition
from orders_app.repositories import outbox
from tests.support.names import unique_name
from tests.support.waits import wait_until

RELAY_POLL_S = Settings.outbox_relay_poll_ms / 1000  # the relay's own pace
INSERT = text("INSERT INTO outbox (topic, message_key, event_type, payload, created_at) "
              "VALUES (:topic, 'k', 'test', :payload, NOW(3))")


class RecordingProducer:
    def __init__(self, topic: str):
        self.topic, self.sent = topic, []

    def send(self, topic, key, value):
        if topic == self.topic:
            self.sent.append(value.decode())
        return SimpleNamespace(succeeded=lambda: True, exception=None)

    def flush(self, timeout=None):
        pass


@pytest.fixture()
def relay(ctx):
    """A publisher positioned at the table's end (rows of other tests are not its business)."""
    with ctx.uow() as uow:
        end = uow.session.execute(text("SELECT COALESCE(MAX(id), 0) FROM outbox")).scalar_one()
    publisher = PositionPublisher(ctx.session_factory, ctx.settings)
    publisher.position = RelayPosition(highest=end)
    return publisher


def _insert(connection, topic: str, payload: str) -> int:
    connection.execute(INSERT, {"topic": topic, "payload": payload})
    return connection.execute(text("SELECT LAST_INSERT_ID()")).scalar_one()


@pytest.mark.parametrize("slow_commits", [True, False], ids=["late_row", "rolled_back"])
def test_a_row_committed_after_a_later_one_is_published_and_a_rolled_back_id_does_not_hold_the_position(
        ctx, relay, slow_commits):
    topic = unique_name("relay-test")
    producer = RecordingProducer(topic)
    engine = ctx.session_factory.kw["bind"]
    with engine.connect() as slow, engine.connect() as fast:
        slow_id = _insert(slow, topic, "slow")  # its transaction stays open
        fast_id = _insert(fast, topic, "fast")
        fast.commit()
        assert fast_id > slow_id
        with ctx.uow() as uow:
            running = outbox.running_transactions(uow.session)
        assert running, "the dev stack's account lists transactions (PROCESS)"

        relay.sweep(producer)
        relay.sweep(producer)
        assert producer.sent == ["fast"]
        assert relay.position.through < slow_id and slow_id in relay.position.gaps

        if slow_commits:
            slow.commit()
        else:
            slow.rollback()
        # a gap takes its owners from a listing made a moment after it was seen
        wait_until(lambda: relay.sweep(producer) is not None and not relay.position.gaps, timeout_s=10)
    assert producer.sent == (["fast", "slow"] if slow_commits else ["fast"])
    assert relay.position.gaps == {} and relay.position.through >= fast_id


def test_the_position_is_saved_and_a_new_relay_starts_from_it(ctx, relay):
    topic = unique_name("relay-test")
    producer = RecordingProducer(topic)
    with ctx.uow() as uow:
        _insert(uow.session, topic, "one")
        uow.commit()
    relay._saved_at -= 10  # as if the last save was long ago
    relay.sweep(producer)
    with ctx.uow() as uow:
        saved = outbox.published_through(uow.session)
        backlog = outbox.unpublished_count(uow.session)
    assert saved == relay.position.through
    assert PositionPublisher(ctx.session_factory, ctx.settings).position.highest == saved
    assert backlog == 0


def test_a_late_row_is_published_while_the_relay_polls_transactions_faster_than_the_server_refreshes_them(
        ctx, relay):
    """MariaDB refreshes its INNODB_TRX cache only when nobody read it for 0.1 s: a relay listing transactions at
    every 25 ms sweep reads the same old listing for as long as it keeps doing so. A transaction that began
    after that listing must still hold its gap open."""
    topic = unique_name("relay-test")
    producer = RecordingProducer(topic)
    engine = ctx.session_factory.kw["bind"]
    with engine.connect() as rolled_back, engine.connect() as slow, engine.connect() as fast:
        _insert(rolled_back, topic, "rolled back")
        _insert(fast, topic, "first")
        fast.commit()
        rolled_back.rollback()
        relay.sweep(producer)  # sees the rolled-back id: a gap, transactions are listed from now on
        relay.sweep(producer)
        slow_id = _insert(slow, topic, "slow")  # begins after the server's listing was made
        _insert(fast, topic, "second")
        fast.commit()

        def slow_gap_decided() -> bool:
            relay.sweep(producer)
            gap = relay.position.gaps.get(slow_id)
            return gap is None or gap.owners is not None
        wait_until(slow_gap_decided, timeout_s=10, poll_s=RELAY_POLL_S)
        slow.commit()
        wait_until(lambda: relay.sweep(producer) is not None and not relay.position.gaps, timeout_s=10,
                   poll_s=RELAY_POLL_S, what=lambda: f"gaps {relay.position.gaps} sent {producer.sent}")
    assert producer.sent == ["first", "second", "slow"]
