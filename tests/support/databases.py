"""Databases of a test's own on the suite's MariaDB server: for migrations and schema checks."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """An empty database named `<prefix>_<random>` (no migration ran on it), dropped afterwards; yields its URL."""
    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP DATABASE {name}"))
        engine.dispose()
