"""Rows rendered as resources keep every digit: amounts are added in the money context, not Python's 28 digits."""
from __future__ import annotations

from decimal import Decimal

from orders_app.models import Account, Order
from orders_app.repositories.markets import MarketSpec
from orders_app.services.views import balance_view, order_view


def test_a_balance_is_available_plus_locked_exactly_beyond_28_digits():
    account = Account(user_id=1, asset="USD", available=Decimal("12345678901234567890.123456789012345678"),
                      locked=Decimal("1.000000000000000001"))
    assert balance_view(account)["balance"] == Decimal("12345678901234567891.123456789012345679")


def _order(status: str, reason: str | None) -> Order:
    return Order(id=1, user_id=1, side="buy", type="limit", price=Decimal(1), quantity=Decimal(1),
                 quote_quantity=None, filled_quantity=Decimal(0), filled_quote=Decimal(0), status=status,
                 status_reason=reason, time_in_force="GTC", post_only=False, client_order_id=None,
                 cancel_requested_at=None, created_at=None, updated_at=None)


def test_a_cancel_the_user_asked_for_is_reported_as_user_cancel_and_an_open_order_has_no_reason():
    market = MarketSpec(1, "BTC", "USD", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"), Decimal(10**6),
                        Decimal(10**6))
    assert order_view(_order("cancelled", "cancel_requested"), market)["status_reason"] == "user_cancel"
    assert order_view(_order("cancelled", "ioc"), market)["status_reason"] == "ioc"
    assert order_view(_order("partially_filled", "filled"), market)["status_reason"] is None
    assert order_view(_order("rejected", None), market)["market"] == "BTC-USD"
