"""Rate limiting of order placement per API key (RATE_LIMIT_ORDERS_PER_SECOND, RATE_LIMIT_BURST; 0 = off).

Runs after authentication and before validation and the service: a limited request is answered
`429 RATE_LIMITED` with `Retry-After` (whole seconds, at least 1) and changes nothing. A batch of orders
takes one token per order (`limit_order_batch`). A user has one active API key, so the bucket is the
user's (rotating the key does not refill it). The admin token is not limited. The buckets are shared by
every gunicorn worker of the host (orders_app/ratelimit.py).
"""
from __future__ import annotations

import math
from decimal import Decimal

from flask import request

from orders_app.api.base import current_principal, service_context
from orders_app.errors import RateLimited, present
from orders_app.metrics import ORDERS_REFUSED
from orders_app.ratelimit import NS_PER_S, host_table

LIMITED_ENDPOINTS = {("POST", "orders.Orders")}


def limit_order_placement():
    """A `before_request` hook of the orders blueprint: raises RateLimited (429 with Retry-After, rendered
    by the error handlers like every error) when the caller's bucket is empty."""
    if (request.method, request.endpoint) not in LIMITED_ENDPOINTS:
        return None
    refusal = _take_order_token()
    if refusal is not None:
        raise refusal
    return None


def limit_order_batch(orders: int) -> list[RateLimited | None]:
    """One token per order of a batch, in order: an order that gets none is refused alone (429 in its
    result). When the first gets none, the whole request is refused (429 with Retry-After), as one order is."""
    refusals: list[RateLimited | None] = []
    for _ in range(orders):
        refusal = refusals[-1] if refusals and refusals[-1] is not None else _take_order_token()
        if refusal is None:
            refusals.append(None)
            continue
        if not refusals:
            raise refusal
        if refusals[-1] is not None:  # an empty bucket is not asked again; each refusal is still counted
            ORDERS_REFUSED.labels("RATE_LIMITED").inc()
        refusals.append(refusal)
    return refusals


def _take_order_token() -> RateLimited | None:
    settings = service_context().settings
    rate = settings.rate_limit_orders_per_second
    if not rate:
        return None
    principal = current_principal()
    if principal.is_admin:
        return None
    burst = settings.rate_limit_burst or max(1, math.ceil(rate))
    interval_ns = int(Decimal(NS_PER_S) / rate)
    wait_ns = host_table().take(present(principal.user_id, "a principal that is not the admin is a user"),
                                interval_ns, burst)
    if not wait_ns:
        return None
    retry_after_s = max(1, -(-wait_ns // NS_PER_S))  # whole seconds, rounded up
    ORDERS_REFUSED.labels("RATE_LIMITED").inc()
    return RateLimited(f"Too many orders: at most {burst} at once and {rate} per second per API key; "
                       f"retry in {retry_after_s} s.", retry_after_s)
