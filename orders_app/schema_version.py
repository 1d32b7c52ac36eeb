"""The start-up check that the database schema is at the code's alembic head."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from orders_app.config import ROOT_DIR, ConfigError
from orders_app.errors import present


def alembic_config() -> Config:
    """Alembic's configuration: the checkout's `alembic.ini` and `migrations/`, or, in an installed package
    (no checkout around it), the migrations shipped inside it as `orders_app.migrations`."""
    if (ROOT_DIR / "migrations" / "env.py").exists():
        config = Config(str(ROOT_DIR / "alembic.ini"))
        config.set_main_option("script_location", str(ROOT_DIR / "migrations"))
    else:
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    return config


@lru_cache(maxsize=1)
def expected_revision() -> str:
    return present(ScriptDirectory.from_config(alembic_config()).get_current_head(), "the migrations have a head")


def check_schema_current(engine: Engine) -> None:
    """Raise ConfigError (naming the fix) unless the database is at alembic head."""
    try:
        with engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except ProgrammingError:
        current = None
    except OperationalError as error:
        raise ConfigError(f"DATABASE_URL: cannot connect to the database ({error.orig})") from None
    head = expected_revision()
    if current != head:
        raise ConfigError(f"The database schema is at {current or 'nothing'} but this code needs {head}: "
                          f"run `alembic upgrade head` or `orders-cli migrate` (with the same DATABASE_URL) first.")
