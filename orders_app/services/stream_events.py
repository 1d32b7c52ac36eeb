"""What the WebSocket streams need from a settled batch, written to the outbox in the settling transaction.

Per batch and market, one `book-events` delta: the new total of every price level the batch touched
(read from the in-memory book after the batch, which is the database's book at `seq`; "0" removes a
level), chained by `prev_seq` so a reader can tell a gap; and one `order-updates` message listing every
order the batch changed, with its full view and owner, for the private `orders` channel (split in chunks
of ORDERS_PER_MESSAGE, far below Kafka's message size limit). One message per batch rather than per order:
each outbox row costs an insert, a relay read, a produce and a mark, which for a busy market were more
than the settlement itself. The relay publishes them; the worker never sends to Kafka from here. Both
kinds go in one statement.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace

from orders_app import money
from orders_app.matching import OrderBook
from orders_app.repositories import outbox
from orders_app.repositories.markets import MarketSpec
from orders_app.services import ServiceContext
from orders_app.services.batch_effects import OrderRow
from orders_app.services.events import wire_amounts
from orders_app.services.views import iso_utc, order_view

STREAM_EVENT_VERSION = 1
ORDERS_PER_MESSAGE = 200  # about 400 bytes each: a message stays well under Kafka's 1 MB default


def record_stream_events(session, ctx: ServiceContext, spec: MarketSpec, book: OrderBook, orders: dict,
                         order_rows: Sequence[OrderRow], prev_seq: int, seq: int, now) -> None:
    """`order_rows` are settlement's new states of the orders the batch changed; `orders` their locked rows
    before the batch."""
    settings, name, timestamp = ctx.settings, spec.name, iso_utc(now)
    touched: dict[str, set[int]] = {"buy": set(), "sell": set()}
    rows = [[settings.book_events_topic, name, "book_delta", _dump({
        "type": "delta", "version": STREAM_EVENT_VERSION, "market": name, "seq": seq, "prev_seq": prev_seq,
        "timestamp": timestamp, **_level_totals(spec, book, orders, order_rows, touched)})]]
    updates = []
    for change in order_rows:
        order = orders[change.order_id]
        fee_asset = spec.base_asset if order.side == "buy" else spec.quote_asset  # the asset it receives
        row = SimpleNamespace(**{**order._asdict(), "filled_quantity": change.filled_quantity, "status": change.status,
                                 "fee": change.fee, "fee_asset": fee_asset, "updated_at": now})
        row.filled_quote, row.status_reason = change.filled_quote, change.status_reason
        view = order_view(row, spec)  # type: ignore[arg-type]  # a row with the columns order_view reads
        updates.append({"user_id": order.user_id, "order": wire_amounts(view)})
    for start in range(0, len(updates), ORDERS_PER_MESSAGE):
        rows.append([settings.order_updates_topic, name, "order_updates", _dump({
            "type": "orders", "version": STREAM_EVENT_VERSION, "market": name, "seq": seq,
            "orders": updates[start:start + ORDERS_PER_MESSAGE]})])
    outbox.add_events(session, rows=rows, created_at=now)


def _level_totals(spec: MarketSpec, book: OrderBook, orders: dict, order_rows: Sequence[OrderRow],
                  touched: dict[str, set[int]]) -> dict[str, list[list[str | None]]]:
    """Every level a changed limit order sits or sat at: filled makers, rested or cancelled orders. A
    level listed that did not change is harmless (its total is still the truth)."""
    for row in order_rows:
        order = orders[row.order_id]
        if order.type == "limit" and order.price is not None and money.is_on_step(order.price, spec.price_step):
            touched[order.side].add(money.to_units(order.price, spec.price_step))
    sides = {}
    for side, key in (("buy", "bids"), ("sell", "asks")):
        ticks = sorted(touched[side], reverse=(side == "buy"))  # best first, as /api/orderbook
        sides[key] = [[money.format_amount(money.from_units(t, spec.price_step)),
                       money.format_amount(money.from_units(book.level_lots(side, t), spec.quantity_step))]
                      for t in ticks]
    return sides


def _dump(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)
