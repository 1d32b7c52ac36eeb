"""Assets and markets: creating them, halting and resuming a market, its fee rates, and the listings.

API processes and workers read a change within about a second (`ServiceContext.reload_markets`); the
process that makes it reads it at once. A market is refused unless every amount it can produce is exact in
its assets: a quantity is a whole number of the base asset's smallest unit, price x quantity of the quote's.
"""
from __future__ import annotations

import decimal
import re
from decimal import Decimal

from orders_app import money
from orders_app.errors import AlreadyExists, InvariantViolation, NotFound, UnknownSymbol, ValidationFailed
from orders_app.repositories import markets
from orders_app.repositories.markets import HALTED, TRADING, MarketSpec, market_name
from orders_app.services import ServiceContext

SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{2,16}")
ASSET_SCALE_MAX = 18  # the amount columns' scale
BASE_SCALE = 8  # of a base asset the CLI's add-market creates
FEE_RATE_MAX = Decimal("0.1")
DEFAULT_TERMS = {"price_step": Decimal("0.000001"), "quantity_step": Decimal("0.00000001"),
                 "min_quantity": Decimal("0.00000001"), "max_price": Decimal("1000000000"),
                 "max_quantity": Decimal("1000000000"), "min_notional": Decimal(0)}
FEE_RATES = ("maker_fee_rate", "taker_fee_rate")
# Products of two amount columns have up to 76 digits: judged exactly here, never by the money context (which
# would raise on them rather than round).
WIDE = decimal.Context(prec=100, traps=[decimal.Inexact, decimal.InvalidOperation])


def _whole_units(amount: Decimal, scale: int) -> bool:
    """Whether `amount` is a whole number of the smallest unit of an asset with `scale` decimals."""
    exponent = amount.normalize(WIDE).as_tuple().exponent
    if not isinstance(exponent, int):  # "n", "N", "F": the terms were parsed as finite amounts
        raise InvariantViolation(f"not a finite amount: {amount}")
    return -exponent <= scale


def asset_view(symbol: str, scale: int) -> dict:
    return {"symbol": symbol, "scale": scale}


def market_view(spec: MarketSpec) -> dict:
    return {"symbol": spec.name, "base": spec.symbol, "quote": spec.quote_asset, "price_step": spec.price_step,
            "quantity_step": spec.quantity_step, "min_quantity": spec.min_quantity, "max_price": spec.max_price,
            "max_quantity": spec.max_quantity, "min_notional": spec.min_notional,
            "maker_fee_rate": spec.maker_fee_rate, "taker_fee_rate": spec.taker_fee_rate, "status": spec.status}


def _check_symbol(symbol: object, field: str) -> str:
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
        raise ValidationFailed(f"{field} must be 2-16 characters A-Z 0-9.", field)
    return symbol


def add_asset(symbol: str, scale: int, ctx: ServiceContext) -> dict:
    """A new asset with `scale` decimals (fixed for good); 409 if it exists."""
    _check_symbol(symbol, "symbol")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= ASSET_SCALE_MAX:
        raise ValidationFailed(f"scale must be a whole number from 0 to {ASSET_SCALE_MAX}.", "scale")
    with ctx.uow() as uow:
        if not markets.add_asset(uow.session, symbol, scale):
            raise AlreadyExists(f"Asset {symbol} already exists.", "symbol")
        uow.commit()
    ctx.reload_markets(force=True)
    return asset_view(symbol, scale)


def list_assets(ctx: ServiceContext) -> list[dict]:
    ctx.reload_markets()
    return [asset_view(symbol, scale) for symbol, scale in sorted(ctx.asset_scales.items())]


def list_markets(ctx: ServiceContext) -> list[dict]:
    ctx.reload_markets()
    return [market_view(spec) for spec in sorted(ctx.markets.values(), key=lambda spec: spec.id)]


def _fee_rate(value: Decimal, field: str) -> Decimal:
    if not 0 <= value <= FEE_RATE_MAX or not money.fits_database(value):
        raise ValidationFailed(f"{field} must be from 0 to {FEE_RATE_MAX}, with at most 18 decimals.", field)
    return money.normalize(value)


def _check_terms(base: str, quote: str, terms: dict[str, Decimal], base_scale: int, quote_scale: int) -> None:
    for field, value in terms.items():
        if field in FEE_RATES:
            continue
        if (value < 0 if field == "min_notional" else value <= 0) or not money.fits_database(value):
            raise ValidationFailed(f"{field} must be {'at least' if field == 'min_notional' else 'above'} 0 "
                                   f"and fit 20 integer digits and 18 decimals.", field)
    if not _whole_units(terms["quantity_step"], base_scale):
        raise ValidationFailed(f"quantity_step must have at most {base_scale} decimals, the scale of {base}.",
                               "quantity_step")
    if not _whole_units(WIDE.multiply(terms["price_step"], terms["quantity_step"]), quote_scale):
        raise ValidationFailed(f"price_step x quantity_step must be a whole number of {quote}'s smallest unit "
                               f"({quote_scale} decimals).", "price_step")
    if WIDE.multiply(terms["max_price"], terms["max_quantity"]) >= Decimal(10) ** money.DB_INTEGER_DIGITS:
        raise ValidationFailed("max_price x max_quantity must fit 20 integer digits.", "max_price")


def add_market(base: str, ctx: ServiceContext, quote: str | None = None, *, create_base: bool = True,
               **terms: Decimal) -> int:
    """Add the market BASE-QUOTE (QUOTE defaults to QUOTE_CURRENCY) with the default terms unless given.
    `create_base`: a base asset that does not exist yet is created with 8 decimals (the CLI's habit; the
    admin API asks for existing assets)."""
    _check_symbol(base, "base")
    quote = _check_symbol(quote or ctx.settings.quote_currency, "quote")
    if base == quote:
        raise ValidationFailed("base and quote must differ.", "quote")
    values = DEFAULT_TERMS | {"maker_fee_rate": Decimal(0), "taker_fee_rate": Decimal(0)} | terms
    if "min_quantity" not in terms:
        values["min_quantity"] = max(values["min_quantity"], values["quantity_step"])
    for field in FEE_RATES:
        values[field] = _fee_rate(values[field], field)
    ctx.reload_markets(force=True)  # an asset created since the last read keeps the scale it has
    quote_scale, base_scale = ctx.asset_scales.get(quote), ctx.asset_scales.get(base)
    if quote_scale is None:
        raise UnknownSymbol(f"Unknown asset {quote!r}: create it first.", "quote")
    if base_scale is None and not create_base:
        raise UnknownSymbol(f"Unknown asset {base!r}: create it first.", "base")
    _check_terms(base, quote, values, BASE_SCALE if base_scale is None else base_scale, quote_scale)
    with ctx.uow() as uow:
        if market_name(base, quote) in markets.load_markets(uow.session):
            raise AlreadyExists(f"Market {market_name(base, quote)} already exists.", "base")
        if base_scale is None:
            markets.add_asset(uow.session, base, BASE_SCALE)
        market_id = markets.add(uow.session, base=base, quote=quote, **values)
        uow.commit()
    ctx.reload_markets(force=True)
    return market_id


def create_market(body: dict, ctx: ServiceContext) -> dict:
    """POST /api/admin/markets: the new market, rendered."""
    terms = {field: value for field, value in body.items() if field not in ("base", "quote")}
    market_id = add_market(body["base"], ctx, body["quote"], create_base=False, **terms)
    return market_view(ctx.market_by_id(market_id))


def update_market(name: str, changes: dict, ctx: ServiceContext) -> dict:
    """Halt or resume a market and/or change its fee rates (applied to trades settled after the commit)."""
    spec = ctx.resolve_market(name)
    if spec is None:
        raise NotFound(f"Market {name!r} does not exist.")
    values = {}
    if "status" in changes:
        if changes["status"] not in (TRADING, HALTED):
            raise ValidationFailed(f"status must be {TRADING} or {HALTED}.", "status")
        values["status"] = changes["status"]
    for field in FEE_RATES:
        if field in changes:
            values[field] = _fee_rate(changes[field], field)
    if values:
        with ctx.uow() as uow:
            markets.update_market(uow.session, spec.id, **values)
            uow.commit()
        ctx.reload_markets(force=True)
    return market_view(ctx.market_by_id(spec.id))


def fee_totals(ctx: ServiceContext) -> list[dict]:
    """What the fee account holds, per asset."""
    with ctx.uow() as uow:
        return [{"currency_symbol": asset, "amount": amount}
                for asset, amount in markets.fee_balances(uow.session)]
