"""Every setting, read once from the environment (and `.env` if present), validated at start-up.

A bad or missing value stops the process with a `ConfigError` that names the key; nothing reads
`os.environ` elsewhere. `.env.example` lists every key with its default and meaning.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path

from dotenv import dotenv_values

ROOT_DIR = Path(__file__).resolve().parent.parent


RATE_MIN = Decimal("0.00001")  # about one per day
RATE_MAX = Decimal(1_000_000)
SECRET_SETTINGS = ("admin_token",)
ADMIN_TOKEN_CHARS_MIN = 24
# Every admin token the project's example files ever shipped: a copied example must not start a service
# whose admin token is public (tests/unit/test_config.py finds every token in those files and checks it).
PLACEHOLDER_ADMIN_TOKENS = frozenset({"change-me-to-a-long-random-string"})
# Whole values in ASCII (fullmatch): `str.isdigit()` takes "²", which int() refuses, and `$` takes a "\n".
_PORT = re.compile(r"[0-9]{1,5}")
_ASSET_SYMBOL = re.compile(r"[A-Z0-9]{1,16}")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it."""


def _int(env: dict, key: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key} must be between {minimum} and {maximum}, got {value}")
    return value


def _bool(env: dict, key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def _name(env: dict, key: str, default: str, max_length: int = 200) -> str:
    value = (env.get(key) or default).strip()
    if not value or len(value) > max_length or any(c.isspace() for c in value):
        raise ConfigError(f"{key} must be a non-empty name without spaces, got {value!r}")
    return value


def _rate(env: dict, key: str) -> Decimal:
    """A non-negative decimal rate (0 = off), at most RATE_MAX per second and at least 1 per day."""
    raw = (env.get(key) or "0").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{key} must be a decimal number (0 = off), got {raw!r}") from None
    if not value.is_finite() or value < 0 or value > RATE_MAX or (value and value < RATE_MIN):
        raise ConfigError(f"{key} must be 0 (off) or between {RATE_MIN} and {RATE_MAX}, got {raw!r}")
    return value


def _check_admin_token(token: str) -> None:
    generate = "generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if len(token) < ADMIN_TOKEN_CHARS_MIN:
        raise ConfigError(f"ADMIN_TOKEN is required and must be at least {ADMIN_TOKEN_CHARS_MIN} characters "
                          f"({generate})")
    if token.lower() in PLACEHOLDER_ADMIN_TOKENS:
        raise ConfigError(f"ADMIN_TOKEN is the placeholder of the project's example files, which anyone can read "
                          f"({generate})")


def mask_url_password(url: str) -> str:
    """`scheme://user:secret@host/db` -> `scheme://user:***@host/db`: URLs are logged and echoed in errors.
    The password ends at the last "@": it may hold "/", ":" and "@" unescaped, a host holds none of them."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    userinfo, at, host_and_path = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return url
    return f"{scheme}://{user}:***@{host_and_path}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)  # secrets stay out of reprs (tracebacks); `redacted()` masks them
    kafka_bootstrap_servers: str
    admin_token: str = field(repr=False)
    admin_token_generated: bool = False
    quote_currency: str = "USD"
    port: int = 3000
    log_level: str = "INFO"
    order_events_topic: str = "order-events"
    trade_events_topic: str = "trade-events"
    order_events_dlq_topic: str = "order-events.dlq"
    book_events_topic: str = "book-events"
    order_updates_topic: str = "order-updates"
    stream_host: str = "127.0.0.1"
    stream_port: int = 3001
    stream_client_buffer_bytes_max: int = 4 * 1024 * 1024
    kafka_topic_partitions: int = 4
    kafka_max_poll_interval_ms: int = 10000
    kafka_request_timeout_ms: int = 5000
    kafka_fetch_max_wait_ms: int = 100
    kafka_session_timeout_ms: int = 10000
    kafka_consumer_group: str = "order-matching"
    outbox_sweep_interval_ms: int = 1000
    outbox_sweep_grace_ms: int = 15000
    outbox_sweep_batch_rows_max: int = 1000
    outbox_relay_poll_ms: int = 25
    outbox_gap_timeout_s: int = 60
    settle_batch_commands_max: int = 1000
    place_batch_orders_max: int = 64
    outbox_publisher: str = "relay"
    market_buy_collar_percent: int = 5
    merge_same_price_orders: bool = False
    db_pool_size: int = 10
    db_pool_timeout_s: int = 5
    max_open_orders_per_user: int = 1000
    api_key_cache_seconds: int = 30
    request_body_bytes_max: int = 64 * 1024
    request_body_read_timeout_ms: int = 10000
    request_drain_bytes_max: int = 256 * 1024
    check_schema_on_start: bool = True
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9100
    rate_limit_orders_per_second: Decimal = Decimal(0)
    rate_limit_burst: int = 0

    @classmethod
    def from_env(cls, overrides: dict | None = None, *, needs_admin_token: bool = True) -> "Settings":
        """`needs_admin_token` is False for the worker, which serves no admin calls."""
        env: dict = {}
        env_file = ROOT_DIR / ".env"
        if env_file.exists():
            env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        env.update(os.environ)
        env.update({k.upper(): str(v) for k, v in (overrides or {}).items()})

        database_url = (env.get("DATABASE_URL") or "").strip()
        if not database_url:
            raise ConfigError("DATABASE_URL is required, e.g. mysql+pymysql://root@127.0.0.1:3306/orders "
                              "(./dev run starts a local MariaDB and sets it)")
        if not database_url.startswith(("mysql+pymysql://", "mysql+mysqldb://", "mysql://",
                                        "mariadb+pymysql://", "mariadb+mysqldb://")):
            raise ConfigError("DATABASE_URL must be a MySQL/MariaDB SQLAlchemy URL, "
                              f"got {mask_url_password(database_url)!r}")
        kafka = (env.get("KAFKA_BOOTSTRAP_SERVERS") or "").strip()
        if not kafka:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is required, e.g. 127.0.0.1:9092")
        for server in kafka.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not _PORT.fullmatch(port):
                raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS must be host:port[,host:port], got {kafka!r}")
        admin_token = (env.get("ADMIN_TOKEN") or "").strip()
        if needs_admin_token:
            _check_admin_token(admin_token)
        quote = _name(env, "QUOTE_CURRENCY", "USD", 16).upper()
        if not _ASSET_SYMBOL.fullmatch(quote):
            raise ConfigError(f"QUOTE_CURRENCY must be alphanumeric, got {quote!r}")
        log_level = _name(env, "LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        outbox_publisher = _name(env, "OUTBOX_PUBLISHER", "relay").lower()
        if outbox_publisher not in ("api", "relay"):
            raise ConfigError(f"OUTBOX_PUBLISHER must be api or relay, got {outbox_publisher!r}")
        settings = cls(
            outbox_publisher=outbox_publisher,
            database_url=database_url,
            kafka_bootstrap_servers=kafka,
            admin_token=admin_token,
            admin_token_generated=_bool(env, "ADMIN_TOKEN_GENERATED", False),
            quote_currency=quote,
            port=_int(env, "PORT", 3000, 1, 65535),
            log_level=log_level,
            order_events_topic=_name(env, "ORDER_EVENTS_TOPIC", "order-events"),
            trade_events_topic=_name(env, "TRADE_EVENTS_TOPIC", "trade-events"),
            order_events_dlq_topic=_name(env, "ORDER_EVENTS_DLQ_TOPIC", "order-events.dlq"),
            book_events_topic=_name(env, "BOOK_EVENTS_TOPIC", "book-events"),
            order_updates_topic=_name(env, "ORDER_UPDATES_TOPIC", "order-updates"),
            stream_host=_name(env, "STREAM_HOST", "127.0.0.1"),
            stream_port=_int(env, "STREAM_PORT", 3001, 1, 65535),
            stream_client_buffer_bytes_max=_int(env, "STREAM_CLIENT_BUFFER_BYTES_MAX", 4 * 1024 * 1024, 1024,
                                                  1024 * 1024 * 1024),
            kafka_topic_partitions=_int(env, "KAFKA_TOPIC_PARTITIONS", 4, 1, 1024),
            kafka_max_poll_interval_ms=_int(env, "KAFKA_MAX_POLL_INTERVAL_MS", 10000, 1000, 3_600_000),
            kafka_request_timeout_ms=_int(env, "KAFKA_REQUEST_TIMEOUT_MS", 5000, 500, 600_000),
            kafka_fetch_max_wait_ms=_int(env, "KAFKA_FETCH_MAX_WAIT_MS", 100, 0, 10_000),
            kafka_session_timeout_ms=_int(env, "KAFKA_SESSION_TIMEOUT_MS", 10000, 1000, 600_000),
            kafka_consumer_group=_name(env, "KAFKA_CONSUMER_GROUP", "order-matching"),
            outbox_sweep_interval_ms=_int(env, "OUTBOX_SWEEP_INTERVAL_MS", 1000, 50, 600_000),
            outbox_sweep_grace_ms=_int(env, "OUTBOX_SWEEP_GRACE_MS", 15000, 0, 600_000),
            outbox_sweep_batch_rows_max=_int(env, "OUTBOX_SWEEP_BATCH_ROWS_MAX", 1000, 1, 100_000),
            outbox_relay_poll_ms=_int(env, "OUTBOX_RELAY_POLL_MS", 25, 1, 1000),
            outbox_gap_timeout_s=_int(env, "OUTBOX_GAP_TIMEOUT_S", 60, 1, 86_400),
            settle_batch_commands_max=_int(env, "SETTLE_BATCH_COMMANDS_MAX", 1000, 1, 100_000),
            place_batch_orders_max=_int(env, "PLACE_BATCH_ORDERS_MAX", 64, 1, 10_000),
            market_buy_collar_percent=_int(env, "MARKET_BUY_COLLAR_PERCENT", 5, 0, 100),
            merge_same_price_orders=_bool(env, "MERGE_SAME_PRICE_ORDERS", False),
            db_pool_size=_int(env, "DB_POOL_SIZE", 10, 1, 200),
            db_pool_timeout_s=_int(env, "DB_POOL_TIMEOUT_S", 5, 1, 300),
            max_open_orders_per_user=_int(env, "MAX_OPEN_ORDERS_PER_USER", 1000, 1, 1_000_000),
            api_key_cache_seconds=_int(env, "API_KEY_CACHE_SECONDS", 30, 0, 3600),
            request_body_read_timeout_ms=_int(env, "REQUEST_BODY_READ_TIMEOUT_MS", 10000, 100, 600_000),
            request_drain_bytes_max=_int(env, "REQUEST_DRAIN_BYTES_MAX", 256 * 1024, 0, 1024 ** 3),
            check_schema_on_start=_bool(env, "CHECK_SCHEMA_ON_START", True),
            worker_metrics_host=_name(env, "WORKER_METRICS_HOST", "127.0.0.1"),
            worker_metrics_port=_int(env, "WORKER_METRICS_PORT", 9100, 0, 65535),
            rate_limit_orders_per_second=_rate(env, "RATE_LIMIT_ORDERS_PER_SECOND"),
            rate_limit_burst=_int(env, "RATE_LIMIT_BURST", 0, 0, 1_000_000),
        )
        grace_floor_ms = 3 * settings.kafka_request_timeout_ms
        if settings.outbox_publisher == "api" and settings.outbox_sweep_grace_ms < grace_floor_ms:
            # The API's own send of a row may take up to 2 request timeouts (metadata, then the flush), and
            # it only sends rows younger than the grace minus that; a shorter grace leaves it no window.
            raise ConfigError("OUTBOX_SWEEP_GRACE_MS must be at least 3 x KAFKA_REQUEST_TIMEOUT_MS "
                              f"({settings.outbox_sweep_grace_ms} < 3 x {settings.kafka_request_timeout_ms})")
        return settings

    def redacted(self) -> dict:
        """Every setting as it may be logged: the admin token and the database password masked."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in SECRET_SETTINGS:
            shown[name] = "***" if shown[name] else ""
        shown["database_url"] = mask_url_password(self.database_url)
        shown["rate_limit_orders_per_second"] = str(self.rate_limit_orders_per_second)
        return shown

    def as_flask_config(self) -> dict:
        return {f"ORDERS_{f.name.upper()}": getattr(self, f.name) for f in fields(self)}
