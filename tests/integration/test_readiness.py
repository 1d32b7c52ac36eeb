"""/ready stays cheap when Kafka is blackholed: one probe per process at a time, all brokers within one
second together, and its answer reused for a second, so polling it cannot hold the API's threads."""
from __future__ import annotations

import dataclasses
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from orders_app import runtime_of
from orders_app.services.health import readiness

BROKERS = 3
CALLS = 16


@pytest.fixture()
def blackholed_servers():
    """host:port,... of listeners whose accept queue is full: a connect hangs until its timeout, like a
    broker behind a firewall that drops packets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)  # the queue's one place
    yield ",".join(f"127.0.0.1:{port}" for _ in range(BROKERS))
    filler.close()
    listener.close()


@pytest.fixture()
def blackholed_ctx(app, blackholed_servers, monkeypatch):
    ctx = runtime_of(app).ctx
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, kafka_bootstrap_servers=blackholed_servers))
    return ctx


def _timed_get(client, path: str):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def test_a_readiness_probe_of_blackholed_brokers_takes_at_most_about_a_second_in_all(blackholed_ctx):
    started = time.monotonic()
    problems = readiness(blackholed_ctx)
    elapsed_s = time.monotonic() - started
    assert problems == ["Kafka unreachable"]
    assert elapsed_s < 1.5, f"{BROKERS} blackholed brokers held the probe {elapsed_s:.1f}s"


def test_concurrent_ready_calls_share_one_probe_instead_of_holding_a_thread_each(app, blackholed_ctx):
    client = app.test_client()
    first, first_s = _timed_get(client, "/ready")
    assert first.status_code == 503 and "Kafka unreachable" in first.json["error"]["message"]
    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        results = list(pool.map(lambda _: _timed_get(app.test_client(), "/ready"), range(CALLS)))
    assert all(response.status_code == 503 for response, _ in results)
    thread_s = sum(elapsed for _, elapsed in results)
    # One call may start the next probe (the answer is kept a second); the others answer from it at once.
    assert first_s < 1.5 and thread_s < 2.5, f"{CALLS} calls held threads for {thread_s:.1f}s in all"


def test_ready_says_ok_again_for_the_real_settings(client, blackholed_servers):
    assert client.get("/ready").status_code == 200  # an answer for other settings is never reused
