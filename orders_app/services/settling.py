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
   `trade-events` outbox rows; checks invariants; sets `last_seq`; commits.
On any failure the book is dropped, so the next batch rebuilds it from the committed state.
"""
from __future__ import annotations

import decimal
import json
from dataclasses import dataclass, field
from decimal import Decimal

from orders_app import money
from orders_app.errors import invariant
from orders_app.matching import Fill, Incoming, OrderBook, Rested
from orders_app.models import FINAL_STATUSES
from orders_app.repositories import accounts, settlement
from orders_app.repositories.markets import MarketSpec
from orders_app.services import ServiceContext, utc_now
from orders_app.services.stream_events import record_stream_events
from orders_app.services.views import iso_utc

ZERO = Decimal(0)
REJECTED, UNPROCESSABLE = "rejected", "unprocessable"
BOOK_CHECK_ORDERS_MAX = 1_000  # full book invariant check after each batch up to this size (it is O(n))


@dataclass(frozen=True)
class MarketCommand:
    seq: int
    event_type: str  # order_placed | cancel_requested | order_amended
    order_id: int
    request_id: str | None = None
    record: object = field(default=None, compare=False, repr=False)  # the Kafka record it was read from


@dataclass(frozen=True)
class SetAside:
    """A Kafka record that differs from the database's command of its sequence."""
    command: MarketCommand
    detail: str


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


@dataclass
class OrderChange:
    """What one batch did to one order."""
    filled_lots: int = 0
    paid: Decimal = ZERO  # sum of price x quantity over its trades
    hold_used: Decimal = ZERO  # taken from its hold by its trades (paid + price improvement, or quantity)
    status: str | None = None  # None: unchanged unless it traded
    reason: str | None = None
    final: bool = False
    unspent_budget: int | None = None
    queue_seq: int | None = None  # an applied amendment moved it to the back of its level


def rebuild_book(runtime: MarketRuntime, session, applied_seq: int) -> None:
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


def _withheld(pending: dict, order_id: int, as_of_seq: int) -> Decimal:
    """Quantity merged into the order by amendments after `as_of_seq`: not in the book yet."""
    return sum((added for seq, added in pending.get(order_id, ()) if seq > as_of_seq), ZERO)


def _commands_to_apply(session, spec: MarketSpec, last_seq: int, commands: list[MarketCommand], up_to_seq: int,
                       commands_max: int) -> tuple[list[MarketCommand], list[SetAside], dict[int, object]]:
    """The commands after `last_seq` to apply now, contiguous, as the database has them; the Kafka
    records among `commands` that differ from the database's command of their sequence; the orders the
    commands concern, locked.

    Records that agree with each other and leave no gap are checked within the reads the batch makes
    anyway: a placement at seq N must be the order whose `seq` is N in this market (its row is locked
    here in any case); only cancels and amendments cost a look at the outbox. Anything else — a gap, two
    records of one seq, a check that fails — reads the sequence range from the outbox, the truth."""
    top = min(max([up_to_seq, *(c.seq for c in commands)]), last_seq + commands_max)
    in_range = [c for c in commands if last_seq < c.seq <= top]
    fresh = {c.seq: c for c in in_range}
    ordered, orders = [], {}
    if top > last_seq and len(fresh) == top - last_seq and all(_key(fresh[c.seq]) == _key(c) for c in in_range):
        ordered = [fresh[seq] for seq in sorted(fresh)]
        orders = settlement.lock_orders(session, {c.order_id for c in ordered})
        if not _confirmed(session, spec, ordered, orders):
            ordered = []
    if not ordered and top > last_seq:
        ordered = [MarketCommand(row.seq, row.event_type, row.order_id, row.request_id)
                   for row in settlement.commands_between(session, spec.id, last_seq + 1, top)]
        orders = settlement.lock_orders(session, {c.order_id for c in ordered})
    for offset, command in enumerate(ordered):
        invariant(command.seq == last_seq + 1 + offset,
                  f"{spec.symbol}: command {command.seq} breaks the sequence after {last_seq}")
    return ordered, _differing(session, spec, last_seq, top, commands, ordered), orders


def _key(command: MarketCommand) -> tuple[str, int]:
    return command.event_type, command.order_id


def _confirmed(session, spec: MarketSpec, ordered: list[MarketCommand], orders: dict) -> bool:
    """True when every command is the database's command of its sequence."""
    others = []
    for command in ordered:
        if command.event_type == "order_placed":
            order = orders.get(command.order_id)
            if order is None or order.market_id != spec.id or order.seq != command.seq:
                return False
        else:
            others.append(command)
    if not others:
        return True
    known = settlement.commands_at(session, spec.id, [c.seq for c in others])
    return all(known.get(c.seq) == _key(c) for c in others)


def _differing(session, spec: MarketSpec, last_seq: int, top: int, commands: list[MarketCommand],
               ordered: list[MarketCommand]) -> list[SetAside]:
    """Records to set aside. Within the batch's range they are judged against `ordered` (the truth);
    outside it against the outbox: a record of a sequence the database never handed out differs, an
    applied one whose row was pruned cannot be judged and changes nothing, and a later one that agrees
    waits for its batch."""
    truth = {c.seq: c for c in ordered}
    outside = {c.seq for c in commands if not last_seq < c.seq <= top}
    known = settlement.commands_at(session, spec.id, outside) if outside else {}
    set_aside = []
    for command in commands:
        if last_seq < command.seq <= top:
            expected = truth.get(command.seq)
            expected = None if expected is None else _key(expected)
        else:
            expected = known.get(command.seq)
            if expected is None and command.seq <= last_seq:
                continue
        if expected != _key(command):
            found = "no command" if expected is None else f"{expected[0]} of order {expected[1]}"
            set_aside.append(SetAside(command, f"{spec.symbol} seq {command.seq}: the record says "
                                               f"{command.event_type} of order {command.order_id}, "
                                               f"the database has {found}"))
    return set_aside


def _whole_units(amount: Decimal, unit: Decimal) -> tuple[int, Decimal]:
    """(how many whole `unit`s `amount` holds, the dust below one unit)."""
    with decimal.localcontext(money.MONEY_CONTEXT):
        dust = amount % unit
    return money.to_units(money.subtract(amount, dust), unit), dust


def incoming_from_row(order, spec: MarketSpec, filled: Decimal | None = None, withheld: Decimal = ZERO) -> Incoming:
    """The engine's view of an order row (an `Order` or a row of SETTLED_ORDER_COLUMNS): its quantity not
    filled yet (`filled` overrides the row's, within a batch) and not withheld for a later amendment."""
    price_ticks = None if order.price is None else money.to_units(order.price, spec.price_step)
    filled = order.filled_quantity if filled is None else filled
    lots = None if order.quantity is None else money.to_units(order.quantity - filled - withheld,
                                                               spec.quantity_step)
    budget = None
    if order.type == "market" and order.side == "buy":
        # The hold is on the quote asset's scale, which may be finer than a unit of price step x quantity
        # step: what is below one unit can never buy a lot, so it is dust, released when the order ends.
        budget = _whole_units(order.locked_amount, spec.price_step * spec.quantity_step)[0]
    return Incoming(order.id, order.user_id, order.side, price_ticks, lots, order.time_in_force,
                    bool(order.post_only), budget)


class _Settlement:
    """Accumulates one batch's consequences, then writes them."""

    def __init__(self, ctx: ServiceContext, spec: MarketSpec):
        self.spec, self.ctx = spec, ctx
        self.changes: dict[int, OrderChange] = {}
        self.trades: list[dict] = []
        self.trade_ledger: list[list[tuple]] = []  # per trade: (user, asset, d_available, d_locked, reason, order)
        self.deltas: dict[tuple[int, str], list[Decimal]] = {}
        self.ledger: list[dict] = []
        self.unprocessable: list[tuple[int, str]] = []
        self.now = utc_now()

    def change(self, order_id: int) -> OrderChange:
        change = self.changes.get(order_id)
        if change is None:
            change = self.changes[order_id] = OrderChange()
        return change

    def move(self, user_id: int, asset: str, d_available: Decimal, d_locked: Decimal) -> None:
        delta = self.deltas.get((user_id, asset))
        if delta is None:
            delta = self.deltas[(user_id, asset)] = [ZERO, ZERO]
        delta[0] = money.add(delta[0], d_available)
        delta[1] = money.add(delta[1], d_locked)

    def journal(self, entries: list[tuple], trade_id: int | None) -> None:
        for user_id, asset, d_available, d_locked, reason, order_id in entries:
            self.move(user_id, asset, d_available, d_locked)
            self.ledger.append([user_id, asset, d_available, d_locked, reason, order_id, trade_id])

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
        quote, base = spec.quote_asset, spec.symbol
        buy_change, sell_change = self.change(buy_id), self.change(sell_id)
        for change in (buy_change, sell_change):
            change.filled_lots += fill.qty_lots
            change.paid = money.add(change.paid, cost)
        buy_change.hold_used = money.add(buy_change.hold_used, money.add(cost, improvement))
        sell_change.hold_used = money.add(sell_change.hold_used, quantity)
        entries = [(buyer, quote, ZERO, -cost, "trade_buy", buy_id),
                   (buyer, base, quantity, ZERO, "trade_buy", buy_id),
                   (seller, base, ZERO, -quantity, "trade_sell", sell_id),
                   (seller, quote, cost, ZERO, "trade_sell", sell_id)]
        if improvement:
            entries.append((buyer, quote, improvement, -improvement, "price_improvement", buy_id))
        self.trade_ledger.append(entries)
        self.trades.append([price, quantity, buy_id, sell_id, buyer, seller, fill.taker_side, seq, match_index])
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

    def on_terminal(self, fact) -> None:
        change = self.change(fact.order_id)
        if isinstance(fact, Rested):
            change.status, change.final = "rested", False
        else:
            change.status, change.reason, change.final = fact.status, fact.reason, True
            change.unspent_budget = fact.unspent_budget

    def engine_input(self, book: OrderBook, order_id: int, convert) -> Incoming | None:
        """`convert()`, checked by the engine without touching the book; an order it cannot be turned
        into (amounts off its market's steps, a budget below one unit...) is rejected instead, its hold
        released, so one bad row never stops its market. None then."""
        try:
            incoming = convert()
            book.check(incoming)
            return incoming
        except Exception as error:  # noqa: BLE001 - whatever this one order's data breaks, it alone fails
            change = self.change(order_id)
            change.status, change.reason, change.final, change.unspent_budget = REJECTED, UNPROCESSABLE, True, None
            self.unprocessable.append((order_id, f"{type(error).__name__}: {error}"))
            return None

    def order_rows(self, orders: dict) -> list[list]:
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
                status, reason = change.status, change.reason
                if status == "completed" and order.quantity is not None and filled != order.quantity:
                    status, reason = "partially_filled", None  # not all of it was in the book (merge)
            elif change.status == "rested" or change.filled_lots:
                status = "partially_filled" if filled > 0 else "pending"
            if status in ("completed", "cancelled", "rejected"):
                if change.unspent_budget is not None and order.type == "market" and order.side == "buy":
                    dust = _whole_units(order.locked_amount, quote_unit)[1]
                    invariant(locked == money.add(money.multiply(Decimal(change.unspent_budget), quote_unit), dust),
                              f"order {order_id}: unspent budget disagrees with the remaining hold")
                if locked:
                    asset = spec.quote_asset if order.side == "buy" else spec.symbol
                    self.journal([(order.user_id, asset, locked, -locked, "order_release", order_id)], None)
                    locked = ZERO
            else:
                expected = (money.subtract(order.quantity, filled) if order.side == "sell"
                            else money.multiply(order.price, money.subtract(order.quantity, filled)))
                invariant(locked == expected, f"order {order_id}: open hold {locked} != {expected}")
            rows.append([order_id, filled, money.add(order.filled_quote, change.paid), locked, status, reason,
                         change.queue_seq])
        return rows


def settle_commands(runtime: MarketRuntime, commands: list[MarketCommand], ctx: ServiceContext,
                    up_to_seq: int = 0) -> SettledBatch:
    """Apply `commands` (from Kafka; any order, duplicates welcome) and every committed command up to
    `up_to_seq` (a catch-up from the database), at most SETTLE_BATCH_COMMANDS_MAX, in one transaction."""
    spec = runtime.spec
    with ctx.uow() as uow:
        session = uow.session
        last_seq = settlement.lock_market_state(session, spec.id)
        if runtime.book is None or runtime.applied_seq != last_seq:
            rebuild_book(runtime, session, last_seq)
        to_apply, set_aside, orders = _commands_to_apply(session, spec, last_seq, commands, up_to_seq,
                                                         ctx.settings.settle_batch_commands_max)
        if not to_apply:
            return SettledBatch(last_seq, 0, 0, set_aside=tuple(set_aside))
        book = runtime.book
        try:
            pending = settlement.pending_amendments(session, spec.id, last_seq)
            batch = _Settlement(ctx, spec)
            for command in to_apply:
                order = orders.get(command.order_id)
                invariant(order is not None and order.market_id == spec.id,
                          f"{spec.symbol} command {command.seq}: order {command.order_id} not in this market")
                if command.event_type == "order_placed":
                    incoming = batch.engine_input(book, order.id, lambda: incoming_from_row(
                        order, spec, withheld=_withheld(pending, order.id, command.seq)))
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
                    incoming = batch.engine_input(book, order.id, lambda: incoming_from_row(
                        order, spec, filled=filled, withheld=_withheld(pending, order.id, command.seq)))
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
            trade_ids_by_key = settlement.insert_trades(session, spec.id, batch.trades, batch.now)
            trade_ids = [trade_ids_by_key[(trade[7], trade[8])] for trade in batch.trades]
            for trade_id, entries in zip(trade_ids, batch.trade_ledger):
                batch.journal(entries, trade_id)
            _check_conservation(batch)
            settlement.write_orders(session, order_rows, batch.now)
            accounts.write_balances(session, _new_balances(session, batch.deltas))
            accounts.journal_many(session, batch.ledger)
            _record_trade_events(session, ctx, spec, batch.trades, trade_ids, batch.now)
            new_seq = to_apply[-1].seq
            record_stream_events(session, ctx, spec, book, orders, order_rows, last_seq, new_seq, batch.now)
            settlement.set_applied_seq(session, spec.id, new_seq)
            if len(book) <= BOOK_CHECK_ORDERS_MAX:
                book.check_invariants()
            uow.commit()
        except BaseException:
            runtime.book = None  # the in-memory book may be ahead of the database: rebuild next time
            raise
        runtime.applied_seq = new_seq
        changed_by = {c.order_id: c.request_id for c in to_apply if c.event_type != "order_placed" and c.request_id}
        settled = tuple(SettledOrder(row[0], row[4], row[1], changed_by.get(row[0]) or orders[row[0]].request_id)
                        for row in order_rows)
        return SettledBatch(new_seq, len(to_apply), len(trade_ids), settled, tuple(set_aside),
                            tuple(batch.unprocessable))


def _new_balances(session, deltas: dict[tuple[int, str], list[Decimal]]) -> dict[tuple[int, str], accounts.BalanceChange]:
    """Lock the touched accounts (sorted) and compute their new balances; none may go negative. An account
    absent here (a first credit) starts from zero; `write_balances` adds to it if it appears meanwhile."""
    current = accounts.lock_many(session, [key for key, (da, dl) in deltas.items() if da or dl])
    balances = {}
    for key, (d_available, d_locked) in deltas.items():
        if not d_available and not d_locked:
            continue
        available, locked = current.get(key, (ZERO, ZERO))
        available, locked = money.add(available, d_available), money.add(locked, d_locked)
        invariant(available >= 0 and locked >= 0, f"account {key} would go negative: {available}, {locked}")
        balances[key] = accounts.BalanceChange(available, locked, d_available, d_locked)
    return balances


def _check_conservation(batch: _Settlement) -> None:
    """Within a batch, money only moves between users and between available and locked."""
    per_asset: dict[str, Decimal] = {}
    for (_, asset), (d_available, d_locked) in batch.deltas.items():
        per_asset[asset] = money.add(per_asset.get(asset, ZERO), money.add(d_available, d_locked))
    invariant(all(total == 0 for total in per_asset.values()), f"batch does not conserve assets: {per_asset}")


def _record_trade_events(session, ctx: ServiceContext, spec: MarketSpec, trades: list[list], trade_ids: list[int],
                         now) -> None:
    """One `trade-events` message per trade, written to the outbox in the settling transaction (the
    relay publishes it)."""
    timestamp = iso_utc(now)
    payloads = [json.dumps({
        "type": "trade", "version": 1, "id": trade_id, "currency_symbol": spec.symbol,
        "price": money.format_amount(price), "quantity": money.format_amount(quantity), "buy_order_id": buy_id,
        "sell_order_id": sell_id, "taker_side": taker_side, "seq": seq, "timestamp": timestamp,
    }, separators=(",", ":"), sort_keys=True)
        for trade_id, (price, quantity, buy_id, sell_id, _, _, taker_side, seq, _) in zip(trade_ids, trades)]
    settlement.insert_events(session, topic=ctx.settings.trade_events_topic, key=spec.symbol, event_type="trade",
                             payloads=payloads, now=now)
