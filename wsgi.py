"""gunicorn entrypoint: `gunicorn wsgi:app` (settings in gunicorn.conf.py)."""
import logging
import sys

from orders_app import create_app, runtime_of
from orders_app.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One clear line instead of a traceback. Exit status 3 is gunicorn's WORKER_BOOT_ERROR: the arbiter
    # stops ("Worker failed to boot") instead of respawning the worker forever.
    print(f"orders API refuses to start: {error}", file=sys.stderr, flush=True)
    raise SystemExit(3) from None
logging.getLogger("orders_app.http").info(
    "starting", extra={"settings": runtime_of(app).settings.redacted()})
