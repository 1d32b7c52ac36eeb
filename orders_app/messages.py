"""Commands (what a caller asks for) and events (what happened), as frozen dataclasses.

Commands carry already-parsed values (`Decimal` amounts, validated enums); events are what goes to
Kafka through `messaging/codec.py`, the only JSON translation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

EVENT_SCHEMA_VERSION = 1
MARKET_COMMAND_TYPES = frozenset({"order_placed", "cancel_requested", "order_amended"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by API key) or the admin (by token)."""
    user_id: int | None
    is_admin: bool = False

    def may_act_for(self, user_id: int) -> bool:
        return self.is_admin or self.user_id == user_id


@dataclass(frozen=True)
class PlaceOrder:
    user_id: int
    side: str  # "buy" | "sell"
    symbol: str
    order_type: str = "limit"  # "limit" | "market"
    time_in_force: str = "GTC"
    post_only: bool = False
    price: Decimal | None = None
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    client_order_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class RequestCancel:
    order_id: int
    request_id: str | None = None


@dataclass(frozen=True)
class RequestCancelByClientId:
    user_id: int
    client_order_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class RequestCancelAll:
    """Cancel every open order of a user, or of a user in one market (`market`: a name or a base asset)."""
    user_id: int
    market: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Fund:
    """A deposit (direction "deposit") or withdrawal ("withdrawal") by the admin."""
    user_id: int
    asset: str
    amount: Decimal
    direction: str


@dataclass(frozen=True)
class OrderQuery:
    user_id: int | None
    symbol: str | None = None
    side: str | None = None
    status: str | None = None
    limit: int = 100
    before_id: int | None = None


@dataclass(frozen=True)
class FillQuery:
    user_id: int
    market: str | None = None
    order_id: int | None = None
    limit: int = 100
    before_id: int | None = None


@dataclass(frozen=True)
class MarketEvent:
    """One sequenced command for a market's matching worker: one of MARKET_COMMAND_TYPES."""
    event_type: str
    symbol: str
    market_id: int
    seq: int
    order_id: int
    order: dict  # the order as the API renders it (strings for amounts)
    request_id: str | None = None
    version: int = EVENT_SCHEMA_VERSION
    market: str | None = None  # the market's name; absent from records written before markets were pairs


@dataclass(frozen=True)
class MarketCommand:
    """A market command as the worker applies it: what a `MarketEvent` record, or the outbox row of that
    sequence, says to do. `record` is the Kafka record it was read from (None when read from the database)."""
    seq: int
    event_type: str  # one of MARKET_COMMAND_TYPES
    order_id: int
    request_id: str | None = None
    record: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TradeEvent:
    """One trade, as `trade-events` carries it to downstream consumers."""
    id: int
    symbol: str
    price: Decimal
    quantity: Decimal
    buy_order_id: int
    sell_order_id: int
    taker_side: str
    seq: int  # the market command that made it
    timestamp: str  # ISO 8601, UTC, milliseconds
    version: int = EVENT_SCHEMA_VERSION
    market: str = ""
    buyer_fee: Decimal = Decimal(0)  # in the base asset
    buyer_fee_asset: str = ""
    seller_fee: Decimal = Decimal(0)  # in the quote asset
    seller_fee_asset: str = ""
