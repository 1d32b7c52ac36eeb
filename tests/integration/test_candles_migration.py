"""The candles migration builds the candles of the trades a database already holds, and can be undone."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, inspect, text

from orders_app.processes import ROOT_DIR
from orders_app.services.candles import INTERVALS_S
from tests.support.databases import scratch_database
from tests.support.trades import brute_force_candles

pytestmark = pytest.mark.slow
CANDLES_REVISION, PREVIOUS_REVISION = "0007", "0006"
MIGRATION_TIMEOUT_S = 120
TRADES = [  # (market_id, price, quantity, created_at): the default markets BTC (1) and ETH (2), edges included
    (1, Decimal("100.5"), Decimal("0.25"), datetime(2026, 3, 1, 23, 59, 59, 999000)),
    (1, Decimal("99"), Decimal("1"), datetime(2026, 3, 2, 0, 0)),
    (2, Decimal("7.000001"), Decimal("0.00000001"), datetime(2026, 3, 2, 0, 0, 30)),
    (1, Decimal("101"), Decimal("2"), datetime(2026, 3, 1, 23, 59, 1)),  # a later id with an earlier time
    (1, Decimal("98.75"), Decimal("3"), datetime(2026, 3, 2, 3, 59, 59)),
]


def _alembic(url: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT_DIR, check=True, timeout=MIGRATION_TIMEOUT_S,
                   env={**os.environ, "DATABASE_URL": url}, capture_output=True)


@pytest.fixture()
def database(stack_env):
    """A database of its own on the suite's server: migrated step by step here."""
    with scratch_database(stack_env["DATABASE_URL"], "orders_candles") as url:
        engine = create_engine(url)
        yield url, engine
        engine.dispose()


def test_upgrading_builds_exact_candles_from_existing_trades_and_downgrading_removes_them(database):
    url, engine = database
    _alembic(url, "upgrade", PREVIOUS_REVISION)
    with engine.begin() as connection:
        for seq, (market_id, price, quantity, created_at) in enumerate(TRADES, start=1):
            connection.execute(text(
                "INSERT INTO trades (market_id, price, quantity, buy_order_id, sell_order_id, buyer_user_id, "
                "seller_user_id, taker_side, seq, match_index, created_at) "
                "VALUES (:market_id, :price, :quantity, 0, 0, 0, -1, 'buy', :seq, 0, :created_at)"),
                {"market_id": market_id, "price": price, "quantity": quantity, "seq": seq, "created_at": created_at})
        trades = connection.execute(text("SELECT market_id, id, price, quantity, created_at FROM trades")).all()

    _alembic(url, "upgrade", CANDLES_REVISION)
    with engine.connect() as connection:
        for market_id in (1, 2):
            own = [(t.id, t.price, t.quantity, t.created_at) for t in trades if t.market_id == market_id]
            for interval_s in INTERVALS_S.values():
                stored = {row.open_time: tuple(row[1:]) for row in connection.execute(text(
                    "SELECT open_time, open_price, high_price, low_price, close_price, volume, quote_volume, "
                    "trade_count FROM candles WHERE market_id = :market_id AND interval_s = :interval_s"),
                    {"market_id": market_id, "interval_s": interval_s})}
                assert stored == brute_force_candles(own, interval_s), (market_id, interval_s)

    _alembic(url, "downgrade", PREVIOUS_REVISION)
    assert "candles" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM trades")).scalar() == len(TRADES)
