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
    markets: dict[str, MarketSpec]  # by name, `BASE-QUOTE`
    asset_scales: dict[str, int]
    fee_user_id: int | None = None  # the user whose accounts receive fees (the `fee_account` row)
    # Hands committed outbox rows to Kafka at once (OUTBOX_PUBLISHER=api); by default the relay reads them.
    publish: Callable[[Sequence], None] = field(default=lambda rows: None, repr=False)
    _reloaded_at: float = field(default=0.0, repr=False)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    MARKETS_RELOAD_INTERVAL_S = 1.0

    def reload_markets(self, force: bool = False) -> bool:
        """Re-read markets and assets (a market added while running); at most once a second.
        Returns True when it read them."""
        from orders_app.repositories.markets import fee_user_id, load_asset_scales, load_markets
        with self._reload_lock:
            if not force and time.monotonic() - self._reloaded_at < self.MARKETS_RELOAD_INTERVAL_S:
                return False
            with self.uow() as uow:
                markets, scales = load_markets(uow.session), load_asset_scales(uow.session)
                fee_user = fee_user_id(uow.session)
            self.markets, self.asset_scales, self.fee_user_id = markets, scales, fee_user
            self._reloaded_at = time.monotonic()
            return True

    def refresh_markets_if_stale(self) -> None:
        """Re-read the markets when the last read is over a second old, so a halt, a resume or a rate change
        made through another process reaches this one within about a second. At most one thread reads; the
        others go on with what they have rather than wait for it."""
        if time.monotonic() - self._reloaded_at < self.MARKETS_RELOAD_INTERVAL_S:
            return
        if self._refresh_lock.acquire(blocking=False):
            try:
                self.reload_markets()
            finally:
                self._refresh_lock.release()

    def resolve_market(self, name: str) -> MarketSpec | None:
        """The market a request names: `BASE-QUOTE`, or a bare base asset meaning `BASE-<QUOTE_CURRENCY>`.
        An unknown name triggers one (rate-limited) reload. Looked up again even when this call did not
        reload: another thread's reload, which this one waited for, may have found it."""
        if not isinstance(name, str):
            return None
        key = name if "-" in name else f"{name}-{self.settings.quote_currency}"
        spec = self.markets.get(key)
        if spec is None:
            self.reload_markets()
        else:
            self.refresh_markets_if_stale()  # its status or rates may have changed
        return self.markets.get(key)

    def asset_scale(self, asset: str) -> int | None:
        scale = self.asset_scales.get(asset)
        if scale is None:
            self.reload_markets()
            scale = self.asset_scales.get(asset)
        return scale

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def market_by_id(self, market_id: int) -> MarketSpec:
        for attempt in range(2):
            for market in self.markets.values():
                if market.id == market_id:
                    return market
            if attempt == 0:
                self.reload_markets(force=True)
        raise LookupError(f"market {market_id} is not configured")

    def symbol_for(self, market_id: int) -> str:
        """The base asset of the market (an order's or trade's `currency_symbol`)."""
        return self.market_by_id(market_id).symbol
