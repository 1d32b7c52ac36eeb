"""Order rows as settlement reads them, for the pure settlement tests (no database)."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace


def resting_limit_order(order_id: int, user_id: int, side: str, price: Decimal, quantity: Decimal) -> SimpleNamespace:
    """A new GTC limit order holding what it needs: price × quantity for a buy, the quantity for a sell."""
    hold = price * quantity if side == "buy" else quantity
    return SimpleNamespace(id=order_id, user_id=user_id, side=side, type="limit", time_in_force="GTC",
                           post_only=False, price=price, quantity=quantity, filled_quantity=Decimal(0),
                           filled_quote=Decimal(0), locked_amount=hold, status="pending", status_reason=None,
                           fee=Decimal(0))
