"""The ceiling: the best of a few gunicorn set-ups serving `trivial_app`, under the benchmark's own load
client, so that our end-to-end figure can be read as a fraction of what this machine can serve at all."""
from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orders_app.bench.loadgen import build_request, run_load
from orders_app.processes import BENCH_LOG_DIR, ApiServer

SETUPS = (("sync", 2, 1), ("sync", 4, 1), ("gthread", 2, 8), ("gthread", 4, 4))
BODY = b'{"userId": 1, "order_type": "buy", "currency_symbol": "BTC", "price": "5.123456", "quantity": "0.01"}'


@dataclass(frozen=True)
class CeilingRun:
    worker_class: str
    workers: int
    threads: int
    requests_per_s: float
    non_2xx: int
    client_cpu_percent: float

    @property
    def label(self) -> str:
        return f"{self.worker_class} {self.workers}x{self.threads}"


def measure_ceiling(concurrency: int, duration_s: float = 4.0, setups=SETUPS) -> list[CeilingRun]:
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "gunicorn.conf.py"
        config.write_text("# the ceiling uses gunicorn's defaults\n")
        for worker_class, workers, threads in setups:
            server = ApiServer(f"ceiling-{worker_class}-{workers}x{threads}", workers, threads, worker_class,
                               app="orders_app.bench.trivial_app:app", config=config, log_dir=BENCH_LOG_DIR)
            try:
                raw = build_request("127.0.0.1", server.port, "POST", "/api/orders", BODY, {})
                run_load("127.0.0.1", server.port, itertools.repeat(raw), concurrency=concurrency, duration_s=1.0)
                load = run_load("127.0.0.1", server.port, itertools.repeat(raw), concurrency=concurrency,
                                duration_s=duration_s)
            finally:
                server.stop()
            ok = sum(1 for sample in load.samples if 200 <= sample.status < 300)
            runs.append(CeilingRun(worker_class, workers, threads, ok / load.wall_s,
                                   len(load.samples) - ok, load.client_cpu_percent))
    return runs
