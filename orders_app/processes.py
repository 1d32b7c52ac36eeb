"""The service's processes started from this checkout: gunicorn serving the API, `python consumer.py`,
`python -m orders_app.stream`, a private broker, a private MariaDB. One launcher for the tests and the
benchmarks (which ship in the package, so it lives here). Standard library only, like `devstack`, which it
builds on: every process is spawned into a session of its own with its output appended to a log file under
`log_dir`, and stopped by its PID.

Readiness: the API and the stream are ready once `/health` answers 200; a worker is running once started
(`WorkerProcess.wait_logged('"worker started"')` waits for its consumer loop). Every wait fails at once, naming
the log file, when the process exits instead; the API and the stream are stopped again when theirs fails.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from orders_app.devstack import (
    ROOT_DIR,
    database_url,
    free_port,
    spawn_logged,
    start_broker,
    start_mariadb,
    stop_process,
)

TEST_LOG_DIR = ROOT_DIR / ".devstack" / "test-logs"
BENCH_LOG_DIR = ROOT_DIR / ".devstack" / "bench-logs"
READY_TIMEOUT_S = 30.0
POLL_S = 0.1  # between two looks at a process that is still starting
# Our own servers on 127.0.0.1: never through a proxy that the environment names.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _env(overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("LOG_LEVEL", "INFO")
    return env


def _spawn(args: list[str], log_path: Path, env_overrides: dict[str, str]) -> subprocess.Popen:
    # a session of its own: a Ctrl-C in the terminal goes to the run that started it, which stops it in turn
    return spawn_logged(args, log_path, cwd=ROOT_DIR, env=_env(env_overrides), start_new_session=True)


def _stop(process: subprocess.Popen) -> int:
    stop_process(process.pid)
    return process.wait(timeout=30)


def _wait_ready(process: subprocess.Popen, ready: Callable[[], bool], name: str, not_ready: str,
                log_path: Path, timeout_s: float, poll_s: float = POLL_S) -> None:
    """Until `ready()`; raises naming the log when the process exits first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} {not_ready} after {timeout_s:.0f}s; see {log_path}")
        time.sleep(poll_s)


def _answers_200(url: str) -> bool:
    try:
        with _LOCAL.open(url, timeout=1) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):  # refused or cut off while starting, or an error status
        return False


class ApiServer:
    """gunicorn serving `app` on a free port, ready once `/health` answers 200.

    `workers`, `threads`, `worker_class` None: gunicorn.conf.py's values (its GUNICORN_* env). `config`:
    another gunicorn config file than the checkout's gunicorn.conf.py."""

    def __init__(self, name: str = "api", workers: int | None = 2, threads: int | None = 8,
                 worker_class: str | None = "gthread", *, app: str = "wsgi:app", config: Path | None = None,
                 log_dir: Path = TEST_LOG_DIR, ready_timeout_s: float = READY_TIMEOUT_S, **env_overrides: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        env_overrides.setdefault("PORT", str(self.port))  # what the app's settings say it listens on
        options = {"--config": config, "--workers": workers, "--threads": threads, "--worker-class": worker_class}
        args = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{self.port}"]
        args += [str(part) for option, value in options.items() if value is not None for part in (option, value)]
        self.process = _spawn(args, self.log_path, env_overrides)
        try:
            _wait_ready(self.process, lambda: _answers_200(f"{self.url}/health"), "gunicorn", "not healthy",
                        self.log_path, ready_timeout_s)
        except BaseException:
            _stop(self.process)
            raise

    def stop(self) -> int:
        return _stop(self.process)


class WorkerProcess:
    """`python consumer.py`, with a metrics port of its own unless WORKER_METRICS_PORT is given."""

    def __init__(self, name: str = "worker", *, log_dir: Path = TEST_LOG_DIR, **env_overrides: str):
        self.log_path = log_dir / f"{name}.log"
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0  # the log is appended to
        # a port of its own: several workers (and other checkouts' suites) run at once
        env_overrides.setdefault("WORKER_METRICS_PORT", str(free_port()))
        self.metrics_url = f"http://127.0.0.1:{env_overrides['WORKER_METRICS_PORT']}/metrics"
        self.process = _spawn([sys.executable, "consumer.py"], self.log_path, env_overrides)

    def stop(self) -> int:
        return _stop(self.process)

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"consumer.py exited with {self.process.returncode}; see {self.log_path}")

    def wait_logged(self, marker: str, timeout_s: float = 60) -> None:
        """Until this run of the worker logged `marker` (e.g. '"worker started"'); fails if it exited."""
        _wait_ready(self.process, lambda: marker.encode() in self.log_path.read_bytes()[self.log_offset:],
                    "consumer.py", f"logged no {marker}", self.log_path, timeout_s, poll_s=0.05)


class StreamProcess:
    """`python -m orders_app.stream` on a port of its own; ready once its feed follows Kafka."""

    def __init__(self, name: str = "stream", *, log_dir: Path = TEST_LOG_DIR,
                 ready_timeout_s: float = READY_TIMEOUT_S, **env_overrides: str):
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.health_url = f"http://127.0.0.1:{self.port}/health"
        self.log_path = log_dir / f"{name}.log"
        env_overrides["STREAM_PORT"] = str(self.port)
        self.process = _spawn([sys.executable, "-m", "orders_app.stream"], self.log_path, env_overrides)
        try:
            _wait_ready(self.process, self.healthy, "the stream", "not healthy", self.log_path, ready_timeout_s)
        except BaseException:
            _stop(self.process)
            raise

    def healthy(self) -> bool:
        return _answers_200(self.health_url)

    def health(self) -> dict:
        with _LOCAL.open(self.health_url, timeout=10) as response:
            return json.load(response)

    def stop(self) -> int:
        return _stop(self.process)


class Broker:
    """A private memory broker on a fixed port, so it can be stopped and started again."""

    def __init__(self, name: str = "broker", *, log_dir: Path = TEST_LOG_DIR):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.start()

    def start(self) -> None:
        self.process = start_broker(self.port, self.log_path)

    def stop(self) -> None:
        _stop(self.process)


class PrivateDatabase:
    """A mariadbd of its own (fresh datadir, fixed port, migrated), so a test can kill it with SIGKILL and
    start it again on the same data without disturbing the suite's shared database."""

    def __init__(self, name: str = "db"):
        self.port = free_port()
        self.base_dir = ROOT_DIR / ".devstack" / f"{name}-{uuid.uuid4().hex[:8]}"
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
        if self.process.poll() is None:
            _stop(self.process)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def stop_all(*processes: ApiServer | WorkerProcess | StreamProcess | Broker | None) -> None:
    """Stop every process given (None: one that never started), in that order; one that fails to stop
    leaves none of the others running."""
    with contextlib.ExitStack() as stack:
        for process in reversed(processes):  # an exit stack runs its callbacks last in, first out
            if process is not None:
                stack.callback(process.stop)


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (gunicorn's workers), read from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []
