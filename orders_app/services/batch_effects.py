"""One batch's effects, from the engine's facts: what happens to each order, the trades, the postings.

Pure (no session, no clock): `settling.py` feeds it the locked order rows and the engine's facts, and
writes the `OrderRow`s, trades and postings it returns. Here live the rules that turn a fill into money
moves (the maker's price; a buyer's price improvement released at once), a final order into the release
of its remaining hold, and an order the engine cannot take into a rejection of that order alone.
"""
from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from orders_app import money
from orders_app.errors import invariant, present
from orders_app.matching import Done, Fill, Incoming, OrderBook, Rested
from orders_app.repositories.markets import MarketSpec
from orders_app.repositories.settlement import LockedOrder
from orders_app.services.accounting import NO_FEES, BatchLedger, FeeTerms, Posting, Trade, trade_postings

ZERO = Decimal(0)
REJECTED, UNPROCESSABLE = "rejected", "unprocessable"


class OrderRow(NamedTuple):
    """An order's state after the batch (the column order of `settlement.write_orders`)."""
    order_id: int
    filled_quantity: Decimal
    filled_quote: Decimal
    locked_amount: Decimal
    status: str
    status_reason: str | None
    queue_seq: int | None  # None: unchanged
    fee: Decimal  # all its trades' fees so far


@dataclass
class OrderChange:
    """What one batch did to one order."""
    filled_lots: int = 0
    paid: Decimal = ZERO  # sum of price x quantity over its trades
    fee: Decimal = ZERO  # sum of its trades' fees (in the asset it receives)
    hold_used: Decimal = ZERO  # taken from its hold by its trades (paid + price improvement, or quantity)
    status: str | None = None  # None: unchanged unless it traded
    reason: str | None = None
    final: bool = False
    unspent_budget: int | None = None
    queue_seq: int | None = None  # an applied amendment moved it to the back of its level


def whole_units(amount: Decimal, unit: Decimal) -> tuple[int, Decimal]:
    """(how many whole `unit`s `amount` holds, the dust below one unit)."""
    with decimal.localcontext(money.MONEY_CONTEXT):
        dust = amount % unit
    return money.to_units(money.subtract(amount, dust), unit), dust


def incoming_from_row(order: LockedOrder, spec: MarketSpec, filled: Decimal | None = None,
                      withheld: Decimal = ZERO) -> Incoming:
    """The engine's view of an order row (a `LockedOrder`, or an `Order`, which has its fields): its quantity not
    filled yet (`filled` overrides the row's, within a batch) and not withheld for a later amendment."""
    price_ticks = None if order.price is None else money.to_units(order.price, spec.price_step)
    filled = order.filled_quantity if filled is None else filled
    lots = None if order.quantity is None else money.to_units(order.quantity - filled - withheld,
                                                               spec.quantity_step)
    budget = None
    if order.type == "market" and order.side == "buy":
        # The hold is on the quote asset's scale, which may be finer than a unit of price step x quantity
        # step: what is below one unit can never buy a lot, so it is dust, released when the order ends.
        budget = whole_units(order.locked_amount, spec.price_step * spec.quantity_step)[0]
    return Incoming(order.id, order.user_id, order.side, price_ticks, lots, order.time_in_force,
                    bool(order.post_only), budget)


class BatchEffects:
    """What one batch's engine facts do: order changes, trades (with each buyer's price improvement) and
    the ledger postings they imply. Pure; `settling.py` reads and writes around it."""

    def __init__(self, spec: MarketSpec, fees: FeeTerms = NO_FEES):
        self.spec, self.fees = spec, fees
        self.changes: dict[int, OrderChange] = {}
        self.trades: list[Trade] = []
        self.improvements: list[Decimal] = []  # per trade: the buyer's hold released by a better price
        self.ledger = BatchLedger()
        self.unprocessable: list[tuple[int, str]] = []

    def change(self, order_id: int) -> OrderChange:
        change = self.changes.get(order_id)
        if change is None:
            change = self.changes[order_id] = OrderChange()
        return change

    def on_fill(self, fill: Fill, seq: int, match_index: int) -> None:
        spec = self.spec
        price = money.from_units(fill.price_ticks, spec.price_step)
        quantity = money.from_units(fill.qty_lots, spec.quantity_step)
        cost = money.multiply(price, quantity)
        if fill.taker_side == "buy":
            buy_id, sell_id = fill.taker_order_id, fill.maker_order_id
            buyer, seller = fill.taker_user_id, fill.maker_user_id
            limit_ticks = fill.taker_limit_ticks
        else:
            buy_id, sell_id = fill.maker_order_id, fill.taker_order_id
            buyer, seller = fill.maker_user_id, fill.taker_user_id
            limit_ticks = fill.price_ticks  # a resting buy trades at its own limit
        improvement = ZERO
        if limit_ticks is not None and limit_ticks != fill.price_ticks:
            improvement = money.multiply(money.from_units(limit_ticks - fill.price_ticks, spec.price_step), quantity)
        buy_change, sell_change = self.change(buy_id), self.change(sell_id)
        for change in (buy_change, sell_change):
            change.filled_lots += fill.qty_lots
            change.paid = money.add(change.paid, cost)
        buy_change.hold_used = money.add(buy_change.hold_used, money.add(cost, improvement))
        sell_change.hold_used = money.add(sell_change.hold_used, quantity)
        buyer_fee, seller_fee = self.fees.for_trade(quantity, cost, fill.taker_side)
        buy_change.fee = money.add(buy_change.fee, buyer_fee)
        sell_change.fee = money.add(sell_change.fee, seller_fee)
        self.trades.append(Trade(price, quantity, buy_id, sell_id, buyer, seller, fill.taker_side, seq, match_index,
                                 buyer_fee, seller_fee))
        self.improvements.append(improvement)
        if fill.maker_remaining_lots == 0:
            maker = self.change(fill.maker_order_id)
            maker.status, maker.reason, maker.final = "completed", "filled", True

    def on_facts(self, facts: list, seq: int) -> None:
        match_index = 0
        for fact in facts:
            if isinstance(fact, Fill):
                self.on_fill(fact, seq, match_index)
                match_index += 1
            else:
                self.on_terminal(fact)

    def on_terminal(self, fact: Rested | Done) -> None:
        change = self.change(fact.order_id)
        if isinstance(fact, Rested):
            change.status, change.final = "rested", False
        else:
            change.status, change.reason, change.final = fact.status, fact.reason, True
            change.unspent_budget = fact.unspent_budget

    def cancel_unmatched(self, order_id: int, reason: str) -> None:
        """End an order that never reached the book (its hold is released with the other final orders')."""
        change = self.change(order_id)
        change.status, change.reason, change.final, change.unspent_budget = "cancelled", reason, True, None

    def engine_input(self, book: OrderBook, order_id: int, convert: Callable[..., Incoming]) -> Incoming | None:
        """`convert()`, checked by the engine without touching the book; an order it cannot be turned
        into (amounts off its market's steps, a budget below one unit...) is rejected instead, its hold
        released, so one bad row never stops its market. None then. (`convert` takes no arguments; typed
        `...` for the callers' lambdas, which bind their loop's values as parameter defaults.)"""
        try:
            incoming = convert()
            book.check(incoming)
            return incoming
        except Exception as error:  # noqa: BLE001 - whatever this one order's data breaks, it alone fails
            change = self.change(order_id)
            change.status, change.reason, change.final, change.unspent_budget = REJECTED, UNPROCESSABLE, True, None
            self.unprocessable.append((order_id, f"{type(error).__name__}: {error}"))
            return None

    def post_trades(self, trade_ids: list[int]) -> None:
        """The ledger postings of the batch's trades, once the database numbered them."""
        base, quote = self.spec.base_asset, self.spec.quote_asset
        for trade, improvement, trade_id in zip(self.trades, self.improvements, trade_ids, strict=True):
            self.ledger.post(trade_postings(trade, base, quote, improvement, trade_id, self.fees.fee_user_id))

    def order_rows(self, orders: dict[int, LockedOrder]) -> list[OrderRow]:
        """New order states; journals the release of every hold that became final."""
        spec, rows = self.spec, []
        quote_unit = spec.price_step * spec.quantity_step
        for order_id in sorted(self.changes):
            change, order = self.changes[order_id], orders[order_id]
            filled = money.add(order.filled_quantity, money.from_units(change.filled_lots, spec.quantity_step))
            locked = money.subtract(order.locked_amount, change.hold_used)
            invariant(locked >= 0, f"order {order_id}: trades used more than its hold")
            if order.quantity is not None:
                invariant(filled <= order.quantity, f"order {order_id}: filled {filled} > quantity")
            status, reason = order.status, order.status_reason
            if change.final:
                status, reason = present(change.status, f"order {order_id}: final without a status"), change.reason
                if status == "completed" and order.quantity is not None and filled != order.quantity:
                    status, reason = "partially_filled", None  # not all of it was in the book (merge)
            elif change.status == "rested" or change.filled_lots:
                status = "partially_filled" if filled > 0 else "pending"
            if status in ("completed", "cancelled", "rejected"):
                if change.unspent_budget is not None and order.type == "market" and order.side == "buy":
                    dust = whole_units(order.locked_amount, quote_unit)[1]
                    invariant(locked == money.add(money.multiply(Decimal(change.unspent_budget), quote_unit), dust),
                              f"order {order_id}: unspent budget disagrees with the remaining hold")
                if locked:
                    asset = spec.held_asset(order.side)
                    self.ledger.post([Posting(order.user_id, asset, locked, -locked, "order_release", order_id)])
                    locked = ZERO
            else:  # open, so a limit order: it has a price and a quantity
                remaining = money.subtract(present(order.quantity, f"open order {order_id}: no quantity"), filled)
                expected = (remaining if order.side == "sell"
                            else money.multiply(present(order.price, f"open order {order_id}: no price"), remaining))
                invariant(locked == expected, f"order {order_id}: open hold {locked} != {expected}")
            rows.append(OrderRow(order_id, filled, money.add(order.filled_quote, change.paid), locked, status, reason,
                                 change.queue_seq, money.add(order.fee, change.fee)))
        return rows
