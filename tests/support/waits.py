"""Waiting on the system's state instead of sleeping."""
from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from sqlalchemy.orm import Session

from orders_app.repositories import settlement

SETTLE_TIMEOUT_S = 30.0


def wait_settled(database, timeout_s: float = SETTLE_TIMEOUT_S) -> float:
    """Until the worker applied every command the API accepted, in every market; returns the seconds it took.
    `database`: a service context, or the engine of a database of the test's own."""
    started = time.monotonic()
    deadline = started + timeout_s
    sessions = database.session_factory if hasattr(database, "session_factory") else partial(Session, database)
    while True:
        with sessions() as session:
            accepted, applied = settlement.accepted_seqs(session), settlement.applied_seqs(session)
        if accepted == applied:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled after {timeout_s}s: accepted {accepted}, applied {applied}")
        time.sleep(0.05)  # between two reads of the sequences


def wait_market_applied(ctx, market_id: int, timeout_s: float = SETTLE_TIMEOUT_S, poll_s: float = 0.05) -> int:
    """Until the worker applied every command the API accepted in one market; returns that sequence."""
    deadline = time.monotonic() + timeout_s
    while True:
        with ctx.uow() as uow:
            accepted = settlement.accepted_seq(uow.session, market_id)
            applied = settlement.applied_seqs(uow.session).get(market_id, 0)
        if accepted == applied:
            return applied
        if time.monotonic() > deadline:
            raise AssertionError(f"market {market_id} not settled after {timeout_s}s: applied {applied} of {accepted}")
        time.sleep(poll_s)  # between two reads of the sequences


def wait_until(predicate, timeout_s: float = SETTLE_TIMEOUT_S, what: str | Callable[[], str] = "condition",
               poll_s: float = 0.2):
    """Until `predicate()` is truthy; returns that value. `what` names the condition in the failure, or is
    called then to describe the state it found."""
    deadline = time.monotonic() + timeout_s
    while True:  # one last look after the deadline: a slow look does not eat the condition's time
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(poll_s)  # between two looks at the condition
    raise AssertionError(f"{what() if callable(what) else what} not reached after {timeout_s}s")
