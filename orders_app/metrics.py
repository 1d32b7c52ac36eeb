"""Prometheus metrics of the API (`GET /metrics`).

Under gunicorn every worker process counts on its own; with PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py
sets it) the values live in files there and `/metrics` adds up all processes. Without it (tests, a single
process) the default registry is used.
"""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter("orders_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
HTTP_LATENCY = Histogram("orders_http_request_duration_seconds", "Time to answer an HTTP request",
                         ["method", "endpoint"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
ORDERS_ACCEPTED = Counter("orders_accepted_total", "Orders accepted (201)", ["symbol", "side", "type"])
ORDERS_REFUSED = Counter("orders_refused_total", "Order placements refused, by error code", ["code"])
PLACE_BATCH_ORDERS = Histogram("orders_place_batch_orders", "Orders per group-commit transaction",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
PLACE_BATCH_SECONDS = Histogram("orders_place_batch_duration_seconds", "Time to place and commit one batch",
                                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))


def observe_request(method: str, endpoint: str | None, status: int, duration_s: float) -> None:
    endpoint = endpoint or "unmatched"  # never the raw path: ids and junk would explode label cardinality
    HTTP_REQUESTS.labels(method, endpoint, str(status)).inc()
    HTTP_LATENCY.labels(method, endpoint).observe(duration_s)


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
