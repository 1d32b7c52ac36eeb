"""The worker process: `python consumer.py`. Reads the same settings as the API (env, .env)."""
from __future__ import annotations

import sys

from orders_app import create_app
from orders_app.config import ConfigError
from orders_app.worker import Worker


def main() -> int:
    try:
        app = create_app(role="worker")
    except ConfigError as error:
        print(f"consumer.py refuses to start: {error}", file=sys.stderr)
        return 2
    worker = Worker(app.extensions["orders_service_context"])
    worker.install_signal_handlers()
    worker.run()
    return 0


if __name__ == "__main__":  # the guard also keeps the relay child (spawned) from running main()
    sys.exit(main())
