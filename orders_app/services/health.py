"""Readiness: the database answers with a current schema, and a Kafka bootstrap server answers.

A probe of blackholed brokers waits for connect timeouts, so it is bounded twice: all brokers together get
`KAFKA_PROBE_BUDGET_S`, and `Readiness` runs one probe at a time per process and reuses its answer for
`READY_ANSWER_TTL_S`: a load balancer polling `/ready` cannot hold one API thread per call.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from orders_app.config import Settings
from orders_app.errors import present
from orders_app.schema_version import expected_revision
from orders_app.services import ServiceContext

KAFKA_PROBE_BUDGET_S = 1.0
READY_ANSWER_TTL_S = 1.0


def readiness(ctx: ServiceContext) -> list[str]:
    """Probe now: the problems found, or [] when ready."""
    problems = []
    try:
        with ctx.uow() as uow:
            current = uow.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if current != expected_revision():
            problems.append(f"database schema is {current}, expected {expected_revision()}")
    except SQLAlchemyError as error:
        problems.append(f"database unreachable ({type(getattr(error, 'orig', None) or error).__name__})")
    servers = ctx.settings.kafka_bootstrap_servers.split(",")
    if not any(_answers(server, KAFKA_PROBE_BUDGET_S / len(servers)) for server in servers):
        problems.append("Kafka unreachable")
    return problems


def _answers(server: str, timeout_s: float) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


class _Answer(NamedTuple):
    settings: Settings  # an answer holds for the settings it probed (tests swap them)
    probed_at: float
    problems: list[str]

    def is_fresh_for(self, settings: Settings) -> bool:
        return self.settings is settings and time.monotonic() - self.probed_at < READY_ANSWER_TTL_S


class Readiness:
    """A process's readiness answer: probed by one thread at a time, reused for READY_ANSWER_TTL_S.
    A caller arriving while a probe runs gets the previous answer at once (only the very first callers
    wait for the first probe)."""

    def __init__(self):
        self._probe_lock = threading.Lock()
        self._answer: _Answer | None = None

    def problems(self, ctx: ServiceContext) -> list[str]:
        last = self._answer
        if last is not None and last.is_fresh_for(ctx.settings):
            return last.problems
        previous = last if last is not None and last.settings is ctx.settings else None
        if not self._probe_lock.acquire(blocking=previous is None):
            # another thread is probing: no second thread waits on the brokers (only a non-blocking acquire fails)
            return present(previous, "a blocking acquire failed").problems
        try:
            last = self._answer
            if last is not None and last.is_fresh_for(ctx.settings):
                return last.problems
            problems = readiness(ctx)
            self._answer = _Answer(ctx.settings, time.monotonic(), problems)
            return problems
        finally:
            self._probe_lock.release()
