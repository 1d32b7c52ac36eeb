"""gunicorn settings (read automatically from the working directory). Override with GUNICORN_* env."""
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '3000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
keepalive = 5
graceful_timeout = 30
timeout = 30
accesslog = None  # the app logs one JSON line per request
