"""order limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:55:00

What bounds the resting orders a user can create: a market's minimum notional (price x quantity of a
limit order; 0 = none) and an index that counts a user's open orders by walking only those.
Existing markets get 0, so their behaviour is unchanged.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('markets', sa.Column('min_notional', sa.Numeric(precision=38, scale=18), nullable=False,
                                       server_default='0'))
    op.create_index('ix_orders_user_status', 'orders', ['user_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_user_status', table_name='orders')
    op.drop_column('markets', 'min_notional')
