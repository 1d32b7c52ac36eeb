"""Request bodies of the orders API, and the answer the reference exchange expects for a command."""
from __future__ import annotations

from decimal import Decimal
from typing import Callable

from tests.support.reference_exchange import Refused


def amount(value: Decimal) -> str:
    return format(value, "f")


def order_body(symbol: str, side: str, type_: str = "limit", tif: str = "GTC", post_only: bool = False,
               price: Decimal | None = None, quantity: Decimal | None = None, quote_quantity: Decimal | None = None,
               client_order_id: str | None = None) -> dict:
    body = {"order_type": side, "currency_symbol": symbol, "type": type_}
    if type_ == "limit":
        body |= {"price": amount(price), "time_in_force": tif, "post_only": post_only}
    for name, value in (("quantity", quantity), ("quote_quantity", quote_quantity)):
        if value is not None:
            body[name] = amount(value)
    if client_order_id is not None:
        body["client_order_id"] = client_order_id
    return body


def expected_answer(apply: Callable[[], object]) -> tuple[int, str | None]:
    """Apply a command to the model: (201, None) if it takes it, else its refusal's status and code."""
    try:
        apply()
    except Refused as refused:
        return refused.status, refused.code
    return 201, None
