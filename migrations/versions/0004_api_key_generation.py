"""api key generation

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:35:00

One row counting API-key revocations: a rotation bumps it in its own transaction, and every API process
reads it at most once a second to drop the keys it cached, so a revoked key dies everywhere within about a
second without a query per request.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'api_key_generation',
        sa.Column('id', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('generation', sa.BigInteger(), nullable=False),
        sa.Column('changed_at', mysql.DATETIME(fsp=3), server_default=sa.text('CURRENT_TIMESTAMP(3)'),
                  nullable=False),
        sa.CheckConstraint('id = 1', name='ck_api_key_generation_one_row'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(table, [{'id': 1, 'generation': 0}])


def downgrade() -> None:
    op.drop_table('api_key_generation')
