"""The worker's loop outlives any exception that is not a stop request: it logs, counts, backs off, goes on."""
from __future__ import annotations

from types import SimpleNamespace

from orders_app import worker as worker_module
from orders_app import worker_metrics
from orders_app.config import Settings
from orders_app.worker import Worker


def test_an_unexpected_error_in_the_loop_is_logged_counted_and_survived(monkeypatch, caplog):
    monkeypatch.setattr(worker_module, "LOOP_ERROR_BACKOFF_S", 0.0, raising=False)
    settings = Settings(database_url="mysql+pymysql://nobody@127.0.0.1:1/none", kafka_bootstrap_servers="127.0.0.1:1",
                        admin_token="x" * 32, worker_metrics_port=0)
    worker = Worker(SimpleNamespace(settings=settings, markets={}))
    failures = [RecursionError("deep"), ArithmeticError("huge"), KeyError("gone")]
    rounds = []

    def consumer_or_none():
        rounds.append(1)
        if failures:
            raise failures.pop(0)
        worker.stopping.set()
        return None

    monkeypatch.setattr(worker, "_consumer_or_none", consumer_or_none)
    for idle in ("_catch_up", "_supervise_relay", "_close"):
        monkeypatch.setattr(worker, idle, lambda *args: None)
    before = worker_metrics.REGISTRY.get_sample_value("orders_worker_loop_errors_total") or 0.0

    worker.run()

    assert len(rounds) == 4 and not failures
    assert worker_metrics.REGISTRY.get_sample_value("orders_worker_loop_errors_total") - before == 3
    assert sum("worker loop error" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records) == 3
