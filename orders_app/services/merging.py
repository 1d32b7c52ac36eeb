"""The original system's merge of same-price buys (MERGE_SAME_PRICE_ORDERS=true, off by default): a new limit
buy joins the user's untouched pending buy at the same price; the merged order goes to the back of that price
level when the worker applies the `order_amended` command."""
from __future__ import annotations

from orders_app import money
from orders_app.errors import CommitOutcomeUnknown, present
from orders_app.messages import PlaceOrder
from orders_app.repositories import accounts, markets, orders
from orders_app.services import ServiceContext, utc_now
from orders_app.services.events import record_market_event
from orders_app.services.order_rules import (
    CheckedOrder,
    PlacedOrder,
    insufficient,
    status_unknown,
)
from orders_app.services.views import order_view


def may_merge(command: PlaceOrder, ctx: ServiceContext) -> bool:
    return (ctx.settings.merge_same_price_orders and command.side == "buy" and command.order_type == "limit"
            and command.time_in_force == "GTC" and not command.post_only and command.client_order_id is None)


def merge_into_pending_buy(command: PlaceOrder, checked: CheckedOrder, ctx: ServiceContext) -> PlacedOrder | None:
    """The original system's behaviour (MERGE_SAME_PRICE_ORDERS=true): a limit buy joins the user's
    untouched pending buy at the same price; the merged order goes to the back of that price level
    when the worker applies the `order_amended` command. Lock order: the order row, then the account,
    then the market's sequence. None (and nothing changed) when there is no such order."""
    with ctx.uow() as uow:
        merged = _merge(uow.session, ctx, command, checked)
        if merged is not None:
            try:
                uow.commit()
            except CommitOutcomeUnknown:
                raise status_unknown() from None
        return merged


def _merge(session, ctx: ServiceContext, command: PlaceOrder, checked: CheckedOrder) -> PlacedOrder | None:
    market = checked.market
    existing = orders.lock_mergeable_buy(session, command.user_id, market.id, checked.price)
    if existing is None:
        return None
    hold_amount = money.multiply(present(checked.price, "only a limit buy merges"),
                                 present(checked.quantity, "a limit order has a quantity"))
    if not accounts.hold(session, command.user_id, checked.hold_asset, hold_amount, existing.id):
        raise insufficient(hold_amount, checked.hold_asset)
    seq = markets.next_seq(session, market.id)
    now = utc_now()
    orders.add_to_order(session, existing, seq=seq, quantity=checked.quantity, hold=hold_amount, now=now)
    session.refresh(existing)
    view = order_view(existing, market)
    publish = record_market_event(session, ctx, "order_amended", market, seq, existing.id, view,
                                  command.request_id, now)
    return PlacedOrder(view, True, (publish,))
