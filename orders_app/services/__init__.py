"""Use cases: one function each, `(command, context) -> result`, owning its transaction.

`ServiceContext` carries what every use case needs and nothing web-specific, so the API and
`consumer.py` drive the same functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.orm import sessionmaker

from orders_app.config import Settings
from orders_app.repositories.markets import MarketSpec
from orders_app.unit_of_work import UnitOfWork


@dataclass
class ServiceContext:
    settings: Settings
    session_factory: sessionmaker
    markets: dict[str, MarketSpec]
    asset_scales: dict[str, int]

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def symbol_for(self, market_id: int) -> str:
        for market in self.markets.values():
            if market.id == market_id:
                return market.symbol
        raise LookupError(f"market {market_id} is not configured")

    def market_by_id(self, market_id: int) -> MarketSpec:
        return self.markets[self.symbol_for(market_id)]


def utc_now() -> datetime:
    """Naive UTC with millisecond precision, as stored in DATETIME(3) columns."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
