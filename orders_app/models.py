"""SQLAlchemy 2 typed models: the system of record.

Amount columns are DECIMAL(38,18) and map to `Decimal`. Times are UTC, millisecond precision.
`orders.seq` and `outbox.seq` share one per-market sequence handed out by `market_sequences`: every
command for a market (a placement, a cancel request) takes the next number while holding that row's lock,
so commit order equals sequence order and the matching worker can detect a gap and fill it from here.
`market_state.last_seq` is the worker's applied sequence (locked in its settling transaction).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Amount = Numeric(38, 18, asdecimal=True)
Volume = Numeric(65, 18, asdecimal=True)
Timestamp = DATETIME(fsp=3)
NOW = text("CURRENT_TIMESTAMP(3)")

OPEN_STATUSES = ("pending", "partially_filled")
FINAL_STATUSES = ("completed", "cancelled", "rejected")


class Base(DeclarativeBase):
    pass


class Asset(Base):
    __tablename__ = "assets"
    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    scale: Mapped[int] = mapped_column(SmallInteger)  # fractional digits of an amount of this asset


class Market(Base):
    """A pair: `symbol` (the base asset, as version 1 named it) priced in `quote_asset`; its name is
    `BASE-QUOTE`. Fee rates apply to trades settled after they change; a halted market takes no new orders."""
    __tablename__ = "markets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))  # base asset
    quote_asset: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"))
    price_step: Mapped[Decimal] = mapped_column(Amount)
    quantity_step: Mapped[Decimal] = mapped_column(Amount)
    min_quantity: Mapped[Decimal] = mapped_column(Amount)
    max_price: Mapped[Decimal] = mapped_column(Amount)
    max_quantity: Mapped[Decimal] = mapped_column(Amount)
    min_notional: Mapped[Decimal] = mapped_column(Amount, server_default="0")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(8), server_default="trading")  # "trading" | "halted"
    maker_fee_rate: Mapped[Decimal] = mapped_column(Amount, server_default="0")
    taker_fee_rate: Mapped[Decimal] = mapped_column(Amount, server_default="0")
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=NOW)
    __table_args__ = (UniqueConstraint("symbol", "quote_asset", name="uq_markets_pair"),)


class FeeAccount(Base):
    """One row (id 1): the user whose accounts receive every fee (created by the migration, never a login)."""
    __tablename__ = "fee_account"
    __table_args__ = (CheckConstraint("id = 1", name="ck_fee_account_one_row"),)
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class MarketSequence(Base):
    """The API's per-market command counter (see module docstring)."""
    __tablename__ = "market_sequences"
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class MarketState(Base):
    """The matching worker's applied sequence per market."""
    __tablename__ = "market_state"
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=NOW)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=NOW)


class ApiKey(Base):
    """Only the SHA-256 of a key is stored; keys are 256-bit random, so no salt or slow hash is needed."""
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=NOW)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ApiKeyGeneration(Base):
    """One row (id 1) counting key revocations: processes that cached keys re-read them when it moves."""
    __tablename__ = "api_key_generation"
    __table_args__ = (CheckConstraint("id = 1", name="ck_api_key_generation_one_row"),)
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(Timestamp, server_default=NOW)


class Account(Base):
    __tablename__ = "accounts"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), ForeignKey("assets.symbol"), primary_key=True)
    available: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    locked: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=NOW)
    __table_args__ = (
        CheckConstraint("available >= 0", name="ck_accounts_available_nonnegative"),
        CheckConstraint("locked >= 0", name="ck_accounts_locked_nonnegative"),
    )


class LedgerEntry(Base):
    """Append-only journal: an account's balance is the sum of its entries."""
    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    asset: Mapped[str] = mapped_column(String(16))
    delta_available: Mapped[Decimal] = mapped_column(Amount)
    delta_locked: Mapped[Decimal] = mapped_column(Amount)
    reason: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    trade_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=NOW)
    __table_args__ = (Index("ix_ledger_account", "user_id", "asset", "id"),
                      Index("ix_ledger_reason_asset", "reason", "asset"))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    side: Mapped[str] = mapped_column(String(4))  # "buy" | "sell" (the API's order_type)
    type: Mapped[str] = mapped_column(String(8))  # "limit" | "market"
    time_in_force: Mapped[str] = mapped_column(String(3))
    post_only: Mapped[bool] = mapped_column(Boolean, default=False)
    price: Mapped[Decimal | None] = mapped_column(Amount)
    quantity: Mapped[Decimal | None] = mapped_column(Amount)  # None for a market buy by quote_quantity
    quote_quantity: Mapped[Decimal | None] = mapped_column(Amount)
    filled_quantity: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    filled_quote: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    locked_amount: Mapped[Decimal] = mapped_column(Amount)  # the hold still reserved for this order
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(32))  # why it became final
    fee: Mapped[Decimal] = mapped_column(Amount, server_default="0")  # sum of its trades' fees
    fee_asset: Mapped[str | None] = mapped_column(String(16))  # what it receives: base if buy, quote if sell
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)  # the placement command
    queue_seq: Mapped[int | None] = mapped_column(BigInteger)  # time priority once an amendment moved it back
    cancel_requested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    __table_args__ = (
        UniqueConstraint("user_id", "client_order_id", name="uq_orders_user_client_order_id"),
        UniqueConstraint("market_id", "seq", name="uq_orders_market_seq"),
        Index("ix_orders_user_id", "user_id", "id"),
        Index("ix_orders_book", "market_id", "side", "status", "price", "seq"),
        Index("ix_orders_status", "status", "id"),
        Index("ix_orders_user_status", "user_id", "status"),
        CheckConstraint("locked_amount >= 0", name="ck_orders_locked_nonnegative"),
        CheckConstraint("filled_quantity >= 0", name="ck_orders_filled_nonnegative"),
    )


class OrderAmendment(Base):
    """MERGE_SAME_PRICE_ORDERS: quantity (and hold) added to a pending buy by a later order of its user.
    The order row carries the merged quantity at once; until the worker applies the amendment (its `seq`)
    the book holds the order at its old priority with the old quantity."""
    __tablename__ = "order_amendments"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    market_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    added_quantity: Mapped[Decimal] = mapped_column(Amount)
    added_hold: Mapped[Decimal] = mapped_column(Amount)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    __table_args__ = (UniqueConstraint("market_id", "seq", name="uq_order_amendments_market_seq"),)


class Trade(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"))
    price: Mapped[Decimal] = mapped_column(Amount)
    quantity: Mapped[Decimal] = mapped_column(Amount)
    buy_order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    sell_order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    buyer_user_id: Mapped[int] = mapped_column(BigInteger)
    seller_user_id: Mapped[int] = mapped_column(BigInteger)
    taker_side: Mapped[str] = mapped_column(String(4))
    buyer_fee: Mapped[Decimal] = mapped_column(Amount, server_default="0")  # in the base asset
    seller_fee: Mapped[Decimal] = mapped_column(Amount, server_default="0")  # in the quote asset
    seq: Mapped[int] = mapped_column(BigInteger)  # the market command that produced it
    match_index: Mapped[int] = mapped_column(Integer)  # its position among that command's trades
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    __table_args__ = (Index("ix_trades_market", "market_id", "id"),
                      # a user's fills, newest first (GET /api/fills): one walk per side
                      Index("ix_trades_buyer", "buyer_user_id", "id"),
                      Index("ix_trades_seller", "seller_user_id", "id"),
                      # a command's trades can be written once only: a replay fails instead of doubling
                      UniqueConstraint("market_id", "seq", "match_index", name="uq_trades_command_match"))


class OutboxEvent(Base):
    """Events committed with the state change they describe; published to Kafka after commit."""
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(200))
    message_key: Mapped[str] = mapped_column(String(64))
    market_id: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(BigInteger)  # market commands: the order they concern
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    published_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (
        UniqueConstraint("market_id", "seq", name="uq_outbox_market_seq"),
        Index("ix_outbox_unpublished", "published_at", "id"),
    )


class OutboxRelayPosition(Base):
    """How far the relay has published, as one id: every outbox row at or below `published_through` is
    published or was never committed (OUTBOX_PUBLISHER=relay; the API's publisher stamps rows instead)."""
    __tablename__ = "outbox_relay_position"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    published_through: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class Candle(Base):
    """A market's trades aggregated per interval (60 s ... 1 day, aligned in UTC), maintained by the worker in the
    settling transaction: open and close are the prices of the interval's first and last trade by id, so a
    merge of two partial candles is exact whatever order they arrive in."""
    __tablename__ = "candles"
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"), primary_key=True)
    interval_s: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    open_time: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    open_price: Mapped[Decimal] = mapped_column(Amount)
    high_price: Mapped[Decimal] = mapped_column(Amount)
    low_price: Mapped[Decimal] = mapped_column(Amount)
    close_price: Mapped[Decimal] = mapped_column(Amount)
    # Sums of many DECIMAL(38,18) values: 47 integer digits, so no busy interval can overflow them.
    volume: Mapped[Decimal] = mapped_column(Volume)
    quote_volume: Mapped[Decimal] = mapped_column(Volume)
    trade_count: Mapped[int] = mapped_column(BigInteger)
    first_trade_id: Mapped[int] = mapped_column(BigInteger)
    last_trade_id: Mapped[int] = mapped_column(BigInteger)
