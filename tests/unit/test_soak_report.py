"""The soak's figures in docs/testing.md are rendered from docs/soak.json: they cannot be edited by hand."""
from __future__ import annotations

import copy
import json

from tests.faults import soak_report


def _recorded() -> dict:
    return json.loads(soak_report.RECORDED_JSON.read_text())


def test_the_soak_table_in_the_testing_page_is_what_the_recorded_soak_json_renders():
    assert soak_report.main(["--check"]) == 0, "run `python -m tests.faults.soak_report`"


def test_the_table_shows_the_figures_of_the_json_it_is_given():
    figures = copy.deepcopy(_recorded())
    figures.update(passed=False, problems=["race seller 64 holds 100 USD, not 121.55"], trades=987654, drain_s=42.5)
    figures["orders"]["accepted_201"] = 123456
    figures["faults"][1].update(down_s=17.25, answers_503=4321)
    figures["memory_mib"]["MariaDB"] = {"start": 111.1, "end": 999.9}
    table = soak_report.render_table(figures)
    for shown in ("**FAILED**; race seller 64 holds 100 USD, not 121.55", "| trades | 987,654 |", "123,456",
                  "down 17.25 s", "4,321 answers 503", "42.5 s", "| memory of MariaDB | 111.1 → 999.9 MiB |"):
        assert shown in table, shown


def test_the_check_fails_when_the_table_was_edited_by_hand(tmp_path):
    page = tmp_path / "testing.md"
    rendered = soak_report.render_page(soak_report.PAGE.read_text(), _recorded())
    page.write_text(rendered)
    assert soak_report.main(["--check", "--page", str(page)]) == 0
    trades_row = next(line for line in rendered.splitlines() if line.startswith("| trades |"))
    page.write_text(rendered.replace(trades_row, "| trades | 1 |"))
    assert soak_report.main(["--check", "--page", str(page)]) == 1


def test_the_flood_table_shows_the_figures_of_the_json_it_is_given():
    flood = json.loads(soak_report.FLOOD_JSON.read_text())
    flood.update(bad_records=4321, drain_s=9.75, by_reason={"undecodable": 4321}, reconcile="BREACHES FOUND")
    table = soak_report.render_table(flood, soak_report._flood_rows)
    for shown in ("| bad records | 4,321 in", "undecodable: 4,321",
                  "| every order applied after the load stopped | 9.75 s |", "BREACHES FOUND"):
        assert shown in table, shown
