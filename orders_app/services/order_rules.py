"""The rules an order must pass before anything is locked — its market's steps and bounds, which fields each
order type takes, the amount it must hold — and the answers a placement gives. Pure checks, but for a market
buy by quantity, which prices its hold at the book as it is (a plain read)."""
from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from orders_app import money
from orders_app.errors import (
    InsufficientFunds,
    MarketHalted,
    OrderStatusUnknown,
    UnknownSymbol,
    ValidationFailed,
    invariant,
    present,
)
from orders_app.messages import PlaceOrder
from orders_app.repositories import orders
from orders_app.repositories.markets import MarketSpec
from orders_app.services import ServiceContext
from orders_app.services.events import PendingPublish

QUOTE_AMOUNT_MAX = Decimal("1000000000000")
RESTING_ASK_PAGES_MAX = 50  # a market buy by quantity prices at most this many pages of the book


@dataclass(frozen=True)
class PlacedOrder:
    order: dict
    created: bool
    to_publish: tuple[PendingPublish, ...] = ()


def status_unknown() -> OrderStatusUnknown:
    return OrderStatusUnknown("The database went away while the order was being committed: it may or may not be "
                              "recorded. Retry with the same client_order_id, or look for the order first.")


def insufficient(amount: Decimal, asset: str) -> InsufficientFunds:
    return InsufficientFunds(f"Placing this order needs {money.format_amount(amount)} {asset} available.",
                             "quantity")


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
    market = ctx.resolve_market(command.symbol)
    if market is None:
        raise UnknownSymbol(f"Unknown currency_symbol {command.symbol!r}; markets: "
                            f"{', '.join(sorted(ctx.markets))}.", "currency_symbol")
    if market.halted:
        raise MarketHalted(f"Market {market.name} is halted: it takes no new orders (cancels still work).",
                           "currency_symbol")
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
        smallest_trade = money.multiply(market.price_step, market.quantity_step)
        if quote_quantity < smallest_trade:
            raise ValidationFailed(f"quote_quantity cannot buy anything: the smallest trade in this market costs "
                                   f"{money.format_amount(smallest_trade)} {market.quote_asset}.", "quote_quantity")
    if price is not None and market.min_notional and money.multiply(
            price, present(quantity, "a limit order has a quantity")) < market.min_notional:
        raise ValidationFailed(f"price x quantity is below this market's minimum notional of "
                               f"{money.format_amount(market.min_notional)} {market.quote_asset}.", "quantity")
    hold_asset = market.held_asset(command.side)
    return CheckedOrder(market, price, quantity, quote_quantity, hold_asset)


def market_buy_hold(session, checked: CheckedOrder, collar_percent: int, quote_scale: int) -> Decimal:
    """Hold for a market buy by quantity: what that quantity costs at the resting asks now, plus a
    collar for the book moving before it is matched, rounded up to the quote asset's scale. The order
    never spends more than this; if the book cannot fill it within the hold, the rest is cancelled."""
    wanted = present(checked.quantity, "a market buy by quantity has a quantity")
    cost, after = Decimal(0), None
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


def hold_amount(command: PlaceOrder, checked: CheckedOrder, ctx: ServiceContext) -> Decimal:
    """What the order must hold: price x quantity for a limit buy, the quantity for a sell, the quote
    amount for a market buy by quote, and the collared book price for a market buy by quantity."""
    if checked.price is not None and command.side == "buy":
        amount = money.multiply(checked.price, present(checked.quantity, "a limit order has a quantity"))
    elif command.side == "sell":
        amount = present(checked.quantity, "a sell has a quantity")
    elif checked.quote_quantity is not None:
        amount = checked.quote_quantity
    else:  # a market buy by quantity: priced at the book now (a plain read, as it was inside a transaction)
        with ctx.uow() as uow:
            amount = market_buy_hold(uow.session, checked, ctx.settings.market_buy_collar_percent,
                                     ctx.asset_scales[checked.market.quote_asset])
    invariant(amount >= 0 and money.fits_database(amount), f"bad hold {amount}")
    return amount
