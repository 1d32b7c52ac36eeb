"""The soak's figures as a table, and the "Soak" section of docs/testing.md kept equal to them.

    python -m tests.faults.soak_report --json bench-results/soak.json   # record a run: copy it to docs/soak.json,
                                                                         # render its table into docs/testing.md
    python -m tests.faults.soak_report --check                          # exit 1 if the page differs from docs/soak.json
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


def render_table(figures: dict) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {name} | {' '.join(value.replace('|', '/').split())} |" for name, value in _rows(figures)]
    return "\n".join(lines)


def render_page(page: str, figures: dict) -> str:
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{render_table(figures)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak_report")
    parser.add_argument("--json", type=Path, help="a soak run's JSON to record as docs/soak.json")
    parser.add_argument("--check", action="store_true", help="only compare the page with docs/soak.json")
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    if args.json is not None and not args.check:
        shutil.copyfile(args.json, RECORDED_JSON)
    page = args.page.read_text()
    wanted = render_page(page, json.loads(RECORDED_JSON.read_text()))
    if args.check:
        if page != wanted:
            print(f"{args.page} differs from {RECORDED_JSON}: run `python -m tests.faults.soak_report`")
            return 1
        return 0
    args.page.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
