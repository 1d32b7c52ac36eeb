"""Group commit: the orders of concurrent requests share one transaction, and one durable commit.

Every order of a market takes that market's next sequence number under a row lock held until commit (so
numbers commit in order — the worker's gap detection rests on it), and a commit waits for the redo log's
fsync. One transaction per order therefore serialises a market's orders on one fsync each. Here each API
process has one committer thread: request threads queue their prepared orders and wait; the thread takes
every order queued while the previous transaction committed (up to `PLACE_BATCH_ORDERS_MAX`), places
them in one transaction (`placing.place_batch`: each order accepted or refused on its own), commits, and
only then wakes each request with its own outcome. So a `201` still means "durably recorded", and a batch
that fails (the database went away) fails every request in it with the same error, none half-applied.
One request's several orders (`POST /api/orders/batch`) enter the queue as one group: never split between
transactions (so a group may take a batch past the bound, by at most a request's orders).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from orders_app.errors import OrderStatusUnknown
from orders_app.metrics import PLACE_BATCH_ORDERS, PLACE_BATCH_SECONDS
from orders_app.services import ServiceContext
from orders_app.services.placing import PlacedOrder, PreparedOrder, place_batch

log = logging.getLogger(__name__)

WAIT_TIMEOUT_S = 60.0  # a request stops waiting for its batch (503 ORDER_STATUS_UNKNOWN) after this


@dataclass
class _Ticket:
    prepared: PreparedOrder
    done: threading.Event = field(default_factory=threading.Event)
    outcome: PlacedOrder | BaseException | None = None


class GroupCommitter:
    def __init__(self, ctx: ServiceContext, batch_orders_max: int):
        self._ctx = ctx
        self._batch_orders_max = batch_orders_max
        self._queue: queue.SimpleQueue[list[_Ticket] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, prepared: PreparedOrder) -> PlacedOrder:
        """Place `prepared` in the next batch; returns once it is committed, or raises its refusal."""
        outcome = self.submit_many([prepared])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def submit_many(self, prepared: list[PreparedOrder]) -> list[PlacedOrder | BaseException]:
        """Place the orders together, in this order, in the next batch; returns each one's outcome (its
        placed order, or its refusal) once committed. An order whose batch did not finish in time answers
        OrderStatusUnknown."""
        tickets = [_Ticket(one) for one in prepared]
        self._ensure_thread()
        self._queue.put(tickets)
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        outcomes: list[PlacedOrder | BaseException] = []
        for ticket in tickets:
            finished = ticket.done.wait(max(0.0, deadline - time.monotonic()))
            outcomes.append(ticket.outcome if finished and ticket.outcome is not None else OrderStatusUnknown(
                "The order's batch did not finish in time: it may still be recorded. Retry with the same "
                "client_order_id, or look for the order before placing it again."))
        return outcomes

    def _ensure_thread(self) -> None:
        # Started on first use, so each gunicorn worker (forked after the app is built) gets its own.
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = list(first)
            while len(batch) < self._batch_orders_max:
                try:
                    group = self._queue.get_nowait()
                except queue.Empty:
                    break
                if group is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.extend(group)
            self._commit(batch)

    def _commit(self, batch: list[_Ticket]) -> None:
        started = time.perf_counter()
        outcomes: Sequence[PlacedOrder | Exception]
        try:
            outcomes = place_batch([ticket.prepared for ticket in batch], self._ctx)
        except Exception as error:  # noqa: BLE001 - every request of the batch answers with it
            log.warning("order batch of %d failed: %r", len(batch), error)
            outcomes = [error] * len(batch)
        PLACE_BATCH_ORDERS.observe(len(batch))
        PLACE_BATCH_SECONDS.observe(time.perf_counter() - started)
        for ticket, outcome in zip(batch, outcomes, strict=True):
            ticket.outcome = outcome
            ticket.done.set()

    def stop(self) -> None:
        """Finish the queued orders, then end the thread (graceful shutdown, tests)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=WAIT_TIMEOUT_S)
