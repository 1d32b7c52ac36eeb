"""The relay's position and gaps (messaging/relay_position.py) against a simulated database: transactions
take ids, commit or roll back in any order, also between the relay's own statements, and the relay must
publish every committed row and never save a position above an id that may still be committed."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders_app.config import Settings
from orders_app.messaging import relay_position
from orders_app.messaging.relay_position import PositionPublisher, RelayPosition
from orders_app.repositories import outbox

SETTINGS = Settings.from_env({"DATABASE_URL": "mysql+pymysql://u@127.0.0.1:3306/orders",
                              "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}, needs_admin_token=False)


class World:
    """Transactions taking outbox ids (InnoDB may also skip ids: a multi-row insert reserves more than it
    uses), committing or rolling back; what the relay's statements see; the position it saved."""

    def __init__(self, sees_transactions: bool = True):
        self.next_id, self.next_trx = 1, 1
        self.open: dict[int, list[int]] = {}  # trx id -> the ids it took
        self.committed: set[int] = set()
        self.saved = 0
        self.sees_transactions = sees_transactions
        self.between_statements: list[tuple] = []  # actions run before each of the relay's statements
        self.clock = 0.0
        self.cache, self.last_read = frozenset(), float("-inf")

    def listing(self) -> outbox.TransactionListing:
        """What INNODB_TRX shows: the server's cache, refreshed on a read only after 0.1 s without one."""
        fresh = self.clock - self.last_read > 0.1
        if fresh:
            self.cache = frozenset(self.open)
        self.last_read = self.clock
        return outbox.TransactionListing(writers=self.cache, fresh=fresh)

    def begin(self, rows: int, skipped: int) -> None:
        ids = list(range(self.next_id, self.next_id + rows))
        self.next_id += rows + skipped
        self.open[self.next_trx] = ids
        self.next_trx += 1

    def end(self, which: int, commit: bool) -> None:
        if self.open:
            trx = sorted(self.open)[which % len(self.open)]
            ids = self.open.pop(trx)
            if commit:
                self.committed.update(ids)

    def statement(self) -> None:
        """Before each of the relay's statements, the next interleaved action (if any) happens."""
        if self.between_statements:
            action, *args = self.between_statements.pop(0)
            getattr(self, action)(*args)

    def noop(self) -> None:
        pass

    def many(self, *actions: tuple) -> None:
        for action, *args in actions:
            getattr(self, action)(*args)

    def may_still_commit(self) -> set[int]:
        return {i for ids in self.open.values() for i in ids}


class Producer:
    def __init__(self):
        self.sent: list[int] = []

    def send(self, topic, key, value):
        self.sent.append(int(value))
        return SimpleNamespace(succeeded=lambda: True, exception=None)

    def flush(self, timeout=None):
        pass


class FakeSession:
    def commit(self):
        pass

    def rollback(self):
        pass

    def close(self):
        pass


def _row(row_id: int) -> SimpleNamespace:
    return SimpleNamespace(id=row_id, topic="t", message_key="k", payload=str(row_id))


@pytest.fixture()
def patch_world(monkeypatch):
    def install(world: World) -> None:
        fake = relay_position.outbox

        def rows_after(session, after, rows_max):
            world.statement()
            return [_row(i) for i in sorted(world.committed) if i > after][:rows_max]

        def rows_with_ids(session, ids):
            world.statement()
            return [_row(i) for i in sorted(world.committed & set(ids))]

        def running(session):
            world.statement()
            return world.listing() if world.sees_transactions else None

        def save(session, through, now):
            world.saved = max(world.saved, through)

        monkeypatch.setattr(fake, "rows_after", rows_after)
        monkeypatch.setattr(fake, "rows_with_ids", rows_with_ids)
        monkeypatch.setattr(fake, "running_transactions", running)
        monkeypatch.setattr(fake, "save_published_through", save)
        monkeypatch.setattr(fake, "published_through", lambda session: world.saved)
        monkeypatch.setattr(relay_position.time, "monotonic", lambda: world.clock)
    return install


ACTION = st.one_of(
    st.tuples(st.just("begin"), st.integers(1, 4), st.integers(0, 2)),
    st.tuples(st.just("end"), st.integers(0, 10), st.booleans()),
    st.tuples(st.just("noop")),
)
STEP = st.one_of(ACTION, st.tuples(st.just("sweep"), st.lists(ACTION, max_size=4), st.sampled_from([0.0, 0.05, 0.3])))


def _run(world: World, steps, batch_rows: int) -> tuple[list[int], PositionPublisher]:
    producer = Producer()
    publisher = PositionPublisher(lambda: FakeSession(), SETTINGS)
    publisher._settings = dataclasses.replace(SETTINGS, outbox_sweep_batch_rows_max=batch_rows)
    for step in steps:
        if step[0] == "sweep":
            world.clock += step[2]  # sweeps come every 25 ms when busy, seconds apart when idle
            world.between_statements = list(step[1])
            publisher.sweep(producer)
            while world.between_statements:
                world.statement()
            assert publisher.position.through < min(world.may_still_commit(), default=world.next_id), (
                "the position passed an id that may still be committed")
        else:
            getattr(world, step[0])(*step[1:])
    while world.open:
        world.end(0, True)
    for _ in range(len(world.committed) // batch_rows + 3):
        world.clock += 1.1
        publisher.sweep(producer)
    world.clock += SETTINGS.outbox_gap_timeout_s  # gaps seen in the last sweeps, when transactions are not visible
    publisher.sweep(producer)
    return producer.sent, publisher


# patch_world installs a fresh World for each example: the fixture is safe to share
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=40), batch_rows=st.integers(1, 5))
def test_every_committed_row_is_published_once_and_the_position_never_passes_a_row_still_to_come(
        patch_world, steps, batch_rows):
    world = World()
    patch_world(world)
    sent, publisher = _run(world, steps, batch_rows)
    assert sorted(sent) == sorted(world.committed)
    assert len(sent) == len(set(sent))
    assert publisher.position.gaps == {}
    assert world.saved == publisher.position.through == max(world.committed, default=0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=40))
def test_without_the_privilege_to_list_transactions_gaps_close_only_after_the_timeout(patch_world, steps):
    world = World(sees_transactions=False)
    patch_world(world)
    sent, publisher = _run(world, steps, batch_rows=3)
    assert sorted(sent) == sorted(world.committed) and len(sent) == len(set(sent))
    assert publisher.position.gaps == {}


def test_a_gap_stays_open_while_its_transaction_runs_and_its_late_row_is_published(patch_world):
    world = World()
    patch_world(world)
    producer, publisher = Producer(), PositionPublisher(lambda: FakeSession(), SETTINGS)
    world.begin(1, 0)  # id 1, slow
    world.begin(1, 0)  # id 2
    world.end(1, commit=True)
    publisher.sweep(producer)
    assert producer.sent == [2] and publisher.position.through == 0 and world.saved == 0
    world.clock += 5
    publisher.sweep(producer)
    assert publisher.position.through == 0  # its transaction still runs: the gap stays
    world.end(0, commit=True)
    world.clock += 5
    publisher.sweep(producer)
    assert producer.sent == [2, 1] and publisher.position.through == 2 and world.saved == 2


def test_a_gap_row_committed_between_the_relays_statements_is_published_not_taken_for_rolled_back(patch_world):
    """Transactions are listed before the gaps are read again: an owner that ends in between has then
    either committed its row (read now) or never will."""
    world = World()
    patch_world(world)
    producer, publisher = Producer(), PositionPublisher(lambda: FakeSession(), SETTINGS)
    world.begin(1, 0)  # id 1
    world.begin(1, 0)  # id 2
    world.end(1, commit=True)
    publisher.sweep(producer)
    world.clock += 5
    world.between_statements = [("noop",), ("noop",), ("end", 0, True)]  # commits just before the third
    publisher.sweep(producer)
    publisher.sweep(producer)
    assert sorted(producer.sent) == [1, 2] and publisher.position.through == 2


def test_a_transaction_that_took_an_id_just_before_the_rows_were_read_owns_its_gap(patch_world):
    """Transactions are listed after the rows are read: the owner of a gap those rows reveal is listed.
    (Listed before, a transaction taking id 1 in between would be missing, and its gap closed too early.)"""
    world = World()
    patch_world(world)
    producer, publisher = Producer(), PositionPublisher(lambda: FakeSession(), SETTINGS)
    publisher.sweep(producer)
    world.between_statements = [("noop",), ("many", ("begin", 1, 0), ("begin", 1, 0), ("end", 1, True))]
    publisher.sweep(producer)
    for _ in range(3):
        world.clock += 5
        publisher.sweep(producer)
    assert producer.sent == [2] and publisher.position.gaps.keys() == {1}  # its owner still runs
    world.end(0, commit=True)
    world.clock += 5
    publisher.sweep(producer)
    assert producer.sent == [2, 1] and publisher.position.through == 2


def test_a_rolled_back_id_is_closed_once_its_transaction_has_ended(patch_world):
    world = World()
    patch_world(world)
    producer, publisher = Producer(), PositionPublisher(lambda: FakeSession(), SETTINGS)
    world.begin(1, 0)
    world.begin(1, 0)
    world.end(1, commit=True)
    publisher.sweep(producer)
    world.end(0, commit=False)
    world.clock += 5
    publisher.sweep(producer)
    assert producer.sent == [2] and publisher.position.through == 2 and world.saved == 2


def test_the_position_is_saved_at_most_once_a_second(patch_world):
    world = World()
    patch_world(world)
    producer, publisher = Producer(), PositionPublisher(lambda: FakeSession(), SETTINGS)
    world.clock = 10.0
    publisher.sweep(producer)
    saves = []
    for step in range(10):
        world.begin(1, 0)
        world.end(0, commit=True)
        world.clock += 0.25
        before = world.saved
        publisher.sweep(producer)
        if world.saved != before:
            saves.append(step)
    assert saves == [0, 4, 8] and world.saved == 9  # 0.25 s apart: every fourth sweep


def test_missing_among_lists_the_ids_between_the_position_and_the_last_row_read():
    position = RelayPosition(highest=10)
    assert position.missing_among([11, 14, 15]) == [12, 13]
    assert position.missing_among([]) == []
    assert position.through == 10
    position.advance([11, 14, 15], set(), [12, 13], now=0.0)
    assert position.through == 11 and position.highest == 15
    # too soon: the owner may not have written yet
    assert position.closable(frozenset(), now=0.1, timeout_s=60) == set()
    assert position.closable(frozenset({7}), now=1.0, timeout_s=60) == set()  # owners: {7}
    assert position.closable(frozenset({8}), now=2.0, timeout_s=60) == {12, 13}
    assert position.closable(None, now=61.0, timeout_s=60) == {12, 13}


def test_a_gap_whose_transaction_outlives_the_gap_timeout_stays_open_until_its_row_is_committed(patch_world):
    """The timeout is for an account that cannot list transactions; one that can sees the owner still running."""
    world = World()
    patch_world(world)
    producer, publisher = Producer(), PositionPublisher(lambda: FakeSession(), SETTINGS)
    world.begin(1, 0)  # id 1: a transaction slower than OUTBOX_GAP_TIMEOUT_S
    world.begin(1, 0)
    world.end(1, commit=True)
    publisher.sweep(producer)
    world.clock += 1
    publisher.sweep(producer)
    world.clock += SETTINGS.outbox_gap_timeout_s
    publisher.sweep(producer)
    assert publisher.position.gaps.keys() == {1} and publisher.position.through == 0
    world.end(0, commit=True)
    world.clock += 1
    publisher.sweep(producer)
    assert producer.sent == [2, 1] and publisher.position.through == 2


def test_a_transaction_begun_after_the_servers_cached_listing_still_owns_its_gap(patch_world):
    """The server refreshes INNODB_TRX only when nobody read it for 0.1 s: a relay listing at every 25 ms sweep
    would keep reading the listing made before the slow transaction began."""
    world = World()
    patch_world(world)
    producer, publisher = Producer(), PositionPublisher(lambda: FakeSession(), SETTINGS)
    world.many(("begin", 1, 0), ("begin", 1, 0), ("end", 1, True), ("end", 0, False))
    publisher.sweep(producer)  # gap 1, rolled back
    world.clock += 0.3
    publisher.sweep(producer)  # the server's listing now: no transaction
    world.many(("begin", 1, 0), ("begin", 1, 0), ("end", 1, True))  # id 3 slow, id 4 committed
    for _ in range(100):
        world.clock += 0.01
        publisher.sweep(producer)
    assert 3 in publisher.position.gaps
    world.end(0, commit=True)
    world.clock += 1
    publisher.sweep(producer)
    assert sorted(producer.sent) == [2, 3, 4] and publisher.position.through == 4
