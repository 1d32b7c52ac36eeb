"""The matching worker's entry point: `python consumer.py`, or the `orders-worker` console script.

Reads the same settings as the API (environment, `.env`). Exit status 2 on a bad setting.
"""
from __future__ import annotations

import logging
import os
import sys


def main() -> int:
    # The worker's metrics are its own (served on WORKER_METRICS_PORT); gunicorn's multiprocess folder, if it
    # is in the environment, must not turn them into files nobody collects. Before prometheus_client loads.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from orders_app import create_app, worker_metrics
    from orders_app.config import ConfigError
    from orders_app.worker import Worker
    try:
        app = create_app(role="worker")
    except ConfigError as error:
        print(f"the worker refuses to start: {error}", file=sys.stderr)
        return 2
    ctx = app.extensions["orders_service_context"]
    logging.getLogger("orders_app.worker").info("starting", extra={"settings": ctx.settings.redacted()})
    worker_metrics.serve(ctx.settings.worker_metrics_host, ctx.settings.worker_metrics_port)
    worker = Worker(ctx)
    worker.install_signal_handlers()
    worker.run()
    return 0
