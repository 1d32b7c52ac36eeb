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
    from orders_app import worker_metrics
    from orders_app.bootstrap import bootstrap
    from orders_app.config import ConfigError, Settings
    from orders_app.logs import configure_logging
    from orders_app.worker import Worker
    try:
        settings = Settings.from_env(needs_admin_token=False)
        configure_logging(settings.log_level)
        ctx = bootstrap(settings, role="worker").ctx
    except ConfigError as error:
        print(f"the worker refuses to start: {error}", file=sys.stderr)
        return 2
    logging.getLogger("orders_app.worker").info("starting", extra={"settings": ctx.settings.redacted()})
    worker_metrics.serve(ctx.settings.worker_metrics_host, ctx.settings.worker_metrics_port)
    worker = Worker(ctx)
    worker.install_signal_handlers()
    worker.run()
    return 0
