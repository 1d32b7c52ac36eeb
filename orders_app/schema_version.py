"""The start-up check that the database schema is at the code's alembic head."""
from __future__ import annotations

from functools import lru_cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from orders_app.config import ROOT_DIR, ConfigError


@lru_cache(maxsize=1)
def expected_revision() -> str:
    config = Config(str(ROOT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT_DIR / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


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
                          f"run `alembic upgrade head` (with the same DATABASE_URL) first.")
