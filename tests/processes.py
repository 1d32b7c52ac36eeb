"""Real processes for tests: gunicorn serving the API, `python consumer.py`, a private broker."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from orders_app.devstack import (
    database_url,
    free_port,
    spawn_logged,
    start_broker,
    start_mariadb,
    stop_process,
)

ROOT_DIR = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT_DIR / ".devstack" / "test-logs"
READY_TIMEOUT_S = 30.0


def _env(overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("LOG_LEVEL", "INFO")
    return env


class ApiServer:
    def __init__(self, name: str = "api", workers: int = 2, threads: int = 8, **env_overrides: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = LOG_DIR / f"{name}.log"
        self.process = spawn_logged(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread"],
            self.log_path, cwd=ROOT_DIR, env=_env(env_overrides), start_new_session=True)
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
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0  # the log is appended to
        # a port of its own: several workers (and other checkouts' suites) run at once
        env_overrides.setdefault("WORKER_METRICS_PORT", str(free_port()))
        self.metrics_url = f"http://127.0.0.1:{env_overrides['WORKER_METRICS_PORT']}/metrics"
        self.process = spawn_logged([sys.executable, "consumer.py"], self.log_path, cwd=ROOT_DIR,
                                    env=_env(env_overrides), start_new_session=True)

    def stop(self) -> int:
        stop_process(self.process.pid)
        return self.process.wait(timeout=30)

    def wait_logged(self, marker: str, timeout_s: float = 60) -> None:
        """Until this run of the worker logged `marker` (e.g. '"worker started"'); fails if it exited."""
        deadline = time.monotonic() + timeout_s
        while marker.encode() not in self.log_path.read_bytes()[self.log_offset:]:
            if self.process.poll() is not None:
                raise RuntimeError(f"consumer.py exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumer.py logged no {marker} in {timeout_s:.0f}s; see {self.log_path}")
            time.sleep(0.05)


class StreamProcess:
    """`python -m orders_app.stream` on a port of its own; ready once its feed follows Kafka."""

    def __init__(self, name: str = "stream", **env_overrides: str):
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.health_url = f"http://127.0.0.1:{self.port}/health"
        self.log_path = LOG_DIR / f"{name}.log"
        env_overrides["STREAM_PORT"] = str(self.port)
        self.process = spawn_logged([sys.executable, "-m", "orders_app.stream"], LOG_DIR / f"{name}.log",
                                    cwd=ROOT_DIR, env=_env(env_overrides), start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"the stream exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stream not healthy after {READY_TIMEOUT_S}s; see {self.log_path}")
            time.sleep(0.1)

    def healthy(self) -> bool:
        try:
            return requests.get(self.health_url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def health(self) -> dict:
        return requests.get(self.health_url, timeout=5).json()

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


class PrivateDatabase:
    """A mariadbd of a test's own (fresh datadir, fixed port, migrated), so the test can kill it with
    SIGKILL and start it again on the same data without disturbing the suite's shared database."""

    def __init__(self, name: str = "db"):
        import uuid
        self.port = free_port()
        self.base_dir = ROOT_DIR / ".devstack" / f"{name}-{uuid.uuid4().hex[:8]}"
        self.process = None
        self.start()
        self.url = database_url(self.base_dir, self.port)
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT_DIR, check=True,
                       env=_env({"DATABASE_URL": self.url}), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.process = start_mariadb(self.base_dir, self.port)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the restart goes through InnoDB crash recovery."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process.pid)
            self.process.wait(timeout=30)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (gunicorn's workers), read from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []
