"""Large books: the e2e load against markets holding 0, 10,000, 100,000 resting orders (seeded far from the
price, so the load never trades with them) — accept and match costs must not grow with the book.

    python -m orders_app.bench book [--sizes 0,10000,100000] [--orders 5000] [--concurrency 32]
"""
from __future__ import annotations

import argparse

from orders_app.bench.e2e import run, save_figures


def run_book(args) -> int:
    rows = []
    for size in (int(value) for value in args.sizes.split(",")):
        figures = run(argparse.Namespace(**vars(args), resting=size, ceiling=False))
        figures.pop("_series")
        rows.append(figures)
        print(_table(rows), flush=True)
    print(f"figures: {save_figures(rows, 'book')}")
    return 0 if all(row["reconciliation"] == "OK" for row in rows) else 1


def _table(rows: list[dict]) -> str:
    lines = ["| resting orders | accepted orders/s | p99 accept | settled orders/s | settlement lag p99 | "
             "worker RSS | reconciliation |", "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        rss = row.get("worker_rss_mib_after")
        lines.append(f"| {row['resting_orders']:,} | {row['accepted_orders_per_s']:,.0f} | "
                     f"{row['accept_latency_ms']['p99']} ms | {row['settled_orders_per_s']:,.0f} | "
                     f"{row['settlement_lag_ms']['p99']} ms | {f'{rss:.0f} MiB' if rss else '—'} | "
                     f"{row['reconciliation']} |")
    return "\n".join(lines)
