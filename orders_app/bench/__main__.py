"""Benchmarks: `python -m orders_app.bench e2e|rate|soak|book|engine|worker|stream|driver|report [options]` (each
with --help)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "engine":
        from orders_app.bench import engine
        sys.argv = ["orders_app.bench.engine", *argv[1:]]
        engine.main()
        return 0
    if argv and argv[0] == "worker":
        from orders_app.bench import worker
        return worker.main(argv[1:])
    if argv and argv[0] == "stream":
        from orders_app.bench import stream
        return stream.main(argv[1:])
    if argv and argv[0] == "driver":
        from orders_app.bench import driver
        return driver.main(argv[1:])
    if argv and argv[0] == "rate":
        from orders_app.bench import rate
        return rate.main(argv[1:])
    if argv and argv[0] == "soak":
        from orders_app.bench import soak
        return soak.main(argv[1:])
    if argv and argv[0] == "report":
        from orders_app.bench import report
        return report.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m orders_app.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("e2e", "orders over HTTP until all are settled; ceiling and ratio"),
                            ("book", "the e2e load against books of growing size (table size -> orders/s)")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--orders", type=int, default=20_000 if name == "e2e" else 5_000)
        sub.add_argument("--concurrency", type=int, default=32)
        sub.add_argument("--users", type=int, default=64)
        sub.add_argument("--seed", type=int, default=1)
        sub.add_argument("--url", help="a running service (its worker must run); default: start both")
        if name == "e2e":
            sub.add_argument("--resting", type=int, default=0, help="resting orders seeded far from the price")
            sub.add_argument("--no-ceiling", dest="ceiling", action="store_false")
            sub.add_argument("--batch", type=int, default=1, choices=range(1, 21), metavar="1-20",
                             help="orders per request: more than 1 sends them to POST /api/orders/batch")
        else:
            sub.add_argument("--sizes", default="0,10000,100000")
    args = parser.parse_args(argv)
    if args.command == "e2e":
        from orders_app.bench.e2e import report_text, run, write_results
        figures = run(args)
        print(report_text(figures))
        json_path, svg_path = write_results(figures, "e2e")
        print(f"figures: {json_path}\nplot:    {svg_path}")
        return 0 if figures["reconciliation"] == "OK" else 1
    from orders_app.bench.book import run_book
    return run_book(args)


if __name__ == "__main__":
    sys.exit(main())
