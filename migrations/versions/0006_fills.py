"""a user's fills by index

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:40:00

`GET /api/fills` reads a user's trades newest first: one index per side of a trade (user, id), so each
side is walked backwards and stops at the page's limit instead of scanning every trade. Indexes only:
no row changes, and the downgrade drops them.
"""
from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_trades_buyer', 'trades', ['buyer_user_id', 'id'])
    op.create_index('ix_trades_seller', 'trades', ['seller_user_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_trades_seller', table_name='trades')
    op.drop_index('ix_trades_buyer', table_name='trades')
