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
    soak = json.loads(report.SOAK_JSON.read_text())
    assert report.OUTPUT.read_text() == report.render(e2e, book, stream, soak), (
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
    page.write_text(page.read_text().replace("**0.13**", "**0.50**"))
    assert report.main(["--check", "--output", str(page)]) == 1


def test_the_page_shows_the_fan_out_figures_of_the_stream_json():
    e2e, book = _committed()
    stream = copy.deepcopy(json.loads(report.STREAM_JSON.read_text()))
    stream.update(clients=4321, pushes_per_s=98765.0)
    stream["push_lag_ms"]["p99"] = 555.5
    page = report.render(e2e, book, stream)
    for shown in ("4,321 on one stream process", "**98,765/s**", "**p99 555.5 ms**"):
        assert shown in page, shown


def test_the_page_shows_the_soak_figures_and_names_each_process_over_the_drift_target():
    e2e, book = _committed()
    soak = copy.deepcopy(json.loads(report.SOAK_JSON.read_text()))
    soak["outbox_rows"]["max"] = 43210
    soak["rss_mib"]["matching worker"].update(after_warm_up=100.0, end=123.4, drift_percent=23.4)
    page = report.render(e2e, book, None, soak)
    for shown in ("## Soak", "**max 43,210**", "| matching worker | 100.0 MiB | 123.4 MiB |",
                  "Over the 10 % target: matching worker (+23.4 %)", "keeps every message in memory"):
        assert shown in page, shown
    soak["rss_mib"]["matching worker"].update(drift_percent=1.0)
    assert "Over the 10 % target" not in report.render(e2e, book, None, soak)
