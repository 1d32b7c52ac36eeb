"""The recorded figures of the long fault runs (the soak, the poison flood) as tables in docs/testing.md, kept
equal to their JSON: figures are rendered, never typed by hand.

    python -m tests.faults.soak_report --json bench-results/soak.json   # record a soak run as docs/soak.json
    python -m tests.faults.soak_report --flood-json bench-results/poison-flood.json   # ... a flood run
    python -m tests.faults.soak_report --coverage-json coverage.json  # ... a coverage run's summary
    python -m tests.faults.soak_report --check          # exit 1 if the page differs from the recorded JSON
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[2]
RECORDED_JSON = ROOT_DIR / "docs" / "soak.json"
PAGE = ROOT_DIR / "docs" / "testing.md"
BEGIN = ("<!-- soak figures: rendered by `python -m tests.faults.soak_report` from docs/soak.json; "
         "do not edit by hand -->")
END = "<!-- end of soak figures -->"
FLOOD_JSON = ROOT_DIR / "docs" / "poison-flood.json"
FLOOD_BEGIN = ("<!-- poison flood figures: rendered by `python -m tests.faults.soak_report` from "
               "docs/poison-flood.json; do not edit by hand -->")
FLOOD_END = "<!-- end of poison flood figures -->"
COVERAGE_JSON = ROOT_DIR / "docs" / "coverage.json"
COVERAGE_BEGIN = ("<!-- coverage figures: rendered by `python -m tests.faults.soak_report` from docs/coverage.json; "
                  "do not edit by hand -->")
COVERAGE_END = "<!-- end of coverage figures -->"


def _n(value) -> str:
    return "–" if value is None else f"{value:,}"


def _counts(counts: dict) -> str:
    return " · ".join(f"{key}: {_n(count)}" for key, count in counts.items()) or "none"


def _rows(f: dict) -> list[tuple[str, str]]:
    orders, races = f["orders"], f["first_credit_races"]
    worker, database = f["faults"]
    load = f["load_average_at_end"]
    rows = [
        ("run", f"{f['minutes']:g} min of load ({f['load_s']} s) at {f['rate_target_per_s']:g} client actions/s, "
                f"finished {f['finished_at']}; {f['cpus']} CPUs, load average at the end {load[0]} / {load[1]} / {load[2]}"),
        ("result", f"**{'PASSED' if f['passed'] else 'FAILED'}**" + "".join(f"; {p}" for p in f["problems"])),
        ("orders sent (distinct client ids)", _n(orders["sent"])),
        ("orders accepted (201)", f"{_n(orders['accepted_201'])} ({f['orders_accepted_per_s']}/s)"),
        ("orders by kind", _counts(orders["by_kind"])),
        ("placements retried after a 503", _n(orders["retried_after_503"])),
        ("recorded though the first answer was a 503 (200 on retry)", _n(orders["recorded_then_answered_200_on_retry"])),
        ("refused (400)", _n(orders["refused_400"])),
        ("outcome unknown to the client after retrying", f"{_n(orders['outcome_unknown_to_client'])} "
                                                        f"({_n(orders['outcome_unknown_but_recorded'])} of them recorded)"),
        ("final statuses in the database", _counts(orders["final_status"])),
        ("trades", _n(f["trades"])),
        ("first-credit races", f"{_n(races['rounds'])} rounds ({_n(races['rounds_cut_short'])} cut short by a fault), "
                               f"{_n(races['sellers'])} sellers, {_n(races['sellers_who_sold'])} sold; first ledger "
                               f"entry the sale: {_n(races['sale_credited_before_deposit'])}, the deposit: "
                               f"{_n(races['deposit_before_sale'])}; deposit answers lost: {_n(races['deposit_answer_lost'])}"),
        ("worker `kill -9`", f"at {worker['at_s']} s; its replacement started in {worker['restarted_in_s']} s"),
        ("database `kill -9`", f"at {database['at_s']} s; down {database['down_s']} s; orders accepted again "
                               f"{database['orders_accepted_again_after_restart_s']} s after the restart; "
                               f"{_n(database['answers_503'])} answers 503 meanwhile"),
        ("answers, all requests", _counts(f["answers"])),
        *((f"answers to {action}", _counts(counts)) for action, counts in f["answers_by_action"].items()),
        ("time to drain after the load stopped", f"{f.get('drain_s', '–')} s; every placement published "
                                                 f"{f.get('publish_s', '–')} s later"),
        ("`python -m orders_app.reconcile`", f["reconcile"]),
        *((f"memory of {name}", f"{m['start']} → {m['end']} MiB") for name, m in f["memory_mib"].items()),
        *((f"CPU of {name}", f"{cpu} s") for name, cpu in f["cpu_s_at_end"].items()),
    ]
    return rows


def _flood_rows(f: dict) -> list[tuple[str, str]]:
    return [
        ("run", f"finished {f['finished_at']}; {f['cpus']} CPUs"),
        ("bad records", f"{_n(f['bad_records'])} in {f['bursts']} bursts"),
        ("orders accepted meanwhile", f"{_n(f['orders_accepted'])} ({_counts(f['order_statuses'])})"),
        ("set aside, by reason", _counts(f["by_reason"])),
        ("copies in `order-events.dlq` per bad record", _counts(f["dlq_copies_per_record"])),
        ("`orders_worker_poison_records_total`", _n(int(f["metric_total"]))),
        ("all set aside after the first burst", f"{f['set_aside_s']} s (the bursts are spread over the load)"),
        ("every order applied after the load stopped", f"{f['drain_s']} s"),
        ("`python -m orders_app.reconcile`", f["reconcile"]),
    ]


def coverage_summary(report: dict) -> dict:
    """What the page shows of a `coverage json` report: branch and line coverage, in all and per package."""
    packages: dict[str, dict[str, int]] = {}
    for path, data in report["files"].items():
        parts = path.split("/")
        package = "/".join(parts[:2]) if len(parts) > 2 else parts[0]
        totals = packages.setdefault(package, {"statements": 0, "covered_lines": 0, "branches": 0,
                                               "covered_branches": 0})
        summary = data["summary"]
        for key in ("covered_lines", "covered_branches"):
            totals[key] += summary[key]
        totals["statements"] += summary["num_statements"]
        totals["branches"] += summary["num_branches"]
    totals = report["totals"]
    return {"command": report.get("command", ""), "measured_at": report["meta"]["timestamp"][:16].replace("T", " "),
            "statements": totals["num_statements"], "covered_lines": totals["covered_lines"],
            "branches": totals["num_branches"], "covered_branches": totals["covered_branches"], "packages": packages}


def _percent(covered: int, total: int) -> str:
    return "–" if not total else f"{100 * covered / total:.1f} %"


def _coverage_rows(c: dict) -> list[tuple[str, str]]:
    rows = [("measured", f"{c['measured_at']} UTC: `{c['command']}`"),
            ("all of orders_app", f"branches {_percent(c['covered_branches'], c['branches'])} "
                                  f"({_n(c['covered_branches'])} of {_n(c['branches'])}), lines "
                                  f"{_percent(c['covered_lines'], c['statements'])}")]
    rows += [(f"`{name}`", f"branches {_percent(t['covered_branches'], t['branches'])}, lines "
                           f"{_percent(t['covered_lines'], t['statements'])}")
             for name, t in sorted(c["packages"].items())]
    return rows


def render_table(figures: dict, rows=_rows) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {name} | {' '.join(value.replace('|', '/').split())} |" for name, value in rows(figures)]
    return "\n".join(lines)


def _replace_section(page: str, begin: str, end: str, table: str) -> str:
    head, rest = page.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def render_page(page: str, figures: dict, flood: dict | None = None, coverage: dict | None = None) -> str:
    page = _replace_section(page, BEGIN, END, render_table(figures))
    if flood is not None:
        page = _replace_section(page, FLOOD_BEGIN, FLOOD_END, render_table(flood, _flood_rows))
    if coverage is not None:
        page = _replace_section(page, COVERAGE_BEGIN, COVERAGE_END, render_table(coverage, _coverage_rows))
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak_report")
    parser.add_argument("--json", type=Path, help="a soak run's JSON to record as docs/soak.json")
    parser.add_argument("--flood-json", type=Path, help="a poison flood's JSON to record as docs/poison-flood.json")
    parser.add_argument("--coverage-json", type=Path, help="`coverage json` output to summarise as docs/coverage.json")
    parser.add_argument("--coverage-command", default="", help="the command that measured it, for the page")
    parser.add_argument("--check", action="store_true", help="only compare the page with the recorded JSON")
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    if args.json is not None and not args.check:
        shutil.copyfile(args.json, RECORDED_JSON)
    if args.flood_json is not None and not args.check:
        shutil.copyfile(args.flood_json, FLOOD_JSON)
    if args.coverage_json is not None and not args.check:
        summary = coverage_summary(json.loads(args.coverage_json.read_text()) | {"command": args.coverage_command})
        COVERAGE_JSON.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    page = args.page.read_text()
    wanted = render_page(page, json.loads(RECORDED_JSON.read_text()), json.loads(FLOOD_JSON.read_text()),
                         json.loads(COVERAGE_JSON.read_text()))
    if args.check:
        if page != wanted:
            print(f"{args.page} differs from the recorded figures: run `python -m tests.faults.soak_report`")
            return 1
        return 0
    args.page.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
