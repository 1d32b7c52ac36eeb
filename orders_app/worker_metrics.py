"""Prometheus metrics of the matching worker (`python consumer.py`), served on their own port.

WORKER_METRICS_PORT (default 9100, 0 = off) on WORKER_METRICS_HOST (default 127.0.0.1). The worker's
metrics live in a registry of their own, so its page shows no API metric at zero. The hot path observes
once per settled batch; lags and the outbox backlog are gauges refreshed from the database and the
consumer about once a second (`REFRESH_INTERVAL_S`) by the worker's loop, never per record.
"""
from __future__ import annotations

import logging

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

log = logging.getLogger("orders_app.worker")
REFRESH_INTERVAL_S = 1.0

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, ...

COMMANDS = Counter("orders_worker_commands_total", "Market commands applied (order placed, cancel, amendment)",
                   ["symbol"], registry=REGISTRY)
TRADES = Counter("orders_worker_trades_total", "Trades recorded", ["symbol"], registry=REGISTRY)
ORDERS_SETTLED = Counter(
    "orders_worker_orders_settled_total",
    "Order states written by settled batches, by the order's status after the batch (an order counts once per "
    "batch that changed it; completed, cancelled and rejected count each order exactly once)",
    ["outcome"], registry=REGISTRY)
SETTLE_FAILURES = Counter("orders_worker_settle_failures_total", "Settling transactions that failed (retried)",
                          ["symbol"], registry=REGISTRY)
POISON_RECORDS = Counter(
    "orders_worker_poison_records_total",
    "order-events records set aside (copied to the DLQ topic, never applied), by reason: undecodable, "
    "invalid_field, unsupported_version, unknown_market, differs_from_database", ["reason"], registry=REGISTRY)
UNPROCESSABLE_COMMANDS = Counter(
    "orders_worker_unprocessable_commands_total",
    "Commands the engine could not take (the order is rejected with its hold released)", ["symbol"],
    registry=REGISTRY)
LOOP_ERRORS = Counter("orders_worker_loop_errors_total",
                      "Unexpected errors the worker's loop survived (logged; it backs off and goes on)",
                      registry=REGISTRY)
BATCH_COMMANDS = Histogram("orders_worker_settle_batch_commands", "Commands per settled batch", ["symbol"],
                           buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000), registry=REGISTRY)
BATCH_DURATION = Histogram("orders_worker_settle_batch_duration_seconds",
                           "Time to match and commit one batch", ["symbol"],
                           buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                           registry=REGISTRY)
KAFKA_LAG = Gauge("orders_worker_kafka_lag_records",
                  "Records of an assigned order-events partition not consumed yet (high water - position)",
                  ["partition"], registry=REGISTRY)
SEQUENCE_LAG = Gauge("orders_worker_sequence_lag_commands",
                     "Commands accepted by the API but not applied yet (market_sequences - market_state), "
                     "read from the database: every worker reports the same value", ["symbol"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("orders_worker_outbox_unpublished_rows", "Outbox rows not published to Kafka yet",
                       registry=REGISTRY)


def serve(host: str, port: int) -> bool:
    """Start the metrics HTTP server (a daemon thread); port 0 = off. A port that is taken is logged and
    the worker goes on matching without metrics: matching matters more than its page."""
    if not port:
        return False
    try:
        start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as error:
        log.error("worker metrics not served: %s:%d: %s", host, port, error)
        return False
    log.info("worker metrics served", extra={"url": f"http://{host}:{port}/metrics"})
    return True


def observe_batch(symbol: str, commands: int, trades: int, duration_s: float, outcomes: dict[str, int]) -> None:
    COMMANDS.labels(symbol).inc(commands)
    if trades:
        TRADES.labels(symbol).inc(trades)
    BATCH_COMMANDS.labels(symbol).observe(commands)
    BATCH_DURATION.labels(symbol).observe(duration_s)
    for outcome, count in outcomes.items():
        ORDERS_SETTLED.labels(outcome).inc(count)


def set_sequence_lags(lags: dict[str, int], backlog_rows: int) -> None:
    for symbol, lag in lags.items():
        SEQUENCE_LAG.labels(symbol).set(lag)
    OUTBOX_BACKLOG.set(backlog_rows)


def set_kafka_lags(lags: dict[int, int]) -> None:
    """Replace the per-partition lags (partitions move between workers on a rebalance)."""
    KAFKA_LAG.clear()
    for partition, lag in lags.items():
        KAFKA_LAG.labels(str(partition)).set(lag)
