"""Accepting an order: validate against its market, hold funds, record order + outbox event, commit.

Checks that need no lock run first, in the request's thread (`check_order`, the amount to hold). Then one
transaction — shared by the orders of several requests when the API's group committer batches them
(`services/group_commit.py`), one durable commit for all — answers repeated `client_order_id`s with their
first order (`created=False`), locks the accounts and users, holds each order's funds against what its
account has left (an order that does not fit, or whose user is at the open-order cap, is refused on its own
and the others go on), takes each market's next sequence numbers, and inserts the orders, their ledger rows
and their `order_placed` outbox rows. After commit the events go to `ctx.publish`.
Concurrent repeats of one `client_order_id` all answer the first order: a shared lock waits for an
uncommitted one, and the unique key decides the rest (the loser reads the winner's order).
Over 300 lines because the transaction's steps share the batch's state and its lock order, which reads best
in one place; the rules an order must meet and the merging of orders live beside it (order_rules.py,
merging.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from orders_app import money
from orders_app.errors import (
    CommitOutcomeUnknown,
    DomainError,
    InsufficientFunds,
    NotFound,
    TooManyOpenOrders,
    ValidationFailed,
    invariant,
    present,
)
from orders_app.messages import PlaceOrder
from orders_app.metrics import ORDERS_ACCEPTED, ORDERS_REFUSED
from orders_app.models import Order
from orders_app.repositories import accounts, markets, orders
from orders_app.services import ServiceContext, utc_now
from orders_app.services.events import (
    OutgoingCommand,
    PendingPublish,
    record_market_events,
)
from orders_app.services.merging import may_merge, merge_into_pending_buy
from orders_app.services.order_rules import (
    CheckedOrder,
    PlacedOrder,
    check_order,
    hold_amount,
    insufficient,
    status_unknown,
)
from orders_app.services.views import order_view
from orders_app.unit_of_work import run_transaction

ZERO = Decimal(0)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedOrder:
    """An order that passed every check that needs no lock, with the amount it must hold."""
    command: PlaceOrder
    checked: CheckedOrder
    hold_amount: Decimal


class Committer(Protocol):
    """Places prepared orders, possibly sharing one transaction with other requests' orders
    (services/group_commit.py); returns once they are durably committed, each with its outcome."""
    def submit_many(self, prepared: list[PreparedOrder]) -> list[PlacedOrder | BaseException]: ...


ORDERS_PER_REQUEST_MAX = 20  # POST /api/orders/batch


def place_order(command: PlaceOrder, ctx: ServiceContext, committer: Committer | None = None) -> PlacedOrder:
    """Accept (or refuse) one order; counted in /metrics by outcome."""
    outcome = place_orders([command], ctx, committer)[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def place_orders(commands: list[PlaceOrder | DomainError], ctx: ServiceContext,
                 committer: Committer | None = None) -> list[PlacedOrder | BaseException]:
    """Accept or refuse each order on its own, exactly as if it came alone, answering in the order given
    (an order already refused by the caller — its body invalid — answers that refusal). Those that need a
    new order row go to the committer as one group (one transaction, in this order)."""
    invariant(len(commands) <= ORDERS_PER_REQUEST_MAX, f"{len(commands)} orders in one request")
    outcomes: list[PlacedOrder | BaseException | None] = [None] * len(commands)
    to_commit: list[tuple[int, PreparedOrder]] = []
    for index, command in enumerate(commands):
        if isinstance(command, DomainError):
            outcomes[index] = command
            continue
        try:
            prepared = _prepare(command, ctx)
        except DomainError as error:
            outcomes[index] = error
            continue
        if isinstance(prepared, PreparedOrder):
            to_commit.append((index, prepared))
        else:
            outcomes[index] = prepared
    if to_commit:
        batch = [one for _, one in to_commit]
        committed: list[PlacedOrder | BaseException] = (
            committer.submit_many(batch) if committer is not None else list(place_batch(batch, ctx)))
        for (index, _), outcome in zip(to_commit, committed, strict=True):
            outcomes[index] = outcome
    answered = [outcome for outcome in outcomes if outcome is not None]
    invariant(len(answered) == len(commands), "an order of the request got no answer")
    publish: list[PendingPublish] = []
    for command, outcome in zip(commands, answered, strict=True):
        if isinstance(command, DomainError):
            continue
        if isinstance(outcome, DomainError):
            ORDERS_REFUSED.labels(outcome.code).inc()
        elif isinstance(outcome, PlacedOrder):
            if outcome.created:
                ORDERS_ACCEPTED.labels(command.symbol, command.side, command.order_type).inc()
            publish.extend(outcome.to_publish)
    ctx.publish(publish)
    return answered


def _prepare(command: PlaceOrder, ctx: ServiceContext) -> PlacedOrder | PreparedOrder:
    """The checks that need no lock, and a merge into a pending buy (its own transaction) where one applies."""
    checked = check_order(command, ctx)
    if may_merge(command, ctx):
        merged = run_transaction(lambda: merge_into_pending_buy(command, checked, ctx))
        if merged is not None:
            return merged
    return PreparedOrder(command, checked, hold_amount(command, checked, ctx))


def place_batch(batch: list[PreparedOrder], ctx: ServiceContext) -> list[PlacedOrder | DomainError]:
    """Accept prepared orders in one transaction (one durable commit for all), each refused on its own.
    An order with a value its columns cannot hold is refused before the transaction. A statement the
    database refuses (a concurrent repeat of a client_order_id, a user deleted meanwhile, a value it will
    not store) fails the whole transaction: the orders are then placed one transaction each, so only the
    offending one is affected."""
    outcomes: list[PlacedOrder | DomainError | None] = [_unstorable(prepared) for prepared in batch]
    storable = [prepared for prepared, outcome in zip(batch, outcomes, strict=True) if outcome is None]
    placed = iter(_place_storable(storable, ctx) if storable else ())
    return [outcome if outcome is not None else next(placed) for outcome in outcomes]


def _place_storable(batch: list[PreparedOrder], ctx: ServiceContext) -> list[PlacedOrder | DomainError]:
    try:
        return run_transaction(lambda: _place_batch_once(batch, ctx))
    except CommitOutcomeUnknown as error:
        log.warning("order batch of %d: commit outcome unknown: %s", len(batch), error)
        return [status_unknown()] * len(batch)
    except (IntegrityError, DataError) as error:
        if len(batch) > 1:
            return [outcome for prepared in batch for outcome in _place_storable([prepared], ctx)]
        if isinstance(error, DataError):
            log.warning("order refused by the database: %s", error.orig)
            return [ValidationFailed("The order has a value the system cannot store.")]
        return [_integrity_outcome(batch[0].command, ctx, error)]


def _unstorable(prepared: PreparedOrder) -> DomainError | None:
    """A refusal for a string longer than its column (the bulk insert would truncate it, not fail)."""
    client_order_id = prepared.command.client_order_id
    if client_order_id is not None and len(client_order_id) > orders.STRING_COLUMN_LENGTH_MAX:
        return ValidationFailed(f"client_order_id is longer than {orders.STRING_COLUMN_LENGTH_MAX} characters.",
                                "client_order_id")
    return None


def _integrity_outcome(command: PlaceOrder, ctx: ServiceContext, error: IntegrityError) -> PlacedOrder | DomainError:
    if command.client_order_id is not None and "uq_orders_user_client_order_id" in str(error.orig):
        existing = _find_existing(command, ctx)
        if existing is not None:
            return existing
    if "foreign key constraint fails" in str(error.orig).lower():
        return NotFound(f"User {command.user_id} does not exist.", "userId")
    raise error


def _place_batch_once(batch: list[PreparedOrder], ctx: ServiceContext) -> list[PlacedOrder | DomainError]:
    """Lock order: orders already recorded with the batch's client ids (shared), the accounts (one
    statement, sorted by user and asset, as every transaction that holds several), the users (sorted: their
    open orders are counted against MAX_OPEN_ORDERS_PER_USER), then each market's sequence row (sorted by
    market id), held to commit so that sequence numbers commit in order. The holds come first so that a
    refused order takes no sequence number and the sequence rows — the only lock all of a market's orders
    share — are held for the shortest time. Each order is checked in arrival order against what its user
    and account have left: refused on its own if it does not fit."""
    outcomes: list[PlacedOrder | DomainError | None] = [None] * len(batch)
    repeat_of: dict[int, int] = {}  # index -> index of the earlier order of the batch with its client_order_id
    with ctx.uow() as uow:
        session = uow.session
        existing = orders.find_by_client_order_ids(session, {
            (prepared.command.user_id, prepared.command.client_order_id) for prepared in batch
            if prepared.command.client_order_id is not None})
        first_with_id: dict[tuple[int, str], int] = {}
        for index, prepared in enumerate(batch):
            client_order_id = prepared.command.client_order_id
            if client_order_id is None:
                continue
            key = (prepared.command.user_id, client_order_id)
            if key in existing:
                order = existing[key]
                outcomes[index] = PlacedOrder(order_view(order, ctx.market_by_id(order.market_id)), False)
            elif key in first_with_id:
                repeat_of[index] = first_with_id[key]
            else:
                first_with_id[key] = index
        balances = accounts.lock_many(session, {_account(prepared) for prepared in batch})
        open_orders = orders.lock_users_count_open(session, {prepared.command.user_id for prepared in batch})
        open_orders_max = ctx.settings.max_open_orders_per_user
        held: dict[tuple[int, str], Decimal] = {}
        for index, prepared in enumerate(batch):
            key, amount, user_id = _account(prepared), prepared.hold_amount, prepared.command.user_id
            if outcomes[index] is not None or index in repeat_of:
                continue
            if user_id not in open_orders:
                outcomes[index] = NotFound(f"User {user_id} does not exist.", "userId")
                continue
            if open_orders[user_id] >= open_orders_max:
                outcomes[index] = TooManyOpenOrders(
                    f"You have {open_orders_max} open orders, the most allowed; cancel some first.")
                continue
            if amount and (key not in balances or money.subtract(balances[key][0], held.get(key, ZERO)) < amount):
                outcomes[index] = insufficient(amount, prepared.checked.hold_asset)
                continue
            open_orders[user_id] += 1
            if amount:
                held[key] = money.add(held.get(key, ZERO), amount)
        _answer_repeats_committed_meanwhile(session, ctx, batch, outcomes)
        accounts.write_balances(session, {
            key: accounts.BalanceChange(money.subtract(balances[key][0], amount), money.add(balances[key][1], amount),
                                        -amount, amount)
            for key, amount in held.items()})
        by_market: dict[int, list[int]] = {}
        for index, prepared in enumerate(batch):
            if outcomes[index] is None and index not in repeat_of:
                by_market.setdefault(prepared.checked.market.id, []).append(index)
        if not by_market:
            return _with_repeats(outcomes, repeat_of)
        now = utc_now()
        values: dict[int, dict] = {}
        for market_id in sorted(by_market):
            indexes = by_market[market_id]
            first_seq = markets.take_seqs(session, market_id, len(indexes)) - len(indexes) + 1
            for offset, index in enumerate(indexes):
                values[index] = _order_values(batch[index], first_seq + offset, now)
        accepted = sorted(values)
        ids = orders.add_many(session, [values[index] for index in accepted], now)
        commands, ledger = [], []
        for index in accepted:
            prepared, row = batch[index], values[index]
            order_id = ids[(row["market_id"], row["seq"])]
            if prepared.hold_amount:
                ledger.append([row["user_id"], prepared.checked.hold_asset, -prepared.hold_amount,
                               prepared.hold_amount, "order_hold", order_id, None])
            # The view from what was inserted: reading rows back would cost round trips while the
            # markets' sequence locks are held.
            view = order_view(Order(id=order_id, status_reason=None, cancel_requested_at=None, **row),
                              prepared.checked.market)
            commands.append(OutgoingCommand("order_placed", prepared.checked.market, row["seq"], order_id, view,
                                          row["request_id"]))
        accounts.journal_many(session, ledger)
        publishes = record_market_events(session, ctx, commands, now)
        uow.commit()
    for position, (index, command) in enumerate(zip(accepted, commands, strict=True)):
        # the relay publishing every row (the default), there is nothing to hand the API's publisher
        outcomes[index] = PlacedOrder(command.view, True, tuple(publishes[position:position + 1]))
    return _with_repeats(outcomes, repeat_of)


def _answer_repeats_committed_meanwhile(session: Session, ctx: ServiceContext, batch: list[PreparedOrder],
                                        outcomes: list) -> None:
    """A repeat refused for funds or for the open-order cap may have looked its client_order_id up before its
    first order was inserted (READ COMMITTED locks no gap), then waited for the user's lock that order held
    until it committed. Holding that lock now, a plain read finds the first order: the repeat answers it."""
    refused = {(batch[index].command.user_id, client_order_id): index
               for index, outcome in enumerate(outcomes)
               if isinstance(outcome, (InsufficientFunds, TooManyOpenOrders))
               and (client_order_id := batch[index].command.client_order_id) is not None}
    for key, order in orders.find_by_client_order_ids(session, set(refused), locking=False).items():
        outcomes[refused[key]] = PlacedOrder(order_view(order, ctx.market_by_id(order.market_id)), False)


def _with_repeats(outcomes: list, repeat_of: dict[int, int]) -> list[PlacedOrder | DomainError]:
    """A repeat of an earlier order of the batch answers that order (unchanged) if it was accepted, else
    its own refusal (the first was refused, so the repeat would have been too)."""
    for index, first in repeat_of.items():
        outcome = outcomes[first]
        outcomes[index] = PlacedOrder(outcome.order, False) if isinstance(outcome, PlacedOrder) else outcome
    return outcomes


def _account(prepared: PreparedOrder) -> tuple[int, str]:
    return prepared.command.user_id, prepared.checked.hold_asset




def _order_values(prepared: PreparedOrder, seq: int, now: datetime) -> dict:
    command, checked = prepared.command, prepared.checked
    return {
        "market_id": checked.market.id, "user_id": command.user_id, "side": command.side,
        "type": command.order_type, "time_in_force": "IOC" if command.order_type == "market" else command.time_in_force,
        "post_only": command.post_only, "price": checked.price, "quantity": checked.quantity,
        "quote_quantity": checked.quote_quantity, "filled_quantity": Decimal(0), "filled_quote": Decimal(0),
        "locked_amount": prepared.hold_amount, "status": "pending", "client_order_id": command.client_order_id,
        "fee": Decimal(0), "fee_asset": checked.market.received_asset(command.side),
        "seq": seq, "request_id": command.request_id, "created_at": now, "updated_at": now,
    }


def _find_existing(command: PlaceOrder, ctx: ServiceContext) -> PlacedOrder | None:
    with ctx.uow() as uow:
        order = orders.find_by_client_order_id(uow.session, command.user_id, present(
            command.client_order_id, "only an order with a client_order_id collides with one"))
        if order is None:
            return None
        return PlacedOrder(order_view(order, ctx.market_by_id(order.market_id)), False)
