"""Accepting an order: validate against its market, hold funds, record order + outbox event, commit.

One transaction: take the market's next sequence number, insert the order, hold its funds with one
conditional UPDATE (0 rows = insufficient funds, and the whole transaction rolls back), insert the
`order_placed` outbox row. After commit the caller hands the event to the publisher. A repeated
`client_order_id` returns the first order unchanged (`created=False`), also under concurrent repeats:
the unique key decides, and the loser reads the winner's order.
"""
from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from orders_app import money
from orders_app.errors import (DomainError, InsufficientFunds, NotFound, UnknownSymbol, ValidationFailed,
                               invariant)
from orders_app.messages import PlaceOrder
from orders_app.metrics import ORDERS_ACCEPTED, ORDERS_REFUSED
from orders_app.models import Order
from orders_app.repositories import accounts, markets, orders
from orders_app.repositories.markets import MarketSpec
from orders_app.services import ServiceContext, utc_now
from orders_app.services.events import PendingPublish, record_market_event
from orders_app.services.views import order_view
from orders_app.unit_of_work import run_transaction

QUOTE_AMOUNT_MAX = Decimal("1000000000000")
RESTING_ASK_PAGES_MAX = 50  # a market buy by quantity prices at most this many pages of the book


@dataclass(frozen=True)
class PlacedOrder:
    order: dict
    created: bool
    to_publish: tuple[PendingPublish, ...] = ()


@dataclass(frozen=True)
class CheckedOrder:
    market: MarketSpec
    price: Decimal | None
    quantity: Decimal | None
    quote_quantity: Decimal | None
    hold_asset: str


def _amount(raw, field: str, **limits) -> Decimal:
    try:
        return money.parse_positive(raw, **limits)
    except money.AmountError as error:
        raise ValidationFailed(f"{field} {error}.", field) from None


def check_order(command: PlaceOrder, ctx: ServiceContext) -> CheckedOrder:
    """Market-specific rules: steps, bounds, and which fields each order type takes."""
    market = ctx.market(command.symbol)
    if market is None:
        raise UnknownSymbol(f"Unknown currency_symbol {command.symbol!r}; markets: "
                            f"{', '.join(sorted(ctx.markets))}.", "currency_symbol")
    price = quantity = quote_quantity = None
    if command.order_type == "limit":
        if command.price is None:
            raise ValidationFailed("price is required for a limit order.", "price")
        if command.quantity is None:
            raise ValidationFailed("quantity is required for a limit order.", "quantity")
        if command.quote_quantity is not None:
            raise ValidationFailed("quote_quantity is only for market buy orders.", "quote_quantity")
        price = _amount(command.price, "price", step=market.price_step, maximum=market.max_price)
    else:
        if command.price is not None:
            raise ValidationFailed("A market order takes no price.", "price")
        if command.post_only:
            raise ValidationFailed("post_only applies to limit orders only.", "post_only")
        if command.time_in_force not in ("GTC", "IOC"):
            raise ValidationFailed("A market order is always IOC; time_in_force FOK is for limit orders.",
                                   "time_in_force")
        if command.side == "sell" and command.quote_quantity is not None:
            raise ValidationFailed("quote_quantity is only for market buy orders.", "quote_quantity")
        if command.side == "sell" and command.quantity is None:
            raise ValidationFailed("quantity is required for a market sell order.", "quantity")
        if command.side == "buy" and (command.quantity is None) == (command.quote_quantity is None):
            raise ValidationFailed("A market buy takes exactly one of quantity or quote_quantity.", "quantity")
    if command.post_only and command.time_in_force != "GTC":
        raise ValidationFailed("post_only orders rest in the book; they cannot be IOC or FOK.", "post_only")
    if command.quantity is not None:
        quantity = _amount(command.quantity, "quantity", step=market.quantity_step,
                           maximum=market.max_quantity, minimum=market.min_quantity)
    if command.quote_quantity is not None:
        quote_scale = ctx.asset_scales[market.quote_asset]
        quote_quantity = _amount(command.quote_quantity, "quote_quantity",
                                 step=money.scale_step(quote_scale), maximum=QUOTE_AMOUNT_MAX)
    hold_asset = market.quote_asset if command.side == "buy" else market.symbol
    return CheckedOrder(market, price, quantity, quote_quantity, hold_asset)


def market_buy_hold(session, checked: CheckedOrder, collar_percent: int, quote_scale: int) -> Decimal:
    """Hold for a market buy by quantity: what that quantity costs at the resting asks now, plus a
    collar for the book moving before it is matched, rounded up to the quote asset's scale. The order
    never spends more than this; if the book cannot fill it within the hold, the rest is cancelled."""
    wanted, cost, after = checked.quantity, Decimal(0), None
    for _ in range(RESTING_ASK_PAGES_MAX):
        page = orders.resting_asks(session, checked.market.id, after)
        for price, available, _seq in page:
            take = min(wanted, available)
            cost, wanted = money.add(cost, money.multiply(price, take)), money.subtract(wanted, take)
            if wanted == 0:
                break
        if wanted == 0 or len(page) < orders.RESTING_ASKS_PAGE_ROWS:
            break
        after = (page[-1][0], page[-1][2])
    with decimal.localcontext(money.MONEY_CONTEXT) as context:
        context.traps[decimal.Inexact] = False
        collared = cost * (100 + collar_percent) / 100
        return collared.quantize(money.scale_step(quote_scale), rounding=decimal.ROUND_CEILING)


def place_order(command: PlaceOrder, ctx: ServiceContext) -> PlacedOrder:
    """Accept (or refuse) one order; counted in /metrics by outcome."""
    try:
        placed = _place_order(command, ctx)
    except DomainError as error:
        ORDERS_REFUSED.labels(error.code).inc()
        raise
    if placed.created:
        ORDERS_ACCEPTED.labels(command.symbol, command.side, command.order_type).inc()
    return placed


def _place_order(command: PlaceOrder, ctx: ServiceContext) -> PlacedOrder:
    checked = check_order(command, ctx)
    market = checked.market
    if command.client_order_id is not None:
        existing = _find_existing(command, ctx)
        if existing is not None:
            return existing

    def attempt() -> PlacedOrder:
        with ctx.uow() as uow:
            session = uow.session
            if _may_merge(command, ctx):
                merged = _merge_into_pending_buy(session, ctx, command, checked)
                if merged is not None:
                    uow.commit()
                    return merged
            if checked.price is not None and command.side == "buy":
                hold_amount = money.multiply(checked.price, checked.quantity)
            elif command.side == "sell":
                hold_amount = checked.quantity
            elif checked.quote_quantity is not None:
                hold_amount = checked.quote_quantity
            else:
                hold_amount = market_buy_hold(session, checked, ctx.settings.market_buy_collar_percent,
                                              ctx.asset_scales[market.quote_asset])
            invariant(hold_amount >= 0 and money.fits_database(hold_amount), f"bad hold {hold_amount}")
            seq = markets.next_seq(session, market.id)
            now = utc_now()
            values = {
                "market_id": market.id, "user_id": command.user_id, "side": command.side,
                "type": command.order_type,
                "time_in_force": "IOC" if command.order_type == "market" else command.time_in_force,
                "post_only": command.post_only, "price": checked.price, "quantity": checked.quantity,
                "quote_quantity": checked.quote_quantity, "filled_quantity": Decimal(0), "filled_quote": Decimal(0),
                "locked_amount": hold_amount, "status": "pending", "client_order_id": command.client_order_id,
                "seq": seq, "request_id": command.request_id, "created_at": now, "updated_at": now,
            }
            order_id = orders.add(session, values)
            if not accounts.hold(session, command.user_id, checked.hold_asset, hold_amount, order_id):
                raise InsufficientFunds(
                    f"Placing this order needs {money.format_amount(hold_amount)} {checked.hold_asset} "
                    f"available.", "quantity")
            # The view from what was inserted: reading the row back would cost a round trip while the
            # market's sequence lock is held.
            view = order_view(Order(id=order_id, status_reason=None, cancel_requested_at=None, **values),
                              market.symbol)
            publish = record_market_event(session, ctx, "order_placed", market, seq, order_id, view,
                                          command.request_id, now)
            uow.commit()
            return PlacedOrder(view, True, (publish,))

    try:
        return run_transaction(attempt)
    except IntegrityError as error:
        if command.client_order_id is not None and "uq_orders_user_client_order_id" in str(error.orig):
            existing = _find_existing(command, ctx)
            if existing is not None:
                return existing
        if "foreign key constraint fails" in str(error.orig).lower():
            raise NotFound(f"User {command.user_id} does not exist.", "userId") from None
        raise


def _may_merge(command: PlaceOrder, ctx: ServiceContext) -> bool:
    return (ctx.settings.merge_same_price_orders and command.side == "buy" and command.order_type == "limit"
            and command.time_in_force == "GTC" and not command.post_only and command.client_order_id is None)


def _merge_into_pending_buy(session, ctx: ServiceContext, command: PlaceOrder, checked: CheckedOrder):
    """The original system's behaviour (MERGE_SAME_PRICE_ORDERS=true): a limit buy joins the user's
    untouched pending buy at the same price; the merged order goes to the back of that price level
    when the worker applies the `order_amended` command. Lock order: the order row, then the market's
    sequence, then the account."""
    market = checked.market
    existing = orders.lock_mergeable_buy(session, command.user_id, market.id, checked.price)
    if existing is None:
        return None
    hold_amount = money.multiply(checked.price, checked.quantity)
    seq = markets.next_seq(session, market.id)
    now = utc_now()
    if not accounts.hold(session, command.user_id, checked.hold_asset, hold_amount, existing.id):
        raise InsufficientFunds(f"Placing this order needs {money.format_amount(hold_amount)} "
                                f"{checked.hold_asset} available.", "quantity")
    orders.add_to_order(session, existing, seq=seq, quantity=checked.quantity, hold=hold_amount, now=now)
    session.refresh(existing)
    view = order_view(existing, market.symbol)
    publish = record_market_event(session, ctx, "order_amended", market, seq, existing.id, view,
                                  command.request_id, now)
    return PlacedOrder(view, True, (publish,))


def _find_existing(command: PlaceOrder, ctx: ServiceContext) -> PlacedOrder | None:
    with ctx.uow() as uow:
        order = orders.find_by_client_order_id(uow.session, command.user_id, command.client_order_id)
        if order is None:
            return None
        return PlacedOrder(order_view(order, ctx.symbol_for(order.market_id)), False)
