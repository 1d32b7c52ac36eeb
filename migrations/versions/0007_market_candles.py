"""market candles

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00

Candles per market, interval (1m, 5m, 15m, 1h, 4h, 1d) and UTC-aligned start, which the matching worker
keeps current in each settling transaction, so the ticker and candle endpoints never read all of a
market's trades. The upgrade builds them from the trades already recorded, a market at a time; the
statement is a copy of the worker's (repositories/candles.py) as it was when this revision was written,
so that later changes there cannot change what this revision does.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

INTERVALS_S = (60, 300, 900, 3600, 14400, 86400)
EPOCH = "TIMESTAMP('1970-01-01 00:00:00')"
BACKFILL = sa.text(
    "INSERT INTO candles (market_id, interval_s, open_time, open_price, high_price, low_price, close_price, "
    "volume, quote_volume, trade_count, first_trade_id, last_trade_id) "
    "SELECT g.market_id, g.interval_s, g.bucket, o.price, g.top, g.bottom, c.price, g.qty, g.quote_qty, g.n, "
    "g.first_id, g.last_id FROM ("
    f"  SELECT t.market_id, i.interval_s, TIMESTAMPADD(SECOND, TIMESTAMPDIFF(SECOND, {EPOCH}, t.created_at) "
    f"    DIV i.interval_s * i.interval_s, {EPOCH}) AS bucket, "
    "    MAX(t.price) AS top, MIN(t.price) AS bottom, SUM(t.quantity) AS qty, SUM(t.price * t.quantity) AS quote_qty, "
    "    COUNT(*) AS n, MIN(t.id) AS first_id, MAX(t.id) AS last_id "
    "  FROM trades t CROSS JOIN (" + " UNION ALL ".join(f"SELECT {s} AS interval_s" for s in INTERVALS_S) + ") i "
    "  WHERE t.market_id = :market_id "
    "  GROUP BY t.market_id, i.interval_s, bucket"
    ") g JOIN trades o ON o.id = g.first_id JOIN trades c ON c.id = g.last_id")


def upgrade() -> None:
    op.create_table(
        'candles',
        sa.Column('market_id', sa.Integer(), nullable=False),
        sa.Column('interval_s', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('open_time', mysql.DATETIME(fsp=3), nullable=False),
        sa.Column('open_price', sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column('high_price', sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column('low_price', sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column('close_price', sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column('volume', sa.Numeric(precision=65, scale=18), nullable=False),
        sa.Column('quote_volume', sa.Numeric(precision=65, scale=18), nullable=False),
        sa.Column('trade_count', sa.BigInteger(), nullable=False),
        sa.Column('first_trade_id', sa.BigInteger(), nullable=False),
        sa.Column('last_trade_id', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['market_id'], ['markets.id']),
        sa.PrimaryKeyConstraint('market_id', 'interval_s', 'open_time'),
    )
    connection = op.get_bind()
    for market_id in connection.execute(sa.text("SELECT id FROM markets ORDER BY id")).scalars().all():
        connection.execute(BACKFILL, {"market_id": market_id})


def downgrade() -> None:
    op.drop_table('candles')
