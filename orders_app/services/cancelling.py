"""Requesting a cancel: recorded on the order and sent, in the market's sequence, to the worker.

The order becomes `cancelled` (hold released) when the matching worker applies the request, unless it
filled first. A second request while one is pending records nothing new.
"""
from __future__ import annotations

from dataclasses import dataclass

from orders_app.errors import NotFound, OrderNotCancellable
from orders_app.messages import Principal, RequestCancel
from orders_app.models import FINAL_STATUSES
from orders_app.repositories import markets, orders
from orders_app.services import ServiceContext, utc_now
from orders_app.services.events import PendingPublish, record_market_event
from orders_app.services.views import order_view
from orders_app.unit_of_work import run_transaction


@dataclass(frozen=True)
class CancelRequested:
    order: dict
    to_publish: tuple[PendingPublish, ...] = ()


def request_cancel(command: RequestCancel, principal: Principal, ctx: ServiceContext) -> CancelRequested:
    """Record the request (202 semantics); the worker applies it in the market's sequence."""
    requested = run_transaction(lambda: _record_cancel_request(command, principal, ctx))
    ctx.publish(requested.to_publish)
    return requested


def _record_cancel_request(command: RequestCancel, principal: Principal, ctx: ServiceContext) -> CancelRequested:
    with ctx.uow() as uow:
        session = uow.session
        order = orders.get(session, command.order_id)
        if order is None or not principal.may_act_for(order.user_id):
            raise NotFound(f"Order {command.order_id} does not exist.")
        market = ctx.market_by_id(order.market_id)
        now = utc_now()
        if not orders.mark_cancel_requested(session, order.id, now):
            session.refresh(order)
            if order.status in FINAL_STATUSES:
                raise OrderNotCancellable(f"Order {order.id} is already {order.status}.")
            return CancelRequested(order_view(order, market.symbol))  # already requested
        seq = markets.next_seq(session, market.id)
        session.refresh(order)
        view = order_view(order, market.symbol)
        publish = record_market_event(session, ctx, "cancel_requested", market, seq, order.id, view,
                                      command.request_id, now)
        uow.commit()
        return CancelRequested(view, (publish,))
