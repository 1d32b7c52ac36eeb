"""gunicorn settings (read automatically from the working directory). Override with GUNICORN_* env."""
import os
import shutil
import tempfile

bind = f"0.0.0.0:{os.environ.get('PORT', '3000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
keepalive = 5
graceful_timeout = 30
timeout = 30
accesslog = None  # the app logs one JSON line per request


def on_starting(server):
    """Prometheus multiprocess mode: every worker writes its metrics to files in one fresh folder."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(tempfile.gettempdir(),
                                                                       f"orders-metrics-{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):
    """A request hops between threads (gunicorn's poller, a request thread, the group committer) and the
    committer waits on the database several times per batch; each wake-up waits for the GIL, which a busy
    thread gives up only every `switchinterval` (5 ms by default). 1 ms cuts that wait."""
    import sys
    sys.setswitchinterval(float(os.environ.get("GUNICORN_SWITCH_INTERVAL_S", "0.001")))
