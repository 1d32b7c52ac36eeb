"""Public market data: the aggregated order book, the trade history, candles and the 24-hour ticker."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from orders_app.errors import UnknownSymbol
from orders_app.repositories import candles, trades
from orders_app.services import ServiceContext, utc_now
from orders_app.services.candles import INTERVALS_S, Candle, bucket_start, candle_view, merge_all, trade_candle
from orders_app.services.views import iso_utc

ZERO = Decimal(0)


def _market(symbol: str, ctx: ServiceContext):
    market = ctx.resolve_market(symbol)
    if market is None:
        raise UnknownSymbol(f"Unknown currency_symbol {symbol!r}.", "currency_symbol")
    return market


def order_book(symbol: str, depth: int, ctx: ServiceContext) -> dict:
    market = _market(symbol, ctx)
    with ctx.uow() as uow:
        bids = trades.book_levels(uow.session, market.id, "buy", depth)
        asks = trades.book_levels(uow.session, market.id, "sell", depth)
    return {"currency_symbol": market.symbol, "market": market.name,
            "bids": [{"price": price, "quantity": quantity} for price, quantity in bids],
            "asks": [{"price": price, "quantity": quantity} for price, quantity in asks]}


def trade_history(symbol: str, limit: int, before_id: int | None, ctx: ServiceContext) -> list[dict]:
    market = _market(symbol, ctx)
    with ctx.uow() as uow:
        return [{"id": t.id, "currency_symbol": market.symbol, "market": market.name, "price": t.price,
                 "quantity": t.quantity,
                 "buy_order_id": t.buy_order_id, "sell_order_id": t.sell_order_id, "taker_side": t.taker_side,
                 "timestamp": iso_utc(t.created_at)}
                for t in trades.page(uow.session, market.id, limit, before_id)]


TICKER_WINDOW = timedelta(hours=24)
ONE_MINUTE = timedelta(minutes=1)
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59)


def _named_market(name: str, ctx: ServiceContext):
    market = ctx.resolve_market(name)
    if market is None:
        raise UnknownSymbol(f"Unknown market {name!r}.", "market")
    return market


def candle_history(name: str, interval: str, limit: int, end_time: datetime | None, ctx: ServiceContext) -> list[dict]:
    """The `limit` most recent candles with trades that start at or before `end_time`, oldest first; read
    straight from the maintained candles (no trade is read)."""
    market = _named_market(name, ctx)
    with ctx.uow() as uow:
        rows = candles.latest(uow.session, market.id, INTERVALS_S[interval], end_time or END_OF_TIME, limit)
    return [candle_view(Candle(*row)) for row in reversed(rows)]


def ticker(name: str, ctx: ServiceContext) -> dict:
    """The last 24 hours up to now, exactly: the whole one-minute candles inside the window, plus the trades of
    the minute the window starts in that are inside it (read through that candle's trade ids) — at most
    1,440 candle rows and one minute's trades, however busy the market."""
    market = _named_market(name, ctx)
    start = utc_now() - TICKER_WINDOW
    with ctx.uow() as uow:
        session = uow.session
        minutes = [Candle(*row) for row in candles.minutes_since(session, market.id, bucket_start(start, 60))]
        if minutes and minutes[0].open_time < start:  # the window starts inside this minute: take its trades
            edge = minutes.pop(0)
            minutes += [trade_candle(*row, 60) for row in trades.in_id_range_between(
                session, market.id, edge.first_trade_id, edge.last_trade_id, start, edge.open_time + ONE_MINUTE)]
        last = [trade.price for trade in trades.page(session, market.id, 1, None)]
        bids = trades.book_levels(session, market.id, "buy", 1)
        asks = trades.book_levels(session, market.id, "sell", 1)
    day = merge_all(minutes)
    return {"market": market.name, "last_price": last[0] if last else None,
            "best_bid": bids[0][0] if bids else None, "best_ask": asks[0][0] if asks else None,
            "open_24h": day and day.open, "high_24h": day and day.high, "low_24h": day and day.low,
            "volume_24h": day.volume if day else ZERO, "quote_volume_24h": day.quote_volume if day else ZERO,
            "trade_count_24h": day.trades if day else 0}
