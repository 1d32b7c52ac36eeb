"""Read-only use cases: one order, a filtered page of orders, a user's fills, a user's balances."""
from __future__ import annotations

from orders_app.errors import Forbidden, NotFound, UnknownSymbol
from orders_app.messages import FillQuery, OrderQuery, Principal
from orders_app.repositories import accounts, orders, trades, users
from orders_app.services import ServiceContext
from orders_app.services.views import balance_view, fill_view, order_view


def _check_acting_for(principal: Principal, user_id: int) -> None:
    if not principal.may_act_for(user_id):
        raise Forbidden("You may only act on your own user.", "userId")


def get_order(order_id: int, principal: Principal, ctx: ServiceContext) -> dict:
    with ctx.uow() as uow:
        order = orders.get(uow.session, order_id)
        if order is None or not principal.may_act_for(order.user_id):
            raise NotFound(f"Order {order_id} does not exist.")
        return order_view(order, ctx.market_by_id(order.market_id))


def list_orders(query: OrderQuery, principal: Principal, ctx: ServiceContext) -> list[dict]:
    user_id = query.user_id
    if user_id is not None:
        _check_acting_for(principal, user_id)
    elif not principal.is_admin:
        user_id = principal.user_id
    market_id = None
    if query.symbol is not None:
        market = ctx.resolve_market(query.symbol)
        if market is None:
            raise UnknownSymbol(f"Unknown currency_symbol {query.symbol!r}.", "currency_symbol")
        market_id = market.id
    with ctx.uow() as uow:
        rows = orders.search(uow.session, user_id=user_id, market_id=market_id, side=query.side,
                             status=query.status, limit=query.limit, before_id=query.before_id)
        return [order_view(order, ctx.market_by_id(order.market_id)) for order in rows]


def list_fills(query: FillQuery, principal: Principal, ctx: ServiceContext) -> list[dict]:
    """The user's fills, newest first (one per order in a trade)."""
    _check_acting_for(principal, query.user_id)
    market_id = None
    if query.market is not None:
        market = ctx.resolve_market(query.market)
        if market is None:
            raise UnknownSymbol(f"Unknown currency_symbol {query.market!r}.", "currency_symbol")
        market_id = market.id
    with ctx.uow() as uow:
        rows = trades.fills(uow.session, query.user_id, market_id=market_id, order_id=query.order_id,
                            limit=query.limit, before_id=query.before_id)
    return [fill_view(row, ctx.market_by_id(row.market_id)) for row in rows]


def balances(user_id: int, symbol: str | None, principal: Principal, ctx: ServiceContext) -> list[dict]:
    _check_acting_for(principal, user_id)
    if symbol is not None and ctx.asset_scale(symbol) is None:
        raise UnknownSymbol(f"Unknown symbol {symbol!r}.", "symbol")
    with ctx.uow() as uow:
        if principal.is_admin and not users.exists(uow.session, user_id):
            raise NotFound(f"User {user_id} does not exist.")
        return [balance_view(account) for account in accounts.list_for_user(uow.session, user_id, symbol)]


def principal_for_api_key(key_hash: str, ctx: ServiceContext) -> Principal | None:
    with ctx.uow() as uow:
        user_id = users.user_id_for_key_hash(uow.session, key_hash)
    return None if user_id is None else Principal(user_id)
