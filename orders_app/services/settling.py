"""Matching and settling a market's commands: the book decides in memory, one transaction records it all.

`settle_commands(runtime, commands, ctx)`:
1. locks `market_state` (FOR UPDATE): while held no other worker settles this market. If its `last_seq`
   is not what this worker's book reflects (first use, another worker moved on, a failed batch), the
   book is rebuilt from the database first — the database decides, never the in-memory copy;
2. keeps only commands above `last_seq` (a duplicate or replayed Kafka record changes nothing) and reads
   any missing ones from the outbox, so commands apply contiguously, in sequence. A Kafka record is only a
   hint: each is checked against the database's command of its sequence (a placement against its order
   row's `seq`, anything else against the outbox), and one that differs is returned to be set aside while
   the database's command applies;
3. matches them through the pure engine (an order the engine cannot take is rejected, its hold released,
   and the batch goes on) and turns the facts into trades, order states, the four balance
   moves per trade, buyers' price-improvement releases, releases of final orders' holds, ledger rows and
   `trade-events` outbox rows, and adds the trades to the market's candles; checks invariants; sets
   `last_seq`; commits.
On any failure the book is dropped, so the next batch rebuilds it from the committed state.

The pure parts live beside it: `command_log.py` (which commands, checked against the database),
`batch_effects.py` (facts -> order changes, trades, postings) and `accounting.py` (postings -> balances).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from orders_app import money
from orders_app.errors import InvariantViolation, present
from orders_app.matching import OrderBook
from orders_app.messages import MarketCommand, TradeEvent
from orders_app.messaging.codec import encode_trade_event
from orders_app.models import FINAL_STATUSES
from orders_app.repositories import accounts, candles, settlement
from orders_app.repositories.markets import HALTED, MarketSpec
from orders_app.services import ServiceContext, utc_now
from orders_app.services.accounting import NO_FEES, FeeTerms, Trade, new_balances
from orders_app.services.batch_effects import BatchEffects, incoming_from_row
from orders_app.services.command_log import SetAside, commands_to_apply
from orders_app.services.stream_events import record_stream_events
from orders_app.services.views import iso_utc

ZERO = Decimal(0)
MARKET_HALTED = "market_halted"
BOOK_CHECK_ORDERS_MAX = 1_000  # full book invariant check after each batch up to this size (it is O(n))


@dataclass
class MarketRuntime:
    """A market's in-memory book and the sequence it reflects; `book is None` means "rebuild first"."""
    spec: MarketSpec
    book: OrderBook | None = None
    applied_seq: int = 0


@dataclass(frozen=True)
class SettledOrder:
    """An order a batch changed: its status afterwards and, for the logs, the request that changed it — a
    cancel's or a merge's own request, else the one that placed it (a fill as maker included)."""
    order_id: int
    status: str
    filled_quantity: Decimal
    request_id: str | None


@dataclass(frozen=True)
class SettledBatch:
    applied_seq: int
    commands: int
    trades: int
    orders: tuple[SettledOrder, ...] = ()
    set_aside: tuple[SetAside, ...] = ()
    unprocessable: tuple[tuple[int, str], ...] = ()  # (order_id, why) of orders rejected as unprocessable


def rebuild_book(runtime: MarketRuntime, session: Session, applied_seq: int) -> None:
    """The book as the database has it at `applied_seq`: open limit orders in time priority, without the
    quantity of merges (amendments) not applied yet."""
    spec, book = runtime.spec, OrderBook()
    pending = settlement.pending_amendments(session, spec.id, applied_seq)
    rows = sorted(settlement.resting_orders(session, spec.id, applied_seq), key=lambda r: r.queue_seq or r.seq)
    for row in rows:
        remaining = row.quantity - row.filled_quantity - _withheld(pending, row.id, applied_seq)
        if remaining > 0:
            book.add_resting(row.id, row.user_id, row.side, money.to_units(row.price, spec.price_step),
                             money.to_units(remaining, spec.quantity_step))
    book.check_invariants()
    runtime.book, runtime.applied_seq = book, applied_seq


def _withheld(pending: dict[int, list[tuple[int, Decimal]]], order_id: int, as_of_seq: int) -> Decimal:
    """Quantity merged into the order by amendments after `as_of_seq`: not in the book yet."""
    return sum((added for seq, added in pending.get(order_id, ()) if seq > as_of_seq), ZERO)


def settle_commands(runtime: MarketRuntime, commands: list[MarketCommand], ctx: ServiceContext,
                    up_to_seq: int = 0) -> SettledBatch:
    """Apply `commands` (from Kafka; any order, duplicates welcome) and every committed command up to
    `up_to_seq` (a catch-up from the database), at most SETTLE_BATCH_COMMANDS_MAX, in one transaction."""
    spec = runtime.spec
    with ctx.uow() as uow:
        session = uow.session
        last_seq, maker_fee_rate, taker_fee_rate, status = settlement.lock_market_state(session, spec.id)
        if runtime.book is None or runtime.applied_seq != last_seq:
            rebuild_book(runtime, session, last_seq)
        to_apply, set_aside, orders = commands_to_apply(session, spec, last_seq, commands, up_to_seq,
                                                        ctx.settings.settle_batch_commands_max)
        if not to_apply:
            return SettledBatch(last_seq, 0, 0, set_aside=tuple(set_aside))
        book = present(runtime.book, f"{spec.symbol}: the book was rebuilt above")
        try:
            pending = settlement.pending_amendments(session, spec.id, last_seq)
            batch, now = BatchEffects(spec, _fee_terms(ctx, spec, maker_fee_rate, taker_fee_rate)), utc_now()
            for command in to_apply:
                order = orders.get(command.order_id)
                if order is None or order.market_id != spec.id:
                    raise InvariantViolation(
                        f"{spec.name} command {command.seq}: order {command.order_id} not in this market")
                if command.event_type == "order_placed" and status == HALTED:
                    batch.cancel_unmatched(order.id, MARKET_HALTED)  # accepted just before the halt
                elif command.event_type == "order_placed":
                    incoming = batch.engine_input(
                        book, order.id, lambda order=order, seq=command.seq: incoming_from_row(
                            order, spec, withheld=_withheld(pending, order.id, seq)))
                    if incoming is not None:
                        batch.on_facts(book.submit(incoming), command.seq)
                elif command.event_type == "order_amended":
                    change = batch.change(order.id)
                    if order.status in FINAL_STATUSES or (change.final and change.status != "completed"):
                        continue  # cancelled or rejected before the merge applied: nothing to requeue
                    if change.final:  # its old quantity filled in this batch; the merged rest still has to rest
                        change.status, change.reason, change.final = None, None, False
                    book.withdraw(order.id)  # leaves its level; re-enters at the back with the merged quantity
                    filled = money.add(order.filled_quantity,
                                       money.from_units(change.filled_lots, spec.quantity_step))
                    incoming = batch.engine_input(
                        book, order.id, lambda order=order, filled=filled, seq=command.seq: incoming_from_row(
                            order, spec, filled=filled, withheld=_withheld(pending, order.id, seq)))
                    if incoming is not None:
                        change.queue_seq = command.seq
                        batch.on_facts(book.submit(incoming), command.seq)
                elif command.event_type == "cancel_requested":
                    done = book.cancel(command.order_id)
                    if done is not None:
                        batch.on_terminal(done)
                else:
                    raise RuntimeError(f"unknown market command {command.event_type!r}")
            makers = {oid for oid in batch.changes if oid not in orders}
            orders.update(settlement.lock_orders(session, makers))
            order_rows = batch.order_rows(orders)
            trade_ids_by_key = settlement.insert_trades(session, spec.id, batch.trades, now)
            trade_ids = [trade_ids_by_key[(trade.seq, trade.match_index)] for trade in batch.trades]
            batch.post_trades(trade_ids)
            _record_candles(session, spec, batch.trades)
            batch.ledger.check_conserved()
            settlement.write_orders(session, order_rows, now)
            # Lock the touched accounts (sorted); one absent here (a first credit) starts from zero, and
            # `write_balances` adds to it if a deposit creates it meanwhile.
            current = accounts.lock_many(session, batch.ledger.touched())
            accounts.write_balances(session, new_balances(current, batch.ledger.deltas))
            accounts.journal_many(session, batch.ledger.postings)
            _record_trade_events(session, ctx, spec, batch.trades, trade_ids, now)
            new_seq = to_apply[-1].seq
            record_stream_events(session, ctx, spec, book, orders, order_rows, last_seq, new_seq, now)
            settlement.set_applied_seq(session, spec.id, new_seq)
            if len(book) <= BOOK_CHECK_ORDERS_MAX:
                book.check_invariants()
            uow.commit()
        except BaseException:
            runtime.book = None  # the in-memory book may be ahead of the database: rebuild next time
            raise
        runtime.applied_seq = new_seq
        changed_by = {c.order_id: c.request_id for c in to_apply if c.event_type != "order_placed" and c.request_id}
        settled = tuple(SettledOrder(row.order_id, row.status, row.filled_quantity,
                                     changed_by.get(row.order_id) or orders[row.order_id].request_id)
                        for row in order_rows)
        return SettledBatch(new_seq, len(to_apply), len(trade_ids), settled, tuple(set_aside),
                            tuple(batch.unprocessable))


def _fee_terms(ctx: ServiceContext, spec: MarketSpec, maker_rate: Decimal, taker_rate: Decimal) -> FeeTerms:
    """The rates the settling transaction read; the scales fees round to (fixed when the assets were made)."""
    if not maker_rate and not taker_rate:
        return NO_FEES
    return FeeTerms(maker_rate.normalize(), taker_rate.normalize(), ctx.asset_scales[spec.base_asset],
                    ctx.asset_scales[spec.quote_asset], ctx.fee_user_id)


def _record_candles(session: Session, spec: MarketSpec, trades: list[Trade]) -> None:
    """Add the batch's trades to the market's candles, in this transaction: market data never runs ahead of
    or behind the trades it is built from."""
    if trades:
        candles.record_trades(session, spec.id, min(t.seq for t in trades), max(t.seq for t in trades))


def _record_trade_events(session: Session, ctx: ServiceContext, spec: MarketSpec, trades: list[Trade],
                         trade_ids: list[int], now: datetime) -> None:
    """One `trade-events` message per trade, written to the outbox in the settling transaction (the
    relay publishes it)."""
    timestamp = iso_utc(now) or ""
    payloads = [encode_trade_event(TradeEvent(
        id=trade_id, symbol=spec.symbol, price=trade.price, quantity=trade.quantity,
        buy_order_id=trade.buy_order_id, sell_order_id=trade.sell_order_id, taker_side=trade.taker_side,
        seq=trade.seq, timestamp=timestamp, market=spec.name, buyer_fee=trade.buyer_fee,
        buyer_fee_asset=spec.base_asset, seller_fee=trade.seller_fee, seller_fee_asset=spec.quote_asset)).decode()
        for trade_id, trade in zip(trade_ids, trades, strict=True)]
    settlement.insert_events(session, topic=ctx.settings.trade_events_topic, key=spec.name, event_type="trade",
                             payloads=payloads, now=now)
