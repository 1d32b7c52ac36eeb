"""Which commands a batch applies: contiguous after the market's applied sequence, as the database has them.

A Kafka record is only a hint. Each is checked against the database's command of its sequence (a placement
against its order row's `seq`, anything else against the outbox), and one that differs is returned to be
set aside while the database's command applies; a gap is filled from the outbox, the log of record.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from orders_app.errors import invariant
from orders_app.messages import MarketCommand
from orders_app.repositories import settlement
from orders_app.repositories.markets import MarketSpec


@dataclass(frozen=True)
class SetAside:
    """A Kafka record that differs from the database's command of its sequence."""
    command: MarketCommand
    detail: str


def commands_to_apply(session: Session, spec: MarketSpec, last_seq: int, commands: list[MarketCommand],
                      up_to_seq: int, commands_max: int
                      ) -> tuple[list[MarketCommand], list[SetAside], dict[int, settlement.LockedOrder]]:
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
    ordered: list[MarketCommand] = []
    orders: dict[int, settlement.LockedOrder] = {}
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
                  f"{spec.name}: command {command.seq} breaks the sequence after {last_seq}")
    return ordered, _differing(session, spec, last_seq, top, commands, ordered), orders


def _key(command: MarketCommand) -> tuple[str, int]:
    return command.event_type, command.order_id


def _confirmed(session: Session, spec: MarketSpec, ordered: list[MarketCommand],
               orders: dict[int, settlement.LockedOrder]) -> bool:
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


def _differing(session: Session, spec: MarketSpec, last_seq: int, top: int, commands: list[MarketCommand],
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
        expected: tuple[str, int] | None
        if last_seq < command.seq <= top:
            truth_command = truth.get(command.seq)
            expected = None if truth_command is None else _key(truth_command)
        else:
            expected = known.get(command.seq)
            if expected is None and command.seq <= last_seq:
                continue
        if expected != _key(command):
            found = "no command" if expected is None else f"{expected[0]} of order {expected[1]}"
            set_aside.append(SetAside(command, f"{spec.name} seq {command.seq}: the record says "
                                               f"{command.event_type} of order {command.order_id}, "
                                               f"the database has {found}"))
    return set_aside
