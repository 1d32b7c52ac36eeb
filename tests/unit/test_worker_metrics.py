"""The worker's metrics page: off at port 0, and a taken port never stops the worker from matching."""
from __future__ import annotations

import socket

from orders_app import worker_metrics


def test_port_zero_serves_nothing():
    assert worker_metrics.serve("127.0.0.1", 0) is False


def test_a_taken_port_is_logged_and_the_worker_goes_on(caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert worker_metrics.serve("127.0.0.1", port) is False
    assert any("worker metrics not served" in record.getMessage() and record.levelname == "ERROR"
               for record in caplog.records)


def test_one_batch_moves_every_batch_metric():
    registry = worker_metrics.REGISTRY
    symbol = "UNITTEST"

    def sample(name, **labels):
        return registry.get_sample_value(name, labels) or 0.0
    before = (sample("orders_worker_commands_total", symbol=symbol),
              sample("orders_worker_trades_total", symbol=symbol),
              sample("orders_worker_orders_settled_total", outcome="completed"),
              sample("orders_worker_settle_batch_commands_count", symbol=symbol))
    worker_metrics.observe_batch(symbol, commands=7, trades=3, duration_s=0.02, outcomes={"completed": 4, "pending": 1})
    after = (sample("orders_worker_commands_total", symbol=symbol), sample("orders_worker_trades_total", symbol=symbol),
             sample("orders_worker_orders_settled_total", outcome="completed"),
             sample("orders_worker_settle_batch_commands_count", symbol=symbol))
    assert [a - b for a, b in zip(after, before, strict=True)] == [7, 3, 4, 1]
    assert sample("orders_worker_settle_batch_duration_seconds_bucket", symbol=symbol, le="0.025") >= 1
    worker_metrics.set_kafka_lags({0: 5, 3: 0})
    assert sample("orders_worker_kafka_lag_records", partition="0") == 5
    worker_metrics.set_kafka_lags({1: 2})  # after a rebalance only the partitions now held are reported
    assert registry.get_sample_value("orders_worker_kafka_lag_records", {"partition": "0"}) is None
