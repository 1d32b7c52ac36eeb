"""docs/performance.md is rendered from the benchmarks' JSON: its figures cannot be edited by hand."""
from __future__ import annotations

import copy
import json

from orders_app.bench import report


def _committed() -> tuple[dict, list[dict]]:
    return json.loads(report.E2E_JSON.read_text()), json.loads(report.BOOK_JSON.read_text())


def test_the_committed_performance_page_is_what_the_committed_benchmark_json_renders():
    e2e, book = _committed()
    stream = json.loads(report.STREAM_JSON.read_text())
    rate = json.loads(report.RATE_JSON.read_text())
    soak = json.loads(report.SOAK_JSON.read_text())
    levers = json.loads(report.LEVERS_JSON.read_text()) if report.LEVERS_JSON.exists() else None
    batch = json.loads(report.BATCH_JSON.read_text()) if report.BATCH_JSON.exists() else None
    assert report.OUTPUT.read_text() == report.render(e2e, book, stream, rate, soak, levers, batch), (
        "docs/performance.md differs from its JSON: run `python -m orders_app.bench report`")


def test_the_page_shows_the_figures_of_the_json_it_is_given():
    e2e, book = _committed()
    e2e, book = copy.deepcopy(e2e), copy.deepcopy(book)
    e2e.update(settled_orders_per_s=1234.0, ratio_to_ceiling=0.321, cpu_ms_per_order_total=7.777,
               machine={"cpus": 16, "memory_gib": 64.0})
    e2e["accept_latency_ms"]["p99"] = 43.2
    e2e["settlement_lag_ms"]["p95"] = 876.5
    e2e["cpu_ms_per_order"]["MariaDB"] = 0.987
    e2e["ceiling"]["requests_per_s"] = 9876
    book[-1].update(resting_orders=250_000, settled_orders_per_s=4321.0)
    page = report.render(e2e, book)
    for shown in ("**1,234**", "**0.32**", "**7.777 ms**", "16 CPUs, 64 GiB", "43.2 ms", "876.5 ms", "0.987 ms",
                  "9,876 requests/s", "| 250,000 |", "4,321"):
        assert shown in page, shown


def test_report_check_fails_when_the_page_was_edited_by_hand(tmp_path):
    page = tmp_path / "performance.md"
    assert report.main(["--output", str(page)]) == 0
    assert report.main(["--check", "--output", str(page)]) == 0
    page.write_text(page.read_text().replace("## Ceiling", "## Ceiling (edited by hand)"))
    assert report.main(["--check", "--output", str(page)]) == 1


def test_the_page_shows_the_fan_out_figures_of_the_stream_json():
    e2e, book = _committed()
    stream = copy.deepcopy(json.loads(report.STREAM_JSON.read_text()))
    stream.update(clients=4321, pushes_per_s=98765.0)
    stream["push_lag_ms"]["p99"] = 555.5
    page = report.render(e2e, book, stream)
    for shown in ("4,321 on one stream process", "**98,765/s**", "**p99 555.5 ms**"):
        assert shown in page, shown


def _rate_figures(half_accept_p99_ms: float, half_lag_p99_ms: float) -> dict:
    def row(fraction: float, accept_p99_ms: float, lag_p99_ms: float) -> dict:
        return {"offered_per_s": 800 * fraction, "fraction_of_max": fraction, "achieved_accepted_per_s": 700 * fraction,
                "achieved_settled_per_s": 690 * fraction, "accept_latency_ms": {"p50": 3.5, "p99": accept_p99_ms},
                "settlement_lag_ms": {"p50": 61.5, "p99": lag_p99_ms}, "send_delay_ms_p99": 1.5, "late_sends": 0,
                "non_2xx": 0}

    rows = [row(0.25, 11.1, 99.9), row(0.5, half_accept_p99_ms, half_lag_p99_ms), row(1.1, 4321.0, 5432.1)]
    return {"seconds_per_rate": 20.0, "connections_max": 512, "machine": {"cpus": 2},
            "closed_loop": {"orders": 6000, "concurrency": 32}, "max_settled_orders_per_s": 800.0,
            "rows": rows, "load_average_1m": {"before": 0.5, "after": 1.9},
            "at_half_max": {"offered_per_s": 400.0, "accept_p99_ms": half_accept_p99_ms,
                            "settlement_lag_p99_ms": half_lag_p99_ms}}


def test_the_fixed_rate_table_marks_the_half_maximum_row_and_judges_the_targets_there():
    e2e, book = _committed()
    page = report.render(e2e, book, None, _rate_figures(half_accept_p99_ms=42.5, half_lag_p99_ms=262.5))
    section = page[page.index("## Latency at fixed arrival rates"):]
    assert ("| 400 | **0.5: half the measured maximum** | 350 | 345 | 3.5 ms | 42.5 ms | 61.5 ms | 262.5 ms | 1.5 ms "
            "| 0 | 0 |") in section
    assert "| 880 | 1.1 | 770 | 759 | 3.5 ms | 4,321.0 ms |" in section
    words = " ".join(section.split())  # the prose is reflowed: compare its words
    assert "800 orders/s in this run" in words
    assert "accept p99 under 50 ms — **met** (42.5 ms)" in words
    assert "settlement lag p99 under 250 ms — **missed**: 262.5 ms, 12.5 ms over" in words
    assert "closed loop" in words and "scheduled time" in words
    assert "was 0.5 when the run started and 1.9 when it ended, on 2 CPUs" in words and "provisional" not in words
    busy = _rate_figures(half_accept_p99_ms=42.5, half_lag_p99_ms=262.5) | {"load_average_1m": {"before": 9.0,
                                                                                              "after": 1.0}}
    busy_words = " ".join(report.render(e2e, book, None, busy).split())
    assert "already above the CPU count at the start" in busy_words and "provisional" in busy_words


def test_the_fixed_rate_section_shows_each_rates_cpu_per_process_when_the_run_measured_it():
    e2e, book = _committed()
    plain = _rate_figures(half_accept_p99_ms=42.5, half_lag_p99_ms=262.5)
    assert "% of all cores" not in report.render(e2e, book, None, plain)  # an older file: no CPU table
    measured = _rate_figures(half_accept_p99_ms=42.5, half_lag_p99_ms=262.5)
    for row, share, api_ms in zip(measured["rows"], (40.0, 80.5, 95.0), (4.5, 2.25, 1.5), strict=True):
        row |= {"cpu_ms_per_order": {"API (gunicorn)": api_ms, "worker + relay": 1.0, "MariaDB": 0.5,
                                     "broker": 0.25, "load client": 0.125},
                "cpu_ms_per_order_total": api_ms + 1.875, "cpu_percent_of_all_cores": share}
    section = report.render(e2e, book, None, measured).split("## Latency at fixed arrival rates")[1].split("\n## ")[0]
    assert "| 200 | 4.50 | 1.00 | 0.50 | 0.25 | 0.12 | 6.38 | 40 % |" in section
    assert "| 400 | 2.25 | 1.00 | 0.50 | 0.25 | 0.12 | 4.12 | 80 % |" in section
    words = " ".join(section.split())
    assert "At the lowest rate the processes used 40 % of the cores, 6.4 ms of CPU per order" in words
    assert "at half the maximum, 80 % and 4.1 ms per order" in words


def test_the_fixed_rate_section_says_it_is_not_yet_measured_without_its_json():
    e2e, book = _committed()
    page = report.render(e2e, book)
    section = page[page.index("## Latency at fixed arrival rates"):]
    assert "Not yet measured" in section.split("\n## ")[0]


def test_the_page_shows_the_soak_figures_and_names_each_process_over_the_drift_target():
    e2e, book = _committed()
    soak = copy.deepcopy(json.loads(report.SOAK_JSON.read_text()))
    soak["outbox_rows"]["max"] = 43210
    soak["rss_mib"]["matching worker"].update(after_warm_up=100.0, end=123.4, drift_percent=23.4)
    page = report.render(e2e, book, None, None, soak)
    for shown in ("## Soak", "**max 43,210**", "| matching worker | 100.0 MiB | 123.4 MiB |",
                  "Over the 10 % target: matching worker (+23.4 %)", "keeps every message in memory"):
        assert shown in page, shown
    soak["rss_mib"]["matching worker"].update(drift_percent=1.0)
    assert "Over the 10 % target" not in report.render(e2e, book, None, None, soak)


def test_the_lever_chain_shows_each_steps_cpu_per_process_and_a_dash_where_a_process_was_not_measured():
    e2e, book = _committed()

    def step(label: str, commit: str, cpu: dict[str, float]) -> dict:
        return {"label": label, "commit": commit, "driver": "pymysql", "settled_orders_per_s": 432.1,
                "cpu_ms_per_order": cpu, "cpu_ms_per_order_total": round(sum(cpu.values()), 3),
                "accept_latency_ms": {"p99": 98.7}, "settlement_lag_ms": {"p99": 123.4}, "reconciliation": "OK"}

    levers = {"orders": 20000, "steps": [
        step("before", "aaaaaaa", {"API (gunicorn)": 1.5, "MariaDB": 0.5, "load client": 0.25}),
        step("after", "bbbbbbb", {"API (gunicorn)": 1.25, "load client": 0.25})]}
    page = report.render(e2e, book, levers=levers)
    section = page[page.index("## Before and after, a lever at a time"):]
    assert ("| before |  | `aaaaaaa` | pymysql | 432 | 1.50 | 0.50 | 0.25 | **2.25** | 8.0 | 98.7 ms | 123.4 ms | OK |"
            in section)
    assert "| after |  | `bbbbbbb` | pymysql | 432 | 1.25 | — | 0.25 | **1.50** | 5.0 |" in section
    assert "## Before and after" not in report.render(e2e, book)


def test_the_batch_section_puts_one_order_per_request_beside_the_batch_endpoint():
    e2e, book = _committed()
    batch = copy.deepcopy(e2e) | {"orders_per_request": 10, "settled_orders_per_s": 987.0}
    page = report.render(e2e, book, batch={"single": e2e, "batch": batch})
    section = page[page.index("## Batches"):]
    assert "10 orders per request to `POST /api/orders/batch`" in " ".join(section.split())
    assert f"| settled orders/s | {e2e['settled_orders_per_s']:,.0f} | 987 |" in section
    assert "## Batches" not in report.render(e2e, book)


def test_the_soak_table_tells_a_burst_of_slow_windows_from_a_steady_tail():
    e2e, book = _committed()
    soak = copy.deepcopy(json.loads(report.SOAK_JSON.read_text()))
    soak["series"] = [{"t_s": 5.0 * i, "accept_p99_ms": 40.0, "load_1m": 1.5} for i in range(1, 11)]
    soak["series"][6].update(accept_p99_ms=45000.0, load_1m=9.5)
    soak["series"][7].update(accept_p99_ms=3000.0, load_1m=8.0)
    words = " ".join(report.render(e2e, book, soak=soak).split())
    assert ("median of the windows' p99 40.0 ms; 2 of 10 windows above 1,000 ms, from 35 s to 40 s, with the load "
            "average up to 9.5") in words
    soak["series"][6]["accept_p99_ms"] = soak["series"][7]["accept_p99_ms"] = 40.0
    assert "0 of 10 windows above 1,000 ms |" in report.render(e2e, book, soak=soak)
