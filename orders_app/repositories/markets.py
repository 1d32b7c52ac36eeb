"""Markets (pairs), assets, the fee account and the per-market command sequence."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from sqlalchemy import CursorResult, insert, select, text, update
from sqlalchemy.orm import Session

from orders_app.errors import present
from orders_app.models import Asset, FeeAccount, Market, MarketSequence, MarketState

TRADING, HALTED = "trading", "halted"


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
    status: str = TRADING
    maker_fee_rate: Decimal = Decimal(0)
    taker_fee_rate: Decimal = Decimal(0)

    @property
    def name(self) -> str:
        """The market's name, `BASE-QUOTE` (`BTC-USD`); `symbol` is its base asset."""
        return market_name(self.symbol, self.quote_asset)

    @property
    def base_asset(self) -> str:
        return self.symbol

    @property
    def halted(self) -> bool:
        return self.status == HALTED

    def received_asset(self, side: str) -> str:
        """What an order of `side` receives (and pays its fees in): a buy the base, a sell the quote."""
        return self.symbol if side == "buy" else self.quote_asset

    def held_asset(self, side: str) -> str:
        """What an order of `side` holds: a buy the quote, a sell the base."""
        return self.quote_asset if side == "buy" else self.symbol


def market_name(base: str, quote: str) -> str:
    return f"{base}-{quote}"


def _spec(m: Market) -> MarketSpec:
    return MarketSpec(m.id, m.symbol, m.quote_asset, m.price_step.normalize(), m.quantity_step.normalize(),
                      m.min_quantity.normalize(), m.max_price.normalize(), m.max_quantity.normalize(),
                      m.min_notional.normalize(), m.status, m.maker_fee_rate.normalize(),
                      m.taker_fee_rate.normalize())


def load_markets(session: Session) -> dict[str, MarketSpec]:
    """Every enabled market (halted ones included), by name."""
    rows = session.execute(select(Market).where(Market.enabled.is_(True)).order_by(Market.id)).scalars()
    return {spec.name: spec for spec in map(_spec, rows)}


def fee_user_id(session: Session) -> int:
    return int(session.execute(select(FeeAccount.user_id).where(FeeAccount.id == 1)).scalar_one())


def add_asset(session: Session, symbol: str, scale: int) -> bool:
    """A new asset; False if `symbol` exists already (its scale is fixed once created)."""
    if session.get(Asset, symbol) is not None:
        return False
    session.execute(insert(Asset).values(symbol=symbol, scale=scale))
    return True


def update_market(session: Session, market_id: int, **values) -> None:
    session.execute(update(Market).where(Market.id == market_id).values(**values))


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


def add(session: Session, *, base: str, quote: str, price_step: Decimal, quantity_step: Decimal,
        min_quantity: Decimal, max_price: Decimal, max_quantity: Decimal, min_notional: Decimal = Decimal(0),
        maker_fee_rate: Decimal = Decimal(0), taker_fee_rate: Decimal = Decimal(0)) -> int:
    """A new market of existing assets, with both sequence rows."""
    result = cast(CursorResult, session.execute(insert(Market).values(
        symbol=base, quote_asset=quote, price_step=price_step, quantity_step=quantity_step,
        min_quantity=min_quantity, max_price=max_price, max_quantity=max_quantity, min_notional=min_notional,
        maker_fee_rate=maker_fee_rate, taker_fee_rate=taker_fee_rate, status=TRADING, enabled=True,
    )))
    market_id = int(present(result.inserted_primary_key, "an insert has a key")[0])
    session.execute(insert(MarketSequence).values(market_id=market_id, last_seq=0))
    session.execute(insert(MarketState).values(market_id=market_id, last_seq=0))
    return market_id


_FEE_BALANCES = text("SELECT a.asset, a.available + a.locked FROM accounts a JOIN fee_account f "
                     "ON f.id = 1 AND a.user_id = f.user_id ORDER BY a.asset")


def fee_balances(session: Session) -> list[tuple[str, Decimal]]:
    """(asset, amount) the fee account holds."""
    return [(asset, amount) for asset, amount in session.execute(_FEE_BALANCES)]
