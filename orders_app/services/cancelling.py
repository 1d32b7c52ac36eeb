"""Requesting a cancel: recorded on the order and sent, in the market's sequence, to the worker.

The order becomes `cancelled` (hold released) when the matching worker applies the request, unless it
filled first. A second request while one is pending records nothing new. An order is named by its id or by
its user's `client_order_id`; "cancel all" asks for every open order of a user (or of a user in one
market) that has no request pending yet, in a few bounded transactions.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session

from orders_app.errors import NotFound, OrderNotCancellable, UnknownSymbol
from orders_app.messages import Principal, RequestCancel, RequestCancelAll, RequestCancelByClientId
from orders_app.models import FINAL_STATUSES, Order
from orders_app.repositories import markets, orders, users
from orders_app.services import ServiceContext, utc_now
from orders_app.services.events import OutgoingCommand, PendingPublish, record_market_event, record_market_events
from orders_app.services.views import order_view
from orders_app.unit_of_work import run_transaction

CANCEL_ALL_ORDERS_PER_TRANSACTION = 250  # row locks and one outbox statement per transaction stay small


@dataclass(frozen=True)
class CancelRequested:
    order: dict
    to_publish: tuple[PendingPublish, ...] = ()


@dataclass(frozen=True)
class CancelsRequested:
    orders: tuple[dict, ...]
    to_publish: tuple[PendingPublish, ...] = ()


def request_cancel(command: RequestCancel, principal: Principal, ctx: ServiceContext) -> CancelRequested:
    """Record the request (202 semantics); the worker applies it in the market's sequence."""
    return _request_cancel(lambda session: orders.get(session, command.order_id), f"Order {command.order_id}",
                           command.request_id, principal, ctx)


def request_cancel_by_client_id(command: RequestCancelByClientId, principal: Principal,
                                ctx: ServiceContext) -> CancelRequested:
    """As `request_cancel`, for the user's order with this client_order_id."""
    return _request_cancel(
        lambda session: orders.find_by_client_order_id(session, command.user_id, command.client_order_id),
        f"Order with client_order_id {command.client_order_id!r}", command.request_id, principal, ctx)


def _request_cancel(find: Callable[[Session], Order | None], name: str, request_id: str | None,
                    principal: Principal, ctx: ServiceContext) -> CancelRequested:
    requested = run_transaction(lambda: _record_cancel_request(find, name, request_id, principal, ctx))
    ctx.publish(requested.to_publish)
    return requested


def _record_cancel_request(find: Callable[[Session], Order | None], name: str, request_id: str | None,
                           principal: Principal, ctx: ServiceContext) -> CancelRequested:
    with ctx.uow() as uow:
        session = uow.session
        order = find(session)
        if order is None or not principal.may_act_for(order.user_id):
            raise NotFound(f"{name} does not exist.")
        market = ctx.market_by_id(order.market_id)
        now = utc_now()
        if not orders.mark_cancel_requested(session, order.id, now):
            session.refresh(order)
            if order.status in FINAL_STATUSES:
                raise OrderNotCancellable(f"Order {order.id} is already {order.status}.")
            return CancelRequested(order_view(order, market))  # already requested
        seq = markets.next_seq(session, market.id)
        session.refresh(order)
        view = order_view(order, market)
        publish = record_market_event(session, ctx, "cancel_requested", market, seq, order.id, view,
                                      request_id, now)
        uow.commit()
        return CancelRequested(view, (publish,))


def request_cancel_all(command: RequestCancelAll, principal: Principal, ctx: ServiceContext) -> list[dict]:
    """Ask to cancel each open order of the user (of one market if named) with no request pending; returns
    those orders. At most MAX_OPEN_ORDERS_PER_USER of them, a bounded number per transaction."""
    market_id = None
    if command.market is not None:
        market = ctx.resolve_market(command.market)
        if market is None:
            raise UnknownSymbol(f"Unknown currency_symbol {command.market!r}.", "currency_symbol")
        market_id = market.id
    if principal.is_admin:
        with ctx.uow() as uow:
            if not users.exists(uow.session, command.user_id):
                raise NotFound(f"User {command.user_id} does not exist.", "userId")
    views: list[dict] = []
    orders_max = ctx.settings.max_open_orders_per_user
    while len(views) < orders_max:
        limit = min(CANCEL_ALL_ORDERS_PER_TRANSACTION, orders_max - len(views))
        requested = run_transaction(partial(_record_cancel_requests, command, market_id, limit, ctx))
        ctx.publish(requested.to_publish)
        views.extend(requested.orders)
        if len(requested.orders) < limit:
            break
    return views


def _record_cancel_requests(command: RequestCancelAll, market_id: int | None, limit: int,
                            ctx: ServiceContext) -> CancelsRequested:
    """Lock order: the orders (by id), then each market's sequence row (by market id), as a single cancel."""
    with ctx.uow() as uow:
        session = uow.session
        to_cancel = orders.lock_open_without_cancel_request(session, command.user_id, market_id, limit)
        if not to_cancel:
            return CancelsRequested(())
        now = utc_now()
        orders.mark_cancels_requested(session, to_cancel, now)
        by_market: dict[int, list[Order]] = {}
        for order in to_cancel:
            by_market.setdefault(order.market_id, []).append(order)
        commands: list[OutgoingCommand] = []
        for market_id_ in sorted(by_market):
            market, market_orders = ctx.market_by_id(market_id_), by_market[market_id_]
            first_seq = markets.take_seqs(session, market.id, len(market_orders)) - len(market_orders) + 1
            commands.extend(OutgoingCommand("cancel_requested", market, first_seq + offset, order.id,
                                            order_view(order, market), command.request_id)
                            for offset, order in enumerate(market_orders))
        publishes = record_market_events(session, ctx, commands, now)
        uow.commit()
        return CancelsRequested(tuple(c.view for c in sorted(commands, key=lambda c: c.order_id)), tuple(publishes))
