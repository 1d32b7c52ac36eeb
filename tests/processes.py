"""Real processes for tests: gunicorn serving the API, `python consumer.py`, a private broker."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from orders_app.devstack import free_port, start_broker, stop_process

ROOT_DIR = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT_DIR / ".devstack" / "test-logs"
READY_TIMEOUT_S = 30.0


def _env(overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("LOG_LEVEL", "INFO")
    return env


def _log_file(name: str):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return open(LOG_DIR / f"{name}.log", "ab")


class ApiServer:
    def __init__(self, name: str = "api", workers: int = 2, threads: int = 8, **env_overrides: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = LOG_DIR / f"{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread"],
            cwd=ROOT_DIR, env=_env(env_overrides), stdout=_log_file(name), stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not healthy after {READY_TIMEOUT_S}s; see {self.log_path}")

    def stop(self) -> None:
        stop_process(self.process.pid)
        self.process.wait(timeout=30)


class WorkerProcess:
    def __init__(self, name: str = "worker", **env_overrides: str):
        self.log_path = LOG_DIR / f"{name}.log"
        # a port of its own: several workers (and other checkouts' suites) run at once
        env_overrides.setdefault("WORKER_METRICS_PORT", str(free_port()))
        self.metrics_url = f"http://127.0.0.1:{env_overrides['WORKER_METRICS_PORT']}/metrics"
        self.process = subprocess.Popen([sys.executable, "consumer.py"], cwd=ROOT_DIR, env=_env(env_overrides),
                                        stdout=_log_file(name), stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> int:
        stop_process(self.process.pid)
        return self.process.wait(timeout=30)


class Broker:
    """A private memory broker on a fixed port, so it can be stopped and started again."""

    def __init__(self, name: str = "broker"):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.name = name
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = start_broker(self.port, LOG_DIR / f"{self.name}.log")

    def stop(self) -> None:
        stop_process(self.process.pid)
        self.process.wait(timeout=30)
