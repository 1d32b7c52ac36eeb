"""The service context's view of the markets: a market added while the process runs."""
from __future__ import annotations

import threading
from decimal import Decimal

from sqlalchemy.orm import sessionmaker

from orders_app.config import Settings
from orders_app.repositories import markets
from orders_app.repositories.markets import MarketSpec
from orders_app.services import ServiceContext

NEW = MarketSpec(7, "NEW", "USD", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"), Decimal(10**6), Decimal(10**6))


class MissesCounted(dict):
    """A markets dict that tells when a look-up found nothing."""

    def __init__(self):
        super().__init__()
        self.missed = threading.Semaphore(0)

    def get(self, key, default=None):
        found = super().get(key, default)
        if found is None:
            self.missed.release()
        return found


def test_requests_that_missed_a_new_market_while_another_reloaded_it_all_find_it(monkeypatch):
    """Two threads of one process ask for a market added since its last reload. The first reloads; the second
    missed it too and waits for that reload, which it may not repeat (once a second). Both must find the market:
    the state machine saw 400 UNKNOWN_SYMBOL for one of three concurrent orders in a fresh market."""
    loading = threading.Event()
    monkeypatch.setattr(markets, "load_markets", lambda session: (loading.wait(10), {"NEW-USD": NEW})[1])
    monkeypatch.setattr(markets, "load_asset_scales", lambda session: {"USD": 14})
    monkeypatch.setattr(markets, "fee_user_id", lambda session: 1)
    settings = Settings(database_url="unused", kafka_bootstrap_servers="unused", admin_token="unused")
    ctx = ServiceContext(settings, sessionmaker(), MissesCounted(), {})
    found = {}

    def look_up(name):
        found[name] = ctx.resolve_market("NEW")
    first = threading.Thread(target=look_up, args=("first",))
    first.start()
    assert ctx.markets.missed.acquire(timeout=10)  # the first missed it and is reloading
    second = threading.Thread(target=look_up, args=("second",))
    second.start()
    assert ctx.markets.missed.acquire(timeout=10)  # the second missed it too, before the reload finished
    loading.set()
    for thread in (first, second):
        thread.join(timeout=10)

    assert found == {"first": NEW, "second": NEW}
