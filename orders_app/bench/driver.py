"""The database drivers side by side: ``python -m orders_app.bench driver [--rows 5000] [--repeat 10]``.

The same statements through mysqlclient (`mysql+mysqldb`) and PyMySQL (`mysql+pymysql`) on the database in
DATABASE_URL (whichever driver it names), measured in this process's CPU time: other load on a shared machine
inflates that far less than wall-clock figures. Reads rows of `orders` as they are (run `e2e` first):
  - `SELECT *` of up to --rows orders, --repeat times: CPU per row fetched (the driver parses every value);
  - one-row primary-key SELECTs of the same orders: CPU per statement (round trip, packet, result set).
"""
from __future__ import annotations

import argparse
import os
import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

DRIVERS = ("mysqldb", "pymysql")
POINT_SELECTS_MAX = 2_000
_WIDE = text("SELECT * FROM orders ORDER BY id LIMIT :rows")
_POINT = text("SELECT id, status, price, quantity, filled_quantity, created_at FROM orders WHERE id = :id")


def measure(url: URL, rows: int, repeat: int) -> dict[str, float] | None:
    """CPU µs per row fetched and per one-row SELECT through `url`'s driver; None if `orders` is empty."""
    engine = create_engine(url, isolation_level="READ COMMITTED")
    try:
        with engine.connect() as connection:
            ids = [row[0] for row in connection.execute(_WIDE, {"rows": rows})]
            if not ids:
                return None
            started, fetched = time.process_time(), 0
            for _ in range(repeat):
                fetched += len(connection.execute(_WIDE, {"rows": rows}).all())
            per_row = (time.process_time() - started) / fetched
            points = ids[:POINT_SELECTS_MAX]
            started = time.process_time()
            for order_id in points:
                connection.execute(_POINT, {"id": order_id}).one()
            per_statement = (time.process_time() - started) / len(points)
    finally:
        engine.dispose()
    return {"rows": len(ids), "us_per_row": per_row * 1e6, "us_per_statement": per_statement * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders_app.bench driver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    url = make_url(os.environ["DATABASE_URL"])
    for driver in DRIVERS:
        figures = measure(url.set(drivername=f"{url.get_backend_name()}+{driver}"), args.rows, args.repeat)
        if figures is None:
            print("no orders to read: run `python -m orders_app.bench e2e` on this database first")
            return 1
        print(f"{driver:8} {figures['us_per_row']:7.1f} µs CPU per order row fetched ({figures['rows']:,} rows "
              f"x {args.repeat}), {figures['us_per_statement']:7.1f} µs CPU per one-row primary-key SELECT")
    return 0
