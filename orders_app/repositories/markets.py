"""Markets, assets and the per-market command sequence."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from sqlalchemy import CursorResult, insert, select, text
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.orm import Session

from orders_app.errors import present
from orders_app.models import Asset, Market, MarketSequence, MarketState


@dataclass(frozen=True)
class MarketSpec:
    id: int
    symbol: str
    quote_asset: str
    price_step: Decimal
    quantity_step: Decimal
    min_quantity: Decimal
    max_price: Decimal
    max_quantity: Decimal
    min_notional: Decimal = Decimal(0)  # a limit order's price x quantity may not be below it

    @property
    def name(self) -> str:
        """The market's name, `BASE-QUOTE` (`BTC-USD`); `symbol` is its base asset."""
        return f"{self.symbol}-{self.quote_asset}"


def load_markets(session: Session) -> dict[str, MarketSpec]:
    rows = session.execute(select(Market).where(Market.enabled.is_(True)).order_by(Market.id)).scalars()
    return {m.symbol: MarketSpec(m.id, m.symbol, m.quote_asset, m.price_step.normalize(),
                                 m.quantity_step.normalize(), m.min_quantity.normalize(),
                                 m.max_price.normalize(), m.max_quantity.normalize(), m.min_notional.normalize())
            for m in rows}


def load_asset_scales(session: Session) -> dict[str, int]:
    return {a.symbol: a.scale for a in session.execute(select(Asset)).scalars()}


def next_seq(session: Session, market_id: int) -> int:
    """Take the market's next command number. The row lock is held until commit, so sequence numbers
    commit in order; LAST_INSERT_ID(expr) returns the new value without a second round trip."""
    return take_seqs(session, market_id, 1)


_TAKE_SEQS = text("UPDATE market_sequences SET last_seq = LAST_INSERT_ID(last_seq + :count) "
                  "WHERE market_id = :market_id")


def take_seqs(session: Session, market_id: int, count: int) -> int:
    """Take `count` consecutive command numbers (under the same lock as `next_seq`); returns the last.
    Plain SQL: on every order's path, where the ORM's bulk UPDATE cost 4x the CPU of the round trip."""
    result = cast(CursorResult, session.execute(_TAKE_SEQS, {"count": count, "market_id": market_id}))
    if result.rowcount != 1:
        raise LookupError(f"market {market_id} has no sequence row")
    return int(result.lastrowid)


def add(session: Session, *, symbol: str, quote_asset: str, base_scale: int, price_step: Decimal,
        quantity_step: Decimal, min_quantity: Decimal, max_price: Decimal, max_quantity: Decimal,
        min_notional: Decimal = Decimal(0)) -> int:
    """A new market (and its base asset if new), with both sequence rows."""
    session.execute(mysql_insert(Asset).values(symbol=symbol, scale=base_scale).prefix_with("IGNORE"))
    result = cast(CursorResult, session.execute(insert(Market).values(
        symbol=symbol, quote_asset=quote_asset, price_step=price_step, quantity_step=quantity_step,
        min_quantity=min_quantity, max_price=max_price, max_quantity=max_quantity, min_notional=min_notional,
        enabled=True,
    )))
    market_id = int(present(result.inserted_primary_key, "an insert has a key")[0])
    session.execute(insert(MarketSequence).values(market_id=market_id, last_seq=0))
    session.execute(insert(MarketState).values(market_id=market_id, last_seq=0))
    return market_id
