"""The only place amounts are interpreted: parsing, step checks, exact arithmetic, formatting.

Amounts are `Decimal`, never float. Arithmetic runs in `MONEY_CONTEXT`, which traps `Inexact`: an
operation that would have to round raises instead of silently losing a digit. Values are judged by value
(`"5.1234560"` is `5.123456`); a value finer than its step is rejected, never rounded.
"""
from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields

# 60 digits hold any DECIMAL(38,18) value and any product of two of them that we compute exactly.
MONEY_CONTEXT = decimal.Context(
    prec=60, rounding=decimal.ROUND_HALF_EVEN, Emin=-999, Emax=999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact,
           decimal.FloatOperation],
)
DB_SCALE = 18  # fractional digits of every DECIMAL(38,18) amount column
DB_INTEGER_DIGITS = 20
_TEXT_MAX_CHARS = 64
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class AmountError(ValueError):
    """An amount that cannot be accepted; the message is a human sentence."""


def parse_amount(value: object) -> Decimal:
    """A JSON number (int or Decimal, from a `parse_float=Decimal` parser) or a plain decimal string."""
    if isinstance(value, bool):
        raise AmountError("must be a number or a decimal string, not a boolean")
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        # The whole value: no surrounding whitespace, and a trailing newline does not pass.
        if len(value) > _TEXT_MAX_CHARS or not _PLAIN_DECIMAL.fullmatch(value):
            raise AmountError("must be a decimal number such as \"5.123456\"")
        result = Decimal(value)
    else:
        raise AmountError("must be a number or a decimal string")
    if not result.is_finite():
        raise AmountError("must be a finite number")
    if abs(result.adjusted()) > 40:
        raise AmountError("is out of range")
    try:
        result.normalize(MONEY_CONTEXT)  # judged by value: trailing zeros are free, other digits are not
    except decimal.Inexact:
        raise AmountError(f"has more than {MONEY_CONTEXT.prec} significant digits") from None
    return result


def parse_positive(value: object, *, step: Decimal, maximum: Decimal, minimum: Decimal | None = None) -> Decimal:
    """Parse and check an amount: > 0, on `step`, within [minimum, maximum]."""
    amount = parse_amount(value)
    if amount <= 0:
        raise AmountError("must be greater than zero")
    if amount > maximum:
        raise AmountError(f"must be at most {format_amount(maximum)}")
    if minimum is not None and amount < minimum:
        raise AmountError(f"must be at least {format_amount(minimum)}")
    if not is_on_step(amount, step):
        raise AmountError(f"must be a multiple of {format_amount(step)} (no more decimals than that)")
    return normalize(amount)


def is_on_step(amount: Decimal, step: Decimal) -> bool:
    with decimal.localcontext(MONEY_CONTEXT):
        return amount % step == 0


def normalize(amount: Decimal) -> Decimal:
    """The same value with no trailing zeros (still exact)."""
    with decimal.localcontext(MONEY_CONTEXT):
        return amount.normalize() if amount else Decimal(0)


def multiply(a: Decimal, b: Decimal) -> Decimal:
    """Exact product; raises if it cannot be represented exactly."""
    with decimal.localcontext(MONEY_CONTEXT):
        return a * b


def add(a: Decimal, b: Decimal) -> Decimal:
    with decimal.localcontext(MONEY_CONTEXT):
        return a + b


def subtract(a: Decimal, b: Decimal) -> Decimal:
    with decimal.localcontext(MONEY_CONTEXT):
        return a - b


def to_units(amount: Decimal, step: Decimal) -> int:
    """Exact count of `step`s in `amount` (the matching engine's integer ticks and lots)."""
    with decimal.localcontext(MONEY_CONTEXT):
        units = amount / step
        if units != units.to_integral_value():
            raise AmountError(f"{amount} is not a multiple of {step}")
        return int(units)


def from_units(units: int, step: Decimal) -> Decimal:
    with decimal.localcontext(MONEY_CONTEXT):
        return normalize(Decimal(units) * step)


def fits_database(amount: Decimal) -> bool:
    """True when the amount is representable in a DECIMAL(38,18) column without rounding."""
    # copy_abs(), not abs(): abs() rounds to the ambient context's 28 digits.
    return is_on_step(amount, scale_step(DB_SCALE)) and amount.copy_abs() < Decimal(10) ** DB_INTEGER_DIGITS


def plain_fits_database(text: str) -> bool:
    """The same test as `fits_database` on an amount already in plain notation (cheap: string lengths).
    Trailing fractional zeros beyond the scale are harmless; any other digit there would be rounded."""
    whole, _, fraction = text.lstrip("-").partition(".")
    return len(whole.lstrip("0")) <= DB_INTEGER_DIGITS and len(fraction.rstrip("0")) <= DB_SCALE


def format_amount(amount: Decimal | None) -> str | None:
    """Canonical plain notation: no exponent, no trailing zeros ("2", "0.00000001", "10")."""
    if amount is None:
        return None
    if amount == 0:
        return "0"
    return format(normalize(amount), "f")


def scale_step(scale: int) -> Decimal:
    """The smallest amount with `scale` fractional digits: 8 -> Decimal('1E-8')."""
    return Decimal(1).scaleb(-scale)


CANONICAL_DECIMAL_PATTERN = r"^(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"  # what format_amount writes: "2", "0.5"


class DecimalString(fields.Field):
    """Marshmallow field: loads with `parse_amount`, dumps with `format_amount` — never float."""

    def _serialize(self, value: Decimal | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return format_amount(value)

    def _deserialize(self, value: object, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Decimal:
        try:
            return parse_amount(value)
        except AmountError as exc:
            raise ValidationError(f"{attr} {exc}") from None
