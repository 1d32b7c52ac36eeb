"""The worker process: `python consumer.py`. Reads the same settings as the API (env, .env)."""
from __future__ import annotations

import logging
import os
import sys

# The worker's metrics are its own (served on WORKER_METRICS_PORT); gunicorn's multiprocess folder, if it
# is in the environment, must not turn them into files nobody collects. Before prometheus_client loads.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from orders_app import create_app, worker_metrics  # noqa: E402
from orders_app.config import ConfigError  # noqa: E402
from orders_app.worker import Worker  # noqa: E402


def main() -> int:
    try:
        app = create_app(role="worker")
    except ConfigError as error:
        print(f"consumer.py refuses to start: {error}", file=sys.stderr)
        return 2
    ctx = app.extensions["orders_service_context"]
    logging.getLogger("orders_app.worker").info("starting", extra={"settings": ctx.settings.redacted()})
    worker_metrics.serve(ctx.settings.worker_metrics_host, ctx.settings.worker_metrics_port)
    worker = Worker(ctx)
    worker.install_signal_handlers()
    worker.run()
    return 0


if __name__ == "__main__":  # the guard also keeps the relay child (spawned) from running main()
    sys.exit(main())
