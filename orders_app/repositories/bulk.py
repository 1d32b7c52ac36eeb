"""Many rows in one statement: a JSON document expanded by JSON_TABLE (MariaDB 10.6+, MySQL 8).

A batch sends one escaped string instead of one driver-side literal per value — 3x faster end to end
than executemany in the worker's measurements. Amounts travel as decimal strings and land in
DECIMAL(38,18) exactly; JSON null becomes NULL.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from orders_app import money
from orders_app.errors import invariant


def json_rows(rows: Sequence[Sequence[object]]) -> str:
    return json.dumps(rows, separators=(",", ":"), default=_json_value)


def _json_value(value: object) -> str:
    if isinstance(value, Decimal):
        text_value = format(value, "f")
        invariant(money.plain_fits_database(text_value), f"{value} does not fit DECIMAL(38,18)")
        return text_value
    raise TypeError(f"cannot send {type(value).__name__} in a JSON batch")


def json_table(*columns: str) -> str:
    """JSON_TABLE over :rows, each row a JSON array; `columns` are "name TYPE" in array order."""
    specs = ", ".join(f"{spec} PATH '$[{index}]' ERROR ON ERROR" for index, spec in enumerate(columns))
    return f"JSON_TABLE(:rows, '$[*]' COLUMNS(ord FOR ORDINALITY, {specs})) AS j"


def ids_by_market_seq(session, statement, keys) -> dict[tuple[int, int], int]:
    """{(market_id, seq): id} of rows a batch just inserted with consecutive sequence numbers, read back
    through their unique (market_id, seq) key (no RETURNING in MySQL): `statement` selects `id, seq` for
    :market_id and :low..:high, run once per market."""
    ranges: dict[int, tuple[int, int]] = {}
    for market_id, seq in keys:
        low, high = ranges.get(market_id, (seq, seq))
        ranges[market_id] = (min(low, seq), max(high, seq))
    ids: dict[tuple[int, int], int] = {}
    for market_id, (low, high) in ranges.items():
        ids.update(((market_id, seq), row_id) for row_id, seq in session.execute(
            statement, {"market_id": market_id, "low": low, "high": high}))
    return ids
