"""Public market data: the aggregated order book and the trade history, read from the database."""
from __future__ import annotations

from orders_app.errors import UnknownSymbol
from orders_app.repositories import trades
from orders_app.services import ServiceContext
from orders_app.services.views import iso_utc


def _market(symbol: str, ctx: ServiceContext):
    market = ctx.market(symbol)
    if market is None:
        raise UnknownSymbol(f"Unknown currency_symbol {symbol!r}.", "currency_symbol")
    return market


def order_book(symbol: str, depth: int, ctx: ServiceContext) -> dict:
    market = _market(symbol, ctx)
    with ctx.uow() as uow:
        bids = trades.book_levels(uow.session, market.id, "buy", depth)
        asks = trades.book_levels(uow.session, market.id, "sell", depth)
    return {"currency_symbol": symbol,
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
