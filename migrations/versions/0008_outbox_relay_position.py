"""outbox relay position

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 10:00:00

The relay records how far it has published as one id (every outbox row at or below it is published, or
was never committed) instead of stamping `published_at` on each row it sends. The upgrade starts the
position below the first unpublished row; the downgrade stamps the rows the position covered, so the
per-row marks are complete again.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbox_relay_position',
        sa.Column('id', sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column('published_through', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', mysql.DATETIME(fsp=3), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        mysql_engine='InnoDB',
    )
    op.execute(
        "INSERT INTO outbox_relay_position (id, published_through, updated_at) "
        "SELECT 1, COALESCE((SELECT MIN(id) - 1 FROM outbox WHERE published_at IS NULL), "
        "(SELECT MAX(id) FROM outbox), 0), NOW(3)")


def downgrade() -> None:
    op.execute(
        "UPDATE outbox SET published_at = NOW(3) WHERE published_at IS NULL "
        "AND id <= (SELECT published_through FROM outbox_relay_position WHERE id = 1)")
    op.drop_table('outbox_relay_position')
