"""The shared GCRA table: a bucket of `burst` refilled at one per interval, exact across forked processes."""
from __future__ import annotations

import multiprocessing

import pytest

from orders_app.ratelimit import NS_PER_S, SharedRateTable

S = NS_PER_S


@pytest.fixture()
def open_table():
    """`open_table(slots)`: a table closed when the test ends."""
    tables = []

    def open_(slots: int) -> SharedRateTable:
        tables.append(SharedRateTable(slots=slots))
        return tables[-1]
    yield open_
    for table in tables:
        table.close()


def test_burst_then_one_per_interval(open_table):
    table = open_table(64)
    assert [table.take(7, S, 3, now_ns=100 * S) for _ in range(3)] == [0, 0, 0]
    assert table.take(7, S, 3, now_ns=100 * S) == S  # the 4th waits one interval
    assert table.take(7, S, 3, now_ns=100 * S + S // 2) == S // 2
    assert table.take(7, S, 3, now_ns=101 * S) == 0
    assert table.take(7, S, 3, now_ns=101 * S) == S


def test_a_refused_request_takes_nothing(open_table):
    table = open_table(64)
    assert table.take(1, 10 * S, 1, now_ns=50 * S) == 0
    for _ in range(100):
        assert table.take(1, 10 * S, 1, now_ns=55 * S) == 5 * S
    assert table.take(1, 10 * S, 1, now_ns=60 * S) == 0


def test_keys_are_independent_and_a_full_bucket_refills_after_idling(open_table):
    table = open_table(64)
    assert table.take(1, S, 1, now_ns=10 * S) == 0
    assert table.take(2, S, 1, now_ns=10 * S) == 0
    assert table.take(1, S, 1, now_ns=10 * S) > 0
    assert table.take(1, S, 1, now_ns=1000 * S) == 0


def test_more_keys_than_slots_never_blocks_anyone_unfairly(open_table):
    """When the probed slots are all busy the one nearest to full is reused: lenient, never stricter."""
    table = open_table(8)
    for key in range(1, 200):
        assert table.take(key, S, 1, now_ns=5 * S) == 0


@pytest.mark.parametrize("key,interval_ns,burst", [(0, S, 1), (1, 0, 1), (1, S, 0)])
def test_nonsense_arguments_are_programmer_errors(key, interval_ns, burst, open_table):
    with pytest.raises(ValueError):
        open_table(8).take(key, interval_ns, burst)


def _take_many(table: SharedRateTable, count: int, results) -> None:
    results.put(sum(1 for _ in range(count) if table.take(42, 3600 * S, 50) == 0))


def test_forked_processes_share_one_bucket(open_table):
    """gunicorn forks its workers from the master that created the table: together they get `burst`."""
    table = open_table(64)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_take_many, args=(table, 40, results)) for _ in range(4)]
    for child in children:
        child.start()
    allowed = [results.get(timeout=30) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert sum(allowed) == 50, allowed  # 160 attempts, one bucket of 50, whoever took them
    assert table.take(42, 3600 * S, 50) > 0  # and the parent sees the bucket empty too
