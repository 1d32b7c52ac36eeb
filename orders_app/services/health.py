"""Readiness: the database answers with a current schema, and a Kafka bootstrap server answers."""
from __future__ import annotations

import socket

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from orders_app.schema_version import expected_revision
from orders_app.services import ServiceContext

PROBE_TIMEOUT_S = 1.0


def readiness(ctx: ServiceContext) -> list[str]:
    problems = []
    try:
        with ctx.uow() as uow:
            current = uow.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if current != expected_revision():
            problems.append(f"database schema is {current}, expected {expected_revision()}")
    except SQLAlchemyError as error:
        problems.append(f"database unreachable ({type(getattr(error, 'orig', None) or error).__name__})")
    if not any(_answers(server) for server in ctx.settings.kafka_bootstrap_servers.split(",")):
        problems.append("Kafka unreachable")
    return problems


def _answers(server: str) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False
