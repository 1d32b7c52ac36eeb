"""pairs and fees

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:30:00

Markets become pairs: unique by (base, quote) instead of by base, so BTC-USD, BTC-EUR and ETH-BTC can
coexist (`symbol` stays the base asset; the name `BASE-QUOTE` is derived). Each market gets a status
(`trading` | `halted`) and maker/taker fee rates (0: version 1's behaviour). Orders record the fees they
paid and the asset they pay them in (what they receive); trades record the buyer's and the seller's fee.
Fees go to one system user, the fee account, created here and named by the one-row `fee_account` table.
Every version-1 row keeps its values; existing orders get fee 0 in the asset they receive.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

FEE_ACCOUNT_NAME = "exchange fee account"
ZERO = sa.text("0")


def upgrade() -> None:
    # The pair key serves the base asset's foreign key (its leftmost column), so the old unique can go.
    op.create_unique_constraint('uq_markets_pair', 'markets', ['symbol', 'quote_asset'])
    op.drop_index('symbol', table_name='markets')
    op.add_column('markets', sa.Column('status', sa.String(length=8), nullable=False, server_default='trading'))
    op.add_column('markets', sa.Column('maker_fee_rate', sa.Numeric(38, 18), nullable=False, server_default=ZERO))
    op.add_column('markets', sa.Column('taker_fee_rate', sa.Numeric(38, 18), nullable=False, server_default=ZERO))
    op.add_column('orders', sa.Column('fee', sa.Numeric(38, 18), nullable=False, server_default=ZERO))
    op.add_column('orders', sa.Column('fee_asset', sa.String(length=16), nullable=True))
    op.execute("UPDATE orders o JOIN markets m ON m.id = o.market_id "
               "SET o.fee_asset = IF(o.side = 'buy', m.symbol, m.quote_asset)")
    op.add_column('trades', sa.Column('buyer_fee', sa.Numeric(38, 18), nullable=False, server_default=ZERO))
    op.add_column('trades', sa.Column('seller_fee', sa.Numeric(38, 18), nullable=False, server_default=ZERO))
    op.create_table(
        'fee_account',
        sa.Column('id', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('user_id', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('id = 1', name='ck_fee_account_one_row'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute(sa.text("INSERT INTO users (name) VALUES (:name)").bindparams(name=FEE_ACCOUNT_NAME))
    op.execute("INSERT INTO fee_account (id, user_id) VALUES (1, LAST_INSERT_ID())")


def downgrade() -> None:
    bind = op.get_bind()
    shared = bind.execute(sa.text("SELECT symbol FROM markets GROUP BY symbol HAVING COUNT(*) > 1")).scalars().all()
    if shared:
        raise RuntimeError(f"cannot downgrade: version 1 allows one market per base asset, and {', '.join(shared)} "
                           f"has several; remove the extra markets first")
    fee_user = bind.execute(sa.text("SELECT user_id FROM fee_account WHERE id = 1")).scalar()
    op.drop_table('fee_account')
    # The fee account's balances (if any) stay: version 1's conservation counts every user's accounts.
    if fee_user is not None and not bind.execute(
            sa.text("SELECT 1 FROM accounts WHERE user_id = :user_id LIMIT 1"), {"user_id": fee_user}).first():
        bind.execute(sa.text("DELETE FROM users WHERE id = :user_id"), {"user_id": fee_user})
    op.drop_column('trades', 'seller_fee')
    op.drop_column('trades', 'buyer_fee')
    op.drop_column('orders', 'fee_asset')
    op.drop_column('orders', 'fee')
    op.drop_column('markets', 'taker_fee_rate')
    op.drop_column('markets', 'maker_fee_rate')
    op.drop_column('markets', 'status')
    op.create_unique_constraint('symbol', 'markets', ['symbol'])
    op.drop_constraint('uq_markets_pair', 'markets', type_='unique')
