"""gunicorn settings (read automatically from the working directory). Override with GUNICORN_* env."""
import os
import re
import shutil
import tempfile


def _count(key: str, default: str) -> int:
    raw = os.environ.get(key, default)
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= 256:  # isdigit() takes "²", int() does not
        raise SystemExit(f"orders API refuses to start: {key} must be an integer from 1 to 256, got {raw!r}")
    return int(raw)


# PORT itself is validated by the app's Settings
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '3000')}"
workers = _count("GUNICORN_WORKERS", "1")
threads = _count("GUNICORN_THREADS", "32")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
keepalive = 5
graceful_timeout = 30  # SIGTERM: workers stop accepting, finish in-flight requests for up to this long
timeout = 30  # the arbiter's heartbeat of a worker process; it does not bound one thread's request
accesslog = None  # the app logs one JSON line per request
# Refused by gunicorn before the app sees the request, in the JSON error shape (orders_app/gunicorn_errors.py);
# docs/http-limits.md lists every limit and its answer.
limit_request_line = 4094  # 414 above it; the longest URL the API needs (orders with every filter) is < 200 bytes
limit_request_fields = 50  # 431 above it; clients send ~10, proxies and tracing add ~10 more
limit_request_field_size = 8190  # 431 above it; the 8 KiB most proxies allow, for a browser's cookies on /docs


def on_starting(server):
    """Prometheus multiprocess mode: every worker writes its metrics to files in one fresh folder."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(tempfile.gettempdir(),
                                                                       f"orders-metrics-{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    # Rate-limit buckets in shared memory made before the fork: the limit holds across all workers.
    from orders_app.ratelimit import create_host_table
    create_host_table()


def worker_exit(server, worker):
    """After a graceful stop: give the publisher (OUTBOX_PUBLISHER=api) a moment to send what the last
    requests committed, then close its producer (what it cannot send, the worker's relay publishes later;
    nothing is lost either way)."""
    from orders_app.extensions import publisher
    publisher.drain(timeout_s=2.0)
    publisher.stop()


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def pre_request(worker, req):
    from orders_app.request_body import remember_gunicorn_request
    remember_gunicorn_request(req)


def post_fork(server, worker):
    """gunicorn's own refusals are written as JSON (see orders_app/gunicorn_errors.py).

    A request hops between threads (gunicorn's poller, a request thread, the group committer) and the
    committer waits on the database several times per batch; each wake-up waits for the GIL, which a busy
    thread gives up only every `switchinterval` (5 ms by default). 1 ms cuts that wait."""
    import sys

    from orders_app import gunicorn_errors
    gunicorn_errors.install(limit_request_line, limit_request_fields, limit_request_field_size)
    sys.setswitchinterval(float(os.environ.get("GUNICORN_SWITCH_INTERVAL_S", "0.001")))  # float-ok: seconds, not money
