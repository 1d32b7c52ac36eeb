"""The few database reads a stream process makes: never per message, only at start, per market the first
time it is needed (or after a gap), and once per `auth`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from orders_app.repositories import candles, trades, users
from orders_app.repositories.markets import MarketSpec, load_markets
from orders_app.services import ServiceContext
from orders_app.services.candles import Candle, bucket_start, epoch_minute
from orders_app.services.funding import hash_api_key

BOOK_SNAPSHOT_LEVELS_MAX = 1_000_000  # "full depth", with a bound


@dataclass(frozen=True)
class BookSnapshot:
    seq: int
    bids: list[tuple[Decimal, Decimal]]  # (price, quantity), best first
    asks: list[tuple[Decimal, Decimal]]


def markets_by_name(ctx: ServiceContext) -> dict[str, MarketSpec]:
    with ctx.uow() as uow:
        return {spec.name: spec for spec in load_markets(uow.session).values()}


def book_snapshot(ctx: ServiceContext, spec: MarketSpec) -> BookSnapshot:
    """The book's levels and the sequence they reflect, read in one REPEATABLE READ transaction so that
    both belong to the same committed state."""
    with ctx.session_factory() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        seq = trades.applied_seq(session, spec.id)
        bids = trades.book_levels(session, spec.id, "buy", BOOK_SNAPSHOT_LEVELS_MAX)
        asks = trades.book_levels(session, spec.id, "sell", BOOK_SNAPSHOT_LEVELS_MAX)
        session.rollback()
    return BookSnapshot(seq, [(price, quantity) for price, quantity in bids],
                        [(price, quantity) for price, quantity in asks])


def trade_minutes(ctx: ServiceContext, spec: MarketSpec, since: datetime) -> tuple[list[trades.TradeMinute], int]:
    """The market's trades since `since` per minute — the one-minute candles the worker keeps, as the API's
    ticker reads them — and the id of the last trade they count (0 for none)."""
    with ctx.session_factory() as session:
        rows = [Candle(*row) for row in candles.minutes_since(session, spec.id, bucket_start(since, 60))]
        session.rollback()
    minutes = [trades.TradeMinute(epoch_minute(candle.open_time), candle.open, candle.high,
                                  candle.low, candle.close, candle.volume, candle.quote_volume, candle.trades)
               for candle in rows]
    return minutes, max((candle.last_trade_id for candle in rows), default=0)


def user_for_api_key(ctx: ServiceContext, api_key: str) -> int | None:
    with ctx.uow() as uow:
        return users.user_id_for_key_hash(uow.session, hash_api_key(api_key))
