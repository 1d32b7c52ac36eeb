"""The one transaction boundary. Services do `with uow: ...; uow.commit()`; any other exit rolls back.

Repositories run their statements on `uow.session` and never commit. `run_transaction` retries a
transaction that the database chose as a deadlock victim or that timed out waiting for a lock — both are
safe to retry because nothing of the failed attempt was committed.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from orders_app.errors import (
    CommitOutcomeUnknown,
    ServiceUnavailable,
    is_database_unreachable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MYSQL_DEADLOCK = 1213
MYSQL_LOCK_WAIT_TIMEOUT = 1205
TRANSACTION_ATTEMPTS_MAX = 5
RETRY_BACKOFF_S = 0.005


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker):
        self._session_factory = session_factory
        self._session: Session | None = None
        self._committed = False

    @property
    def session(self) -> Session:
        """The transaction's session; only inside `with uow:`."""
        if self._session is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._session

    def __enter__(self) -> "UnitOfWork":
        self._session = self._session_factory()
        self._committed = False
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if not self._committed:
                self.session.rollback()
        finally:
            self.session.close()
            self._session = None

    def commit(self) -> None:
        """Commit; a connection lost during COMMIT raises `CommitOutcomeUnknown` (never retried: the
        transaction may have been applied)."""
        try:
            self.session.commit()
        except DBAPIError as error:
            if is_database_unreachable(error):
                raise CommitOutcomeUnknown(str(error.orig)) from error
            raise
        self._committed = True


def is_retryable(error: OperationalError) -> bool:
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return code in (MYSQL_DEADLOCK, MYSQL_LOCK_WAIT_TIMEOUT)


def run_transaction(work: Callable[[], T], *, attempts_max: int = TRANSACTION_ATTEMPTS_MAX) -> T:
    """Call `work` (which opens and commits its own unit of work), retrying deadlock victims."""
    for attempt in range(1, attempts_max + 1):
        try:
            return work()
        except OperationalError as error:
            if not is_retryable(error):
                raise
            if attempt == attempts_max:
                log.warning("transaction still conflicting after %d attempts: %s", attempt, error.orig)
                raise ServiceUnavailable("The system is busy; try again.") from error
            time.sleep(RETRY_BACKOFF_S * attempt)
    raise AssertionError("unreachable")
