"""The API and the worker refuse to start on a bad setting or an out-of-date schema, saying what to do."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orders_app.processes import ROOT_DIR

pytestmark = pytest.mark.slow
START_TIMEOUT_S = 60


def _run(command: list[str], **env_changes) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(command, cwd=ROOT_DIR, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S)


API = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", "127.0.0.1:0", "--workers", "1"]
WORKER = [sys.executable, "consumer.py"]


def test_api_refuses_to_start_without_admin_token(stack_env):
    result = _run(API, ADMIN_TOKEN=None, ADMIN_TOKEN_GENERATED=None)
    assert result.returncode != 0
    assert "ADMIN_TOKEN" in result.stderr


@pytest.mark.parametrize("command", [API, WORKER], ids=["api", "worker"])
@pytest.mark.parametrize("key,value", [
    ("KAFKA_TOPIC_PARTITIONS", "many"), ("WORKER_METRICS_PORT", "ninety"), ("WORKER_METRICS_PORT", "70000"),
    ("RATE_LIMIT_ORDERS_PER_SECOND", "fast"), ("RATE_LIMIT_BURST", "-1"),
])
def test_refuses_to_start_on_an_invalid_setting_naming_it(stack_env, command, key, value):
    result = _run(command, **{key: value})
    assert result.returncode != 0 and key in result.stderr


@pytest.mark.parametrize("value", ["many", "\u00b2", "4\n"])
@pytest.mark.parametrize("key", ["GUNICORN_WORKERS", "GUNICORN_THREADS"])
def test_gunicorn_refuses_to_start_on_an_invalid_worker_count_naming_it(stack_env, key, value):
    result = _run(API, **{key: value})
    assert result.returncode != 0 and f"refuses to start: {key}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [API, WORKER], ids=["api", "worker"])
def test_refuses_to_start_on_an_out_of_date_schema_saying_what_to_run(empty_database_url, command):
    result = _run(command, DATABASE_URL=empty_database_url)
    assert result.returncode != 0
    assert "alembic upgrade head" in result.stderr


def test_worker_needs_no_admin_token_and_stops_cleanly_on_sigterm(stack_env):
    import signal
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_TOKEN", "ADMIN_TOKEN_GENERATED")}
    # as a context manager: its output pipe is closed and the process reaped however the test ends
    with subprocess.Popen(WORKER, cwd=ROOT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        try:
            # SIGTERM only once the worker said it runs its loop: before its handler is installed, the
            # signal's default action ends it (-15), which is no clean stop to test (a fixed sleep raced a
            # busy machine).
            seen = []
            for line in process.stdout:
                seen.append(line)
                if '"worker started"' in line:
                    break
            assert process.poll() is None, "".join(seen)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
            assert "worker stopped" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
