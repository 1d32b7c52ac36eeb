"""Rows rendered as resources keep every digit: amounts are added in the money context, not Python's 28 digits."""
from __future__ import annotations

from decimal import Decimal

from orders_app.models import Account
from orders_app.services.views import balance_view


def test_a_balance_is_available_plus_locked_exactly_beyond_28_digits():
    account = Account(user_id=1, asset="USD", available=Decimal("12345678901234567890.123456789012345678"),
                      locked=Decimal("1.000000000000000001"))
    assert balance_view(account)["balance"] == Decimal("12345678901234567891.123456789012345679")
