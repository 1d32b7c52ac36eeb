"""Reading a Prometheus text page (the API's /metrics, a worker's metrics port)."""
from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, timeout_s: float = 20.0) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = requests.get(url, timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the worker's metrics port opens a moment after the process starts
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}
