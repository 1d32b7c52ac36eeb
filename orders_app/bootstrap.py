"""The composition root: every process builds its object graph here, and nowhere else.

`bootstrap(settings, role=...)` returns a `Runtime`: the settings, the database engine and session factory,
the `ServiceContext` every use case takes, and — by role — the API's group committer and after-commit
publisher. It knows nothing of Flask: the API (`create_app`, which only adds HTTP), the worker
(`consumer.py` / `orders-worker`), its relay child, the CLI and the benchmarks all start here.

Roles: "api" (group committer; publisher connected at once when OUTBOX_PUBLISHER=api), "worker", "relay" and
"stream" (no committer, no publisher: the relay publishes), "cli" (no Kafka at all), "bench" (like "worker").
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from orders_app.config import Settings
from orders_app.messaging.publisher import OutboxPublisher
from orders_app.repositories.markets import fee_user_id, load_asset_scales, load_markets
from orders_app.schema_version import check_schema_current
from orders_app.services import ServiceContext
from orders_app.services.group_commit import GroupCommitter

ROLES = ("api", "worker", "relay", "stream", "cli", "bench")
CONNECT_TIMEOUT_S = 5
SOCKET_TIMEOUT_S = 30  # a statement (or COMMIT) that gets no answer this long fails instead of hanging
# The operator's commands and the benchmarks run whole-database statements (a reconciliation reads every order
# and trade at once: over a minute on a million orders); no request waits on them.
OFFLINE_SOCKET_TIMEOUT_S = 3600
OFFLINE_ROLES = ("cli", "bench")
POOL_RECYCLE_S = 3600


@dataclass
class Runtime:
    """One process's object graph."""
    settings: Settings
    engine: Engine
    ctx: ServiceContext
    committer: GroupCommitter | None = None
    publisher: OutboxPublisher | None = None

    def close(self) -> None:
        """Finish queued orders and rows, stop the threads, close the pool (shutdown, tests)."""
        if self.committer is not None:
            self.committer.stop()
        if self.publisher is not None:
            self.publisher.stop()
        self.engine.dispose()


def engine_options(settings: Settings, role: str = "api") -> dict:
    """The engine's options, spelled out: one pool per process (gunicorn forks before connecting)."""
    socket_timeout_s = OFFLINE_SOCKET_TIMEOUT_S if role in OFFLINE_ROLES else SOCKET_TIMEOUT_S
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_pool_size,
            "pool_timeout": settings.db_pool_timeout_s, "pool_pre_ping": True, "pool_recycle": POOL_RECYCLE_S,
            "isolation_level": "READ COMMITTED",
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": socket_timeout_s,
                             "write_timeout": socket_timeout_s}}


def bootstrap(settings: Settings | None = None, *, role: str = "worker", engine: Engine | None = None) -> Runtime:
    """Build a process's object graph. `engine` is given when something else owns it (the API's
    Flask-SQLAlchemy extension, built from `engine_options`); otherwise it is created here. Raises
    `ConfigError` (naming the fix) on a bad setting or an out-of-date schema."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if settings is None:
        settings = Settings.from_env(needs_admin_token=(role == "api"))
    if engine is None:
        engine = create_engine(settings.database_url, **engine_options(settings, role))
    if settings.check_schema_on_start:
        check_schema_current(engine)
    session_factory = sessionmaker(bind=engine, expire_on_commit=False)
    with session_factory() as session:
        markets, scales, fee_user = load_markets(session), load_asset_scales(session), fee_user_id(session)
    ctx = ServiceContext(settings, session_factory, markets, scales, fee_user)
    runtime = Runtime(settings, engine, ctx)
    if role == "api" and settings.place_batch_orders_max > 1:
        runtime.committer = GroupCommitter(ctx, settings.place_batch_orders_max)
    if role == "api" and settings.outbox_publisher == "api":
        runtime.publisher = OutboxPublisher(settings, session_factory, connect_now=True)
        ctx.publish = runtime.publisher.publish
    return runtime
