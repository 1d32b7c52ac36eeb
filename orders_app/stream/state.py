"""A stream process's market state, kept from the worker's events: no database read per message.

`LevelBook` is one market's aggregated book at `seq`: a snapshot, then deltas applied in sequence; a
delta whose `prev_seq` is not the book's `seq` is a gap, and the book must be read again. `Ticker` keeps
one bucket per minute of trades for the 24-hour figures (the window moves by whole minutes).
"""
from __future__ import annotations

from collections import deque
from decimal import Decimal

from orders_app import money
from orders_app.repositories.trades import TradeMinute

DAY_MINUTES = 24 * 60
APPLIED, STALE, GAP = "applied", "stale", "gap"


class LevelBook:
    def __init__(self, seq: int, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]):
        self.seq = seq
        self.bids = {price: quantity for price, quantity in bids}
        self.asks = {price: quantity for price, quantity in asks}

    def apply(self, delta: dict) -> str:
        """APPLIED, STALE (already in the book: skipped) or GAP (a delta is missing: read the book again)."""
        if delta["seq"] <= self.seq:
            return STALE
        if delta["prev_seq"] != self.seq:
            return GAP
        for side, levels in ((self.bids, delta["bids"]), (self.asks, delta["asks"])):
            for price, quantity in levels:
                price, quantity = Decimal(price), Decimal(quantity)
                if quantity:
                    side[price] = quantity
                else:
                    side.pop(price, None)
        self.seq = delta["seq"]
        return APPLIED

    def best_bid(self) -> Decimal | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> Decimal | None:
        return min(self.asks) if self.asks else None

    def snapshot(self) -> dict:
        """Full depth, best first, amounts as `/api/orderbook` renders them."""
        return {"type": "snapshot", "seq": self.seq,
                "bids": [_level(p, self.bids[p]) for p in sorted(self.bids, reverse=True)],
                "asks": [_level(p, self.asks[p]) for p in sorted(self.asks)]}


def _level(price: Decimal, quantity: Decimal) -> list[str | None]:
    return [money.format_amount(price), money.format_amount(quantity)]


class Ticker:
    """`last_trade_id`: trades up to it are in the buckets already (a market's trades come in id order)."""

    def __init__(self, market: str, minutes: list[TradeMinute], last_trade_id: int):
        self.market, self.last_trade_id = market, last_trade_id
        self.minutes: deque[list] = deque([list(m) for m in minutes], maxlen=DAY_MINUTES + 1)

    def add_trade(self, trade_id: int, minute: int, price: Decimal, quantity: Decimal) -> bool:
        if trade_id <= self.last_trade_id:
            return False
        self.last_trade_id = trade_id
        quote = money.multiply(price, quantity)
        last = self.minutes[-1] if self.minutes else None
        if last is None or last[0] < minute:
            self.minutes.append([minute, price, price, price, price, quantity, quote, 1])
            return True
        last[2], last[3], last[4] = max(last[2], price), min(last[3], price), price
        last[5], last[6], last[7] = money.add(last[5], quantity), money.add(last[6], quote), last[7] + 1
        return True

    def view(self, now_minute: int, book: LevelBook | None) -> dict:
        window = [m for m in self.minutes if m[0] > now_minute - DAY_MINUTES]
        last_price = self.minutes[-1][4] if self.minutes else None
        fmt = money.format_amount
        return {
            "market": self.market, "last_price": fmt(last_price),
            "best_bid": fmt(book.best_bid()) if book else None, "best_ask": fmt(book.best_ask()) if book else None,
            "open_24h": fmt(window[0][1]) if window else None,
            "high_24h": fmt(max(m[2] for m in window)) if window else None,
            "low_24h": fmt(min(m[3] for m in window)) if window else None,
            "volume_24h": fmt(sum((m[5] for m in window), Decimal(0))),
            "quote_volume_24h": fmt(sum((m[6] for m in window), Decimal(0))),
            "trade_count_24h": sum(m[7] for m in window),
        }
