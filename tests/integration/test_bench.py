"""The end-to-end benchmark command works on the test stack (a small run: the figures are not judged)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orders_app.processes import ROOT_DIR

pytestmark = pytest.mark.slow


def test_e2e_benchmark_sends_settles_reconciles_and_writes_its_figures(stack_env):
    result = subprocess.run(
        [sys.executable, "-m", "orders_app.bench", "e2e", "--orders", "400", "--concurrency", "8", "--users", "6",
         "--no-ceiling"], cwd=ROOT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, **stack_env, "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"accepted \(201\)\s+400; non-2xx 0", result.stdout), result.stdout
    assert re.search(r"reconciliation\s+OK", result.stdout), result.stdout
    json_path = re.search(r"figures: (\S+)", result.stdout).group(1)
    svg_path = re.search(r"plot:\s+(\S+)", result.stdout).group(1)
    figures = json.loads(Path(json_path).read_text())
    assert figures["accepted"] == 400 and figures["trades"] > 0
    assert figures["settled_orders_per_s"] > 0 and figures["settlement_lag_ms"]["p99"] >= 0
    assert set(figures["cpu_ms_per_order"]) >= {"API (gunicorn)", "worker + relay", "load client"}
    assert Path(svg_path).read_text().startswith("<svg")


def test_rate_benchmark_offers_fractions_of_the_closed_loop_maximum_on_schedule_and_reconciles(stack_env):
    result = subprocess.run(
        [sys.executable, "-m", "orders_app.bench", "rate", "--rates", "auto", "--seconds", "1", "--probe-orders",
         "300", "--concurrency", "8", "--users", "6"], cwd=ROOT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, **stack_env, "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"reconciliation\s+OK", result.stdout), result.stdout
    figures = json.loads(Path(re.search(r"figures: (\S+)", result.stdout).group(1)).read_text())
    maximum = figures["max_settled_orders_per_s"]
    assert figures["closed_loop"]["accepted"] == 300 and maximum > 0
    rows = figures["rows"]
    assert [row["fraction_of_max"] for row in rows] == [0.25, 0.5, 0.75, 0.9, 1.0, 1.1]
    assert [row["offered_per_s"] for row in rows] == [round(row["fraction_of_max"] * maximum) for row in rows]
    for row in rows:
        assert row["orders"] == max(1, round(row["offered_per_s"])) and row["non_2xx"] == 0, row
        assert row["accepted"] == row["orders"] and row["settlement_lag_ms"]["p99"] > 0, row
    assert figures["at_half_max"]["offered_per_s"] == rows[1]["offered_per_s"]


def test_stream_benchmark_connects_subscribers_and_measures_their_push_lag(stack_env):
    result = subprocess.run(
        [sys.executable, "-m", "orders_app.bench", "stream", "--clients", "20", "--orders", "300", "--users", "6"],
        cwd=ROOT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, **stack_env, "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4"})
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(Path(re.search(r"figures: (\S+)", result.stdout).group(1)).read_text())
    assert figures["accepted"] == 300 and figures["clients"] == 20
    assert figures["lag_samples"] > 0 and figures["push_lag_ms"]["p50"] > 0
    assert figures["received_by_subscribers"] >= figures["pushes"] and figures["disconnected_too_slow"] == 0


def test_driver_benchmark_reads_the_same_orders_through_both_drivers(stack_env, alice):
    assert alice.place(order_type="buy", currency_symbol="BTC", price="1", quantity="0.01").status_code == 201
    result = subprocess.run(
        [sys.executable, "-m", "orders_app.bench", "driver", "--rows", "20", "--repeat", "2"],
        cwd=ROOT_DIR, capture_output=True, text=True, timeout=120, env={**os.environ, **stack_env})
    assert result.returncode == 0, result.stdout + result.stderr
    drivers = re.findall(r"^(\w+)\s+[\d.]+ µs CPU per order row fetched .+ [\d.]+ µs CPU per one-row", result.stdout,
                         re.M)
    assert drivers == ["mysqldb", "pymysql"], result.stdout


def test_soak_benchmark_samples_every_process_prunes_the_outbox_and_reconciles(stack_env):
    result = subprocess.run(
        [sys.executable, "-m", "orders_app.bench", "soak", "--orders", "600", "--rate", "100", "--users", "6",
         "--connections", "8", "--sample-every-s", "0.5", "--prune-every-s", "1"],
        cwd=ROOT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, **stack_env, "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"reconciliation\s+OK", result.stdout), result.stdout
    figures = json.loads(Path(re.search(r"figures: (\S+)", result.stderr).group(1)).read_text())
    assert figures["accepted"] == 600 and figures["non_2xx"] == 0
    assert {"API: gunicorn master", "API: gunicorn worker 1", "API: gunicorn worker 2", "matching worker",
            "outbox relay", "MariaDB", "broker"} <= set(figures["rss_mib"])
    # ~6 s of load: how many samples and prunes fit depends on how long each takes on this machine (a prune
    # of the suite's large shared outbox can take seconds), so only "periodic, and at the end" is asserted
    assert figures["prune_s"]["runs"] >= 2 and figures["outbox_rows"]["max"] > 0
    assert len(figures["series"]) >= 3 and figures["series"][-1]["settled"] == 600
