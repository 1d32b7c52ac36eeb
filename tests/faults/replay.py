"""What the pure engine makes of a market's orders, to compare with what the database recorded."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from orders_app import money
from orders_app.matching import Fill, OrderBook
from orders_app.models import LedgerEntry, Order, OutboxEvent, Trade
from orders_app.services.batch_effects import incoming_from_row


def engine_replay(ctx, market_id, spec) -> Counter:
    """The trades the pure engine makes from the market's command log (placements, cancels) in sequence
    order, each order as it was accepted (nothing filled, its original hold)."""
    expected, book = Counter(), OrderBook()
    with ctx.uow() as uow:
        session = uow.session
        orders = {order.id: order for order in session.execute(
            select(Order).where(Order.market_id == market_id)).scalars()}
        holds = dict(session.execute(
            select(LedgerEntry.order_id, LedgerEntry.delta_locked)
            .where(LedgerEntry.reason == "order_hold", LedgerEntry.order_id.in_(list(orders)))).all())
        commands = session.execute(select(OutboxEvent.event_type, OutboxEvent.order_id)
                                   .where(OutboxEvent.market_id == market_id).order_by(OutboxEvent.seq)).all()
        for event_type, order_id in commands:
            if event_type == "cancel_requested":
                book.cancel(order_id)
                continue
            assert event_type == "order_placed", f"the replay does not model {event_type}"
            as_accepted = Order(**{c.key: getattr(orders[order_id], c.key) for c in Order.__mapper__.column_attrs})
            as_accepted.filled_quantity, as_accepted.locked_amount = 0, holds.get(order_id, 0)
            for fact in book.submit(incoming_from_row(as_accepted, spec)):
                if isinstance(fact, Fill):
                    expected[(fact.taker_order_id, fact.maker_order_id, fact.price_ticks, fact.qty_lots)] += 1
    return expected


def recorded_trades(ctx, market_id, spec) -> Counter:
    actual = Counter()
    with ctx.uow() as uow:
        for trade in uow.session.execute(select(Trade).where(Trade.market_id == market_id)).scalars():
            taker, maker = ((trade.buy_order_id, trade.sell_order_id) if trade.taker_side == "buy"
                            else (trade.sell_order_id, trade.buy_order_id))
            actual[(taker, maker, money.to_units(trade.price, spec.price_step),
                    money.to_units(trade.quantity, spec.quantity_step))] += 1
    return actual
