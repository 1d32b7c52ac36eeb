"""Rows rendered as the API's resources (amounts stay `Decimal`; schemas format them).
Sums go through `money`: Python's default context keeps 28 digits, a DECIMAL(38,18) sum needs 39."""
from __future__ import annotations

from datetime import datetime

from orders_app import money
from orders_app.models import FINAL_STATUSES, Account, Order
from orders_app.repositories.markets import MarketSpec
from orders_app.repositories.trades import FillRow

# The worker records a cancel's reason as the engine names it; the API speaks of who asked for it. Mapped
# when rendered, so rows written before this name existed need no rewrite.
_STATUS_REASON_NAMES = {"cancel_requested": "user_cancel"}


def iso_utc(moment: datetime | None) -> str | None:
    """'2025-07-14T16:53:01.077Z' — stored times are naive UTC."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def status_reason(order: Order) -> str | None:
    """Why the order became final; None while it is open."""
    if order.status not in FINAL_STATUSES or order.status_reason is None:
        return None
    return _STATUS_REASON_NAMES.get(order.status_reason, order.status_reason)


def order_view(order: Order, market: MarketSpec) -> dict:
    final = order.status in FINAL_STATUSES
    remaining = None
    if order.quantity is not None:
        remaining = 0 if final else money.subtract(order.quantity, order.filled_quantity)
    return {
        "id": order.id, "user_id": order.user_id, "order_type": order.side, "type": order.type,
        "currency_symbol": market.symbol, "market": market.name, "price": order.price, "quantity": order.quantity,
        "quote_quantity": order.quote_quantity, "filled_quantity": order.filled_quantity,
        "sell_quantity": order.filled_quantity, "remaining_quantity": remaining, "filled_quote": order.filled_quote,
        "status": order.status, "status_reason": status_reason(order),
        "time_in_force": order.time_in_force, "post_only": bool(order.post_only),
        "client_order_id": order.client_order_id, "fee": order.fee, "fee_asset": order.fee_asset,
        "cancel_requested": order.cancel_requested_at is not None,
        "timestamp": iso_utc(order.created_at), "updated_at": iso_utc(order.updated_at),
    }


def fill_view(fill: FillRow, market: MarketSpec) -> dict:
    """A user's side of a trade; its fee is paid in the asset it received."""
    return {
        "trade_id": fill.trade_id, "order_id": fill.order_id, "market": market.name,
        "currency_symbol": market.symbol, "side": fill.side, "price": fill.price, "quantity": fill.quantity,
        "quote_quantity": money.multiply(fill.price, fill.quantity), "fee": fill.fee,
        "fee_asset": market.symbol if fill.side == "buy" else market.quote_asset,
        "liquidity": "taker" if fill.side == fill.taker_side else "maker", "timestamp": iso_utc(fill.created_at),
    }


def balance_view(account: Account) -> dict:
    return {"user_id": account.user_id, "currency_symbol": account.asset,
            "balance": money.add(account.available, account.locked), "available": account.available,
            "locked": account.locked}
