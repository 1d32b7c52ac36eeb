"""Listing markets and adding one while the system runs (API and workers pick it up within a second)."""
from __future__ import annotations

import re
from decimal import Decimal

from orders_app.errors import InvariantViolation, ValidationFailed
from orders_app.repositories import markets
from orders_app.services import ServiceContext

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,16}$")
DEFAULT_STEPS = {"price_step": Decimal("0.000001"), "quantity_step": Decimal("0.00000001"),
                 "min_quantity": Decimal("0.00000001"), "max_price": Decimal("1000000000"),
                 "max_quantity": Decimal("1000000000"), "min_notional": Decimal(0)}
BASE_SCALE = 8


def add_market(symbol: str, ctx: ServiceContext, **steps: Decimal) -> int:
    """Add `symbol` quoted in the configured quote asset, with the default steps unless given.
    Every amount a trade produces must be exact in its assets: the quantity step a whole number of the
    base asset's smallest unit (its scale if it exists already, else the 8 decimals it is created with),
    price step x quantity step a whole number of the quote asset's."""
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise ValidationFailed("symbol must be 2-16 characters A-Z 0-9.", "symbol")
    values = DEFAULT_STEPS | steps
    quote = ctx.settings.quote_currency
    ctx.reload_markets(force=True)  # an asset created since the last read keeps the scale it has
    quote_scale = ctx.asset_scales.get(quote)
    base_scale = ctx.asset_scales.get(symbol, BASE_SCALE)
    if _decimals(values["quantity_step"]) > base_scale:
        raise ValidationFailed(f"quantity_step must have at most {base_scale} decimals, the scale of {symbol}.",
                               "quantity_step")
    if quote_scale is None or _decimals(values["price_step"] * values["quantity_step"]) > quote_scale:
        raise ValidationFailed("price_step x quantity_step must fit the quote asset's scale.", "price_step")
    with ctx.uow() as uow:
        if symbol in markets.load_markets(uow.session) or symbol == quote:
            raise ValidationFailed(f"Market {symbol} already exists.", "symbol")
        market_id = markets.add(uow.session, symbol=symbol, quote_asset=quote, base_scale=BASE_SCALE, **values)
        uow.commit()
    ctx.reload_markets(force=True)
    return market_id


def _decimals(amount: Decimal) -> int:
    """Digits after the point that `amount` needs (negative for a multiple of 10)."""
    exponent = amount.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # "n", "N", "F": the steps were parsed as finite amounts
        raise InvariantViolation(f"not a finite amount: {amount}")
    return -exponent
