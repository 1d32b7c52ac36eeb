"""money: parsing, step checks, exact arithmetic, canonical formatting."""
from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders_app import money

PRICE_STEP, QTY_STEP = Decimal("0.000001"), Decimal("0.00000001")
MAX = Decimal("1000000000")

prices = st.integers(min_value=1, max_value=10**15).map(lambda n: Decimal(n) * PRICE_STEP)
quantities = st.integers(min_value=1, max_value=10**17).map(lambda n: Decimal(n) * QTY_STEP)


@pytest.mark.parametrize("raw,expected", [
    (5, "5"), ("5", "5"), ("5.123456", "5.123456"), ("5.1234560", "5.123456"), (Decimal("5.123456"), "5.123456"),
    ("0.00000001", "0.00000001"), (Decimal("1E+1"), "10"), ("007.50", "7.5"), (Decimal("1E+5"), "100000"),
    (Decimal("1." + "0" * 5000), "1"),
])
def test_parse_and_format_round_trip_canonically(raw, expected):
    assert money.format_amount(money.parse_amount(raw)) == expected


@pytest.mark.parametrize("raw", [True, False, None, 1.5, "1e3", "NaN", "Infinity", "-Infinity", "", " ", "0x10",
                                 "1,5", "1.", ".5", "+1", "\u0665", "1" * 65, [], {}, Decimal("NaN"),
                                 Decimal("Infinity"), Decimal("1E+400"), Decimal("1E+999999999999999999"),
                                 Decimal("1E-999999999999999999"), "1e999999999999", "1E+5", "9" * 64 + "9"])
def test_parse_rejects_what_is_not_a_plain_decimal(raw):
    with pytest.raises(money.AmountError):
        money.parse_amount(raw)


@pytest.mark.parametrize("raw", ["5\n", "5\r\n", " 5", "5 ", "\t5", "5\u00a0"])
def test_a_decimal_string_must_be_the_whole_value_without_surrounding_whitespace(raw):
    with pytest.raises(money.AmountError):
        money.parse_amount(raw)


@pytest.mark.parametrize("raw", [Decimal("1." + "0" * 5000 + "1"), Decimal("0." + "1" * 100),
                                 Decimal("1" * 30 + "." + "1" * 31)])
def test_a_number_with_more_significant_digits_than_can_be_held_exactly_is_refused(raw):
    with pytest.raises(money.AmountError, match="significant digits"):
        money.parse_positive(raw, step=QTY_STEP, maximum=MAX)


@pytest.mark.parametrize("raw", ["-0", Decimal("-0"), "-0.00000000", 0])
def test_negative_zero_is_refused_as_not_positive(raw):
    with pytest.raises(money.AmountError, match="greater than zero"):
        money.parse_positive(raw, step=QTY_STEP, maximum=MAX)


def test_float_input_is_refused_never_interpreted():
    with pytest.raises(money.AmountError):
        money.parse_amount(0.1)


@given(prices)
def test_values_on_the_price_step_are_accepted_exactly(price):
    assert money.parse_positive(str(price), step=PRICE_STEP, maximum=MAX) == price


@given(st.integers(min_value=1, max_value=10**15), st.integers(min_value=1, max_value=9))
def test_values_finer_than_the_step_are_rejected_never_rounded(ticks, extra_digit):
    too_precise = Decimal(ticks) * PRICE_STEP + Decimal(extra_digit) * PRICE_STEP / 10
    with pytest.raises(money.AmountError):
        money.parse_positive(str(too_precise), step=PRICE_STEP, maximum=MAX)


@given(st.decimals(allow_nan=False, allow_infinity=False, max_value=0, places=8))
def test_zero_and_negative_amounts_are_rejected(amount):
    with pytest.raises(money.AmountError):
        money.parse_positive(str(amount), step=QTY_STEP, maximum=MAX)


@given(prices, quantities)
def test_price_times_quantity_is_exact_and_on_the_quote_scale(price, quantity):
    product = money.multiply(price, quantity)
    assert money.is_on_step(product, money.scale_step(14))
    assert money.fits_database(product)
    assert money.to_units(product, money.scale_step(14)) == (money.to_units(price, PRICE_STEP)
                                                             * money.to_units(quantity, QTY_STEP))


@given(quantities, quantities)
def test_add_and_subtract_are_exact_inverses(a, b):
    assert money.subtract(money.add(a, b), b) == a


@given(st.integers(min_value=0, max_value=10**20))
def test_units_round_trip(units):
    assert money.to_units(money.from_units(units, QTY_STEP), QTY_STEP) == units


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e12"), max_value=Decimal("1e12"),
                   places=18))
def test_format_is_plain_canonical_and_parses_back_to_the_same_value(amount):
    text = money.format_amount(amount)
    assert "E" not in text and "e" not in text
    assert text == "0" or not (("." in text and text.endswith("0")) or text.endswith("."))
    assert Decimal(text) == amount


def test_inexact_arithmetic_raises_instead_of_rounding():
    with pytest.raises(decimal.Inexact):
        money.multiply(Decimal("1." + "1" * 40), Decimal("1." + "1" * 40))


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e21"), max_value=Decimal("1e21"),
                   places=20))
def test_the_cheap_plain_text_fit_check_agrees_with_the_exact_one(amount):
    assert money.plain_fits_database(format(amount, "f")) == money.fits_database(amount)


def test_amounts_beyond_the_database_columns_do_not_fit():
    assert not money.fits_database(Decimal("1e20"))
    assert not money.fits_database(Decimal("0.0000000000000000001"))
    assert money.fits_database(Decimal("99999999999999999999.999999999999999999"))
