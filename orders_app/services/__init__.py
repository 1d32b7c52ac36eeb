"""Use cases: one function each, `(command, context) -> result`, owning its transaction.

`ServiceContext` carries what every use case needs and nothing web-specific, so the API and
`consumer.py` drive the same functions.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from orders_app.clock import utc_now  # noqa: F401 - the services' clock
from orders_app.config import Settings
from orders_app.repositories.markets import MarketSpec
from orders_app.unit_of_work import UnitOfWork


@dataclass
class ServiceContext:
    settings: Settings
    session_factory: sessionmaker
    markets: dict[str, MarketSpec]
    asset_scales: dict[str, int]
    # Hands committed outbox rows to Kafka at once (OUTBOX_PUBLISHER=api); by default the relay reads them.
    publish: Callable[[Sequence], None] = field(default=lambda rows: None, repr=False)
    _reloaded_at: float = field(default=0.0, repr=False)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    MARKETS_RELOAD_INTERVAL_S = 1.0

    def reload_markets(self, force: bool = False) -> bool:
        """Re-read markets and assets (a market added while running); at most once a second.
        Returns True when it read them."""
        from orders_app.repositories.markets import load_asset_scales, load_markets
        with self._reload_lock:
            if not force and time.monotonic() - self._reloaded_at < self.MARKETS_RELOAD_INTERVAL_S:
                return False
            with self.uow() as uow:
                markets, scales = load_markets(uow.session), load_asset_scales(uow.session)
            self.markets, self.asset_scales = markets, scales
            self._reloaded_at = time.monotonic()
            return True

    def market(self, symbol: str) -> MarketSpec | None:
        """The market of `symbol`; an unknown symbol triggers one (rate-limited) reload. Looked up again even
        when this call did not reload: another thread's reload, which this one waited for, may have found it."""
        spec = self.markets.get(symbol)
        if spec is None:
            self.reload_markets()
            spec = self.markets.get(symbol)
        return spec

    def resolve_market(self, name: str) -> MarketSpec | None:
        """The market a request names: `BASE-QUOTE` (its name) or a bare base asset, meaning
        `BASE-<QUOTE_CURRENCY>`."""
        base, dash, quote = name.partition("-")
        if dash and quote != self.settings.quote_currency:
            return None
        spec = self.market(base) if base else None
        return spec if spec is not None and spec.quote_asset == self.settings.quote_currency else None

    def asset_scale(self, asset: str) -> int | None:
        scale = self.asset_scales.get(asset)
        if scale is None:
            self.reload_markets()
            scale = self.asset_scales.get(asset)
        return scale

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def symbol_for(self, market_id: int) -> str:
        for attempt in range(2):
            for market in self.markets.values():
                if market.id == market_id:
                    return market.symbol
            if attempt == 0:
                self.reload_markets(force=True)
        raise LookupError(f"market {market_id} is not configured")

    def market_by_id(self, market_id: int) -> MarketSpec:
        return self.markets[self.symbol_for(market_id)]
