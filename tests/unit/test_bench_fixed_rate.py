"""The fixed-rate benchmark's pure parts: the schedule, latency from the scheduled time, late-send accounting."""
from __future__ import annotations

import argparse
import itertools
import socketserver
import threading

import pytest

from orders_app.bench.openloop import (
    NEW,
    WAIT,
    ConnectionPool,
    RateResult,
    ScheduledSample,
    due_offsets_s,
    latencies_from_schedule_ms,
    run_fixed_rate,
)
from orders_app.bench.rate import at_half_max, rate_figures, rates_argument


def test_orders_are_due_evenly_spaced_at_the_offered_rate_from_the_start():
    assert due_offsets_s(5, 200.0) == [0.0, 0.005, 0.01, 0.015, 0.02]
    assert due_offsets_s(0, 10.0) == []


def test_a_rate_that_is_not_positive_has_no_schedule():
    with pytest.raises(ValueError):
        due_offsets_s(3, 0.0)


def test_latency_is_counted_from_the_scheduled_time_so_a_stalled_service_shows_as_latency():
    # Due every 10 ms; the service stalled for a second, so the client could send them only at t=1.0 s,
    # and each was answered 2 ms after it was sent.
    samples = [ScheduledSample(started=1.0, finished=1.002, status=201, body=b"", scheduled=index * 0.01)
               for index in range(100)]
    from_schedule = latencies_from_schedule_ms(samples)
    from_sending = [(sample.finished - sample.started) * 1000 for sample in samples]
    assert max(from_sending) == pytest.approx(2.0)
    assert min(from_schedule) == pytest.approx(12.0) and max(from_schedule) == pytest.approx(1002.0)


def test_a_request_goes_out_on_the_most_recently_idle_connection_before_a_new_one_is_opened():
    pool = ConnectionPool(connections_max=4)
    assert pool.take(0.0) is NEW and pool.take(0.0) is NEW
    pool.give_back("first", 0.1)
    pool.give_back("second", 0.2)
    assert pool.take(0.3) == "second" and pool.take(0.3) == "first"
    assert (pool.opened, pool.peak_open, pool.late_sends) == (2, 2, 0)


def test_a_connection_idle_for_longer_than_the_server_keeps_it_alive_is_closed_not_reused():
    pool = ConnectionPool(connections_max=2, idle_max_s=2.0)
    assert pool.take(0.0) is NEW and pool.take(0.0) is NEW
    pool.give_back("old", 1.0)
    pool.give_back("recent", 2.5)
    assert pool.take(3.5) == "recent"
    assert pool.take(3.5) is NEW  # "old" was idle 2.5 s: closed, which leaves room for a new one
    assert pool.expired == ["old"] and (pool.opened, pool.late_sends) == (3, 0)


def test_a_request_that_finds_every_allowed_connection_busy_is_counted_late_once():
    pool = ConnectionPool(connections_max=2)
    assert pool.take(0.0) is NEW and pool.take(0.0) is NEW
    assert pool.take(0.0) is WAIT
    assert pool.take(0.0, already_late=True) is WAIT  # asks again after a release another request took first
    assert pool.late_sends == 1
    pool.discard()  # a connection the server closed makes room for a new one
    assert pool.take(0.0, already_late=True) is NEW
    assert (pool.opened, pool.peak_open, pool.late_sends) == (3, 2, 1)


def _row(load: RateResult, settled: list[float], t_settled: float) -> dict:
    return rate_figures(100.0, load, settled, t_settled)


def test_a_rate_row_counts_latencies_and_settlement_lags_from_each_orders_scheduled_time():
    load = RateResult(t0=10.0, wall_s=1.0, client_cpu_s=0.1, late_sends=1, connections_opened=3,
                      connections_peak=3)
    load.samples += [ScheduledSample(10.0, 10.004, 201, b"", 10.0),
                     ScheduledSample(10.03, 10.05, 201, b"", 10.01),  # sent 20 ms late
                     ScheduledSample(10.02, 10.021, 503, b"", 10.02)]
    row = _row(load, settled=[10.1, 10.2], t_settled=10.2)
    assert row["accept_latency_ms"] == {"p50": 4.0, "p99": 40.0, "max": 40.0}
    assert row["settlement_lag_ms"] == {"p50": 100.0, "p99": 190.0, "max": 190.0}
    assert (row["accepted"], row["non_2xx"], row["statuses"]) == (2, 1, {"201": 2, "503": 1})
    assert row["send_delay_ms_p99"] == 20.0 and row["late_sends"] == 1
    assert row["achieved_accepted_per_s"] == 40.0 and row["achieved_settled_per_s"] == 10.0


def test_a_rate_row_gives_each_processs_cpu_per_accepted_order_and_the_share_of_all_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    load = RateResult(t0=10.0, wall_s=1.0, client_cpu_s=0.1)
    load.samples += [ScheduledSample(10.0, 10.004, 201, b"", 10.0), ScheduledSample(10.0, 10.005, 201, b"", 10.0),
                     ScheduledSample(10.0, 10.005, 400, b"", 10.0)]
    row = rate_figures(100.0, load, [10.5, 11.0], 11.0, {"API (gunicorn)": 0.5, "MariaDB": 0.3})
    assert row["cpu_ms_per_order"] == {"API (gunicorn)": 250.0, "MariaDB": 150.0, "load client": 50.0}
    assert row["cpu_ms_per_order_total"] == 450.0
    assert row["cpu_percent_of_all_cores"] == 45.0  # 0.9 CPU seconds in the 1 s to the last settled order, 2 cores
    assert "cpu_ms_per_order" not in _row(load, [10.5, 11.0], 11.0)  # rows of older files have none


def test_the_half_maximum_row_is_judged_against_both_targets():
    def row(fraction, accept_p99, lag_p99):
        return {"offered_per_s": 100 * (fraction or 1), "fraction_of_max": fraction,
                "accept_latency_ms": {"p99": accept_p99}, "settlement_lag_ms": {"p99": lag_p99}}

    judged = at_half_max([row(0.25, 10, 100), row(0.5, 49.9, 250.0), row(1.0, 900, 2000)])
    assert judged == {"offered_per_s": 50.0, "accept_p99_ms": 49.9, "settlement_lag_p99_ms": 250.0,
                      "accept_target_met": True, "settlement_lag_target_met": False}
    assert at_half_max([row(None, 10, 100)]) is None


def test_rates_are_auto_or_positive_numbers():
    assert rates_argument("auto") == "auto" and rates_argument("100,250.5") == [100.0, 250.5]
    for bad in ("0,100", "-5", "fast", "nan", "inf", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            rates_argument(bad)


STALL_S = 0.3


class _StallingHandler(socketserver.StreamRequestHandler):
    """Answers 201 to each request on its connection, but only once the server's `release` is set: STALL_S
    after it holds `stall_after` requests, timed from then and not from the test's start, so that a client
    slow to start on a busy machine still meets the whole stall."""

    def handle(self) -> None:
        while self.rfile.readline():  # a request's lines up to the blank one that ends its head
            if self.rfile.readline() == b"\r\n":
                if next(self.server.arrived) == self.server.stall_after:
                    threading.Timer(STALL_S, self.server.release.set).start()
                self.server.release.wait()
                self.wfile.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")


@pytest.fixture()
def stalled_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _StallingHandler)
    server.release = threading.Event()
    server.arrived, server.stall_after = itertools.count(1), 1
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    yield server
    server.release.set()
    server.shutdown()
    serving.join()
    server.server_close()


def test_when_every_allowed_connection_is_busy_later_orders_wait_and_are_counted_late(stalled_server):
    stalled_server.stall_after = 4  # the stall, once every allowed connection holds a request, is what is measured
    result = run_fixed_rate("127.0.0.1", stalled_server.server_address[1], [b"POST / HTTP/1.1\r\n\r\n"] * 10,
                            rate_per_s=100.0, connections_max=4)
    assert [sample.status for sample in result.samples] == [201] * 10
    assert (result.connections_peak, result.late_sends) == (4, 6)
    # the last order was due at 90 ms and answered after the 300 ms stall (which began at 30 ms or later): its
    # latency counts from when it was due
    assert min(latencies_from_schedule_ms(result.samples)) >= 200
