"""The few database reads a stream process makes: never per message, only at start, per market the first
time it is needed (or after a gap), and once per `auth`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from orders_app.repositories import trades, users
from orders_app.repositories.markets import MarketSpec, load_markets
from orders_app.services import ServiceContext
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
    """The market's trades since `since` per minute, and its last trade's id."""
    with ctx.session_factory() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        result = trades.minutes_since(session, spec.id, since)
        session.rollback()
    return result


def user_for_api_key(ctx: ServiceContext, api_key: str) -> int | None:
    with ctx.uow() as uow:
        return users.user_id_for_key_hash(uow.session, hash_api_key(api_key))
