"""Migration 0006 adds the per-side indexes of a user's trades, and its downgrade removes them."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect

from orders_app.processes import ROOT_DIR

pytestmark = pytest.mark.slow
FILLS_INDEXES = {"ix_trades_buyer": ["buyer_user_id", "id"], "ix_trades_seller": ["seller_user_id", "id"]}


def _alembic(url: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT_DIR, env={**os.environ, "DATABASE_URL": url},
                   check=True, capture_output=True, timeout=120)


def _trade_indexes(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        return {index["name"]: index["column_names"] for index in inspect(engine).get_indexes("trades")}
    finally:
        engine.dispose()


def test_the_fills_indexes_come_with_0006_and_go_with_its_downgrade(empty_database_url):
    _alembic(empty_database_url, "upgrade", "0006")
    assert FILLS_INDEXES.items() <= _trade_indexes(empty_database_url).items()
    _alembic(empty_database_url, "downgrade", "0005")
    assert not set(FILLS_INDEXES) & set(_trade_indexes(empty_database_url))
    _alembic(empty_database_url, "upgrade", "0006")
    assert FILLS_INDEXES.items() <= _trade_indexes(empty_database_url).items()
