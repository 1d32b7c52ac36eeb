"""A version-1 database upgrades to pairs and fees without changing a row, and downgrades back.

The database is built at revision 0002 (the schema the version-1 worker wrote) on a scratch database of the
test server, filled with the shapes version-1 code wrote (users, keys, deposits, holds, a partial fill, its
trade, ledger rows, outbox rows), then migrated by `alembic` as an operator runs it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orders_app.processes import ROOT_DIR
from tests.support.reconcile import reconcile_cli

pytestmark = pytest.mark.slow
VERSION_1 = "0002"
# Every table version 1 had, with its primary key: each of their rows must come through unchanged.
VERSION_1_TABLES = {"users": "id", "api_keys": "id", "assets": "symbol", "markets": "id",
                    "market_sequences": "market_id", "market_state": "market_id", "accounts": "user_id, asset",
                    "ledger_entries": "id", "orders": "id", "trades": "id", "outbox": "id",
                    "order_amendments": "id"}
NOW = "2025-07-14 16:53:01.077"

VERSION_1_ROWS = [
    "INSERT INTO users (id, name, created_at) VALUES (1, 'alice', :now), (2, 'bob', :now)",
    "INSERT INTO api_keys (user_id, key_hash, created_at) VALUES (1, REPEAT('a', 64), :now), "
    "(2, REPEAT('b', 64), :now)",
    "INSERT INTO accounts (user_id, asset, available, locked, updated_at) VALUES "
    "(1, 'USD', 900, 50, :now), (1, 'BTC', 0.5, 0, :now), (2, 'BTC', 1, 0.5, :now), (2, 'USD', 50, 0, :now)",
    "INSERT INTO ledger_entries (user_id, asset, delta_available, delta_locked, reason, order_id, trade_id, "
    "created_at) VALUES (1, 'USD', 1000, 0, 'deposit', NULL, NULL, :now), "
    "(2, 'BTC', 2, 0, 'deposit', NULL, NULL, :now),"
    "(1, 'USD', -100, 100, 'order_hold', 1, NULL, :now), (2, 'BTC', -1, 1, 'order_hold', 2, NULL, :now),"
    "(1, 'USD', 0, -50, 'trade_buy', 1, 1, :now), (1, 'BTC', 0.5, 0, 'trade_buy', 1, 1, :now),"
    "(2, 'BTC', 0, -0.5, 'trade_sell', 2, 1, :now), (2, 'USD', 50, 0, 'trade_sell', 2, 1, :now)",
    "INSERT INTO orders (id, market_id, user_id, side, type, time_in_force, post_only, price, quantity, "
    "quote_quantity, filled_quantity, filled_quote, locked_amount, status, status_reason, client_order_id, seq, "
    "queue_seq, request_id, created_at, updated_at) VALUES "
    "(1, 1, 1, 'buy', 'limit', 'GTC', 0, 100, 1, NULL, 0.5, 50, 50, 'partially_filled', NULL, 'abc-1', 1, NULL, "
    "'req-1', :now, :now), "
    "(2, 1, 2, 'sell', 'limit', 'GTC', 0, 100, 1, NULL, 0.5, 50, 0.5, 'partially_filled', NULL, NULL, 2, NULL, "
    "'req-2', :now, :now), "
    "(3, 2, 2, 'sell', 'limit', 'IOC', 0, 7, 3, NULL, 0, 0, 0, 'cancelled', 'ioc', NULL, 1, NULL, NULL, :now, :now)",
    "INSERT INTO trades (id, market_id, price, quantity, buy_order_id, sell_order_id, buyer_user_id, "
    "seller_user_id, taker_side, seq, match_index, created_at) VALUES (1, 1, 100, 0.5, 1, 2, 1, 2, 'sell', 2, 0, :now)",
    "INSERT INTO outbox (topic, message_key, market_id, seq, order_id, event_type, payload, created_at, "
    "published_at) VALUES ('order-events', 'BTC', 1, 1, 1, 'order_placed', '{}', :now, :now), "
    "('order-events', 'BTC', 1, 2, 2, 'order_placed', '{}', :now, :now), "
    "('trade-events', 'BTC', NULL, NULL, NULL, 'trade', '{}', :now, NULL)",
    "UPDATE market_sequences SET last_seq = 2 WHERE market_id = 1",
    "UPDATE market_state SET last_seq = 2 WHERE market_id = 1",
    "UPDATE market_sequences SET last_seq = 1 WHERE market_id = 2",
    "UPDATE market_state SET last_seq = 1 WHERE market_id = 2",
]


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "QUOTE_CURRENCY": "USD"}
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT_DIR, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture()
def version_1_database(stack_env):
    """A scratch database at the version-1 schema, holding version-1 rows; yields (url, engine)."""
    server = make_url(stack_env["DATABASE_URL"])
    name = f"orders_v1_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        result = alembic(url, "upgrade", VERSION_1)
        assert result.returncode == 0, result.stderr
        with engine.begin() as connection:
            for statement in VERSION_1_ROWS:
                connection.execute(text(statement), {"now": NOW})
        yield url, engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()


def snapshot(engine, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of every version-1 table, by primary key, restricted to `columns` (default: all it has now)."""
    rows = {}
    with engine.connect() as connection:
        for table, key in VERSION_1_TABLES.items():
            names = (columns or {}).get(table) or [
                row[0] for row in connection.execute(text(f"SHOW COLUMNS FROM {table}"))]
            rows[table] = [tuple(row) for row in connection.execute(
                text(f"SELECT {', '.join(names)} FROM {table} ORDER BY {key}"))]
    return rows


def columns_of(engine) -> dict[str, list[str]]:
    with engine.connect() as connection:
        return {table: [row[0] for row in connection.execute(text(f"SHOW COLUMNS FROM {table}"))]
                for table in VERSION_1_TABLES}


def test_a_version_1_database_upgrades_without_changing_a_row_and_reconciles_with_the_fee_account(
        version_1_database):
    url, engine = version_1_database
    columns, before = columns_of(engine), snapshot(engine)
    assert len(before["orders"]) == 3 and len(before["trades"]) == 1 and len(before["ledger_entries"]) == 8

    result = alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stderr

    after = snapshot(engine, columns)
    fee_user = [row for row in after["users"] if row not in before["users"]]
    assert after | {"users": before["users"]} == before
    assert [name for _, name, _ in fee_user] == ["exchange fee account"]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT user_id FROM fee_account")).scalar() == fee_user[0][0]
        assert connection.execute(text("SELECT id, fee, fee_asset FROM orders ORDER BY id")).all() == [
            (1, 0, "BTC"), (2, 0, "USD"), (3, 0, "USD")]
        assert connection.execute(text(
            "SELECT CONCAT(symbol, '-', quote_asset), status, maker_fee_rate, taker_fee_rate FROM markets ORDER BY id"
        )).all() == [("BTC-USD", "trading", 0, 0), ("ETH-USD", "trading", 0, 0)]
        assert connection.execute(text("SELECT buyer_fee, seller_fee FROM trades")).all() == [(0, 0)]
    assert "reconciliation: OK" in reconcile_cli(url)


def test_the_upgrade_downgrades_back_to_the_same_rows_and_one_market_per_base(version_1_database):
    url, engine = version_1_database
    assert alembic(url, "upgrade", "0004").returncode == 0
    before = snapshot(engine)
    assert alembic(url, "upgrade", "head").returncode == 0
    with engine.begin() as connection:  # a second market of BTC: version 1 cannot hold it
        connection.execute(text("INSERT INTO assets (symbol, scale) VALUES ('EUR', 14)"))
        connection.execute(text(
            "INSERT INTO markets (symbol, quote_asset, price_step, quantity_step, min_quantity, max_price, "
            "max_quantity, enabled) VALUES ('BTC', 'EUR', 0.01, 0.01, 0.01, 1000, 1000, 1)"))
    refused = alembic(url, "downgrade", "0004")
    assert refused.returncode != 0 and "BTC has several" in refused.stderr
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM markets WHERE quote_asset = 'EUR'"))
        connection.execute(text("DELETE FROM assets WHERE symbol = 'EUR'"))

    result = alembic(url, "downgrade", "0004")
    assert result.returncode == 0, result.stderr

    assert snapshot(engine) == before
    with engine.begin() as connection:
        with pytest.raises(Exception, match="Duplicate entry"):
            connection.execute(text(
                "INSERT INTO markets (symbol, quote_asset, price_step, quantity_step, min_quantity, max_price, "
                "max_quantity, enabled) VALUES ('BTC', 'ETH', 0.01, 0.01, 0.01, 1000, 1000, 1)"))
