"""Settings are validated at start-up; a bad value stops the process with the key's name."""
from __future__ import annotations

import pytest

from orders_app.config import ConfigError, Settings

GOOD = {"DATABASE_URL": "mysql+pymysql://u@127.0.0.1:3306/orders", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "ADMIN_TOKEN": "a-long-enough-admin-token"}
EXAMPLE_FILES = (".env.example", "docker-compose.yml", "README.md", "Dockerfile")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(GOOD) + ["PORT", "MERGE_SAME_PRICE_ORDERS", "OUTBOX_SWEEP_GRACE_MS", "LOG_LEVEL",
                             "KAFKA_REQUEST_TIMEOUT_MS", "OUTBOX_PUBLISHER", "PLACE_BATCH_ORDERS_MAX",
                             "KAFKA_SESSION_TIMEOUT_MS", "KAFKA_FETCH_MAX_WAIT_MS", "WORKER_METRICS_PORT",
                             "WORKER_METRICS_HOST", "RATE_LIMIT_ORDERS_PER_SECOND", "RATE_LIMIT_BURST"]:
        monkeypatch.delenv(key, raising=False)


def test_defaults():
    settings = Settings.from_env(GOOD)
    assert settings.port == 3000 and settings.quote_currency == "USD"
    assert settings.order_events_topic == "order-events" and settings.kafka_max_poll_interval_ms == 10000
    assert settings.merge_same_price_orders is False


@pytest.mark.parametrize("key,value", [
    ("DATABASE_URL", ""), ("DATABASE_URL", "postgresql://x/y"), ("KAFKA_BOOTSTRAP_SERVERS", ""),
    ("KAFKA_BOOTSTRAP_SERVERS", "nohostport"), ("ADMIN_TOKEN", ""), ("ADMIN_TOKEN", "short"),
    ("PORT", "abc"), ("PORT", "70000"), ("MERGE_SAME_PRICE_ORDERS", "maybe"), ("LOG_LEVEL", "LOUD"),
    ("OUTBOX_PUBLISHER", "kafka"), ("PLACE_BATCH_ORDERS_MAX", "0"), ("KAFKA_SESSION_TIMEOUT_MS", "10"),
    ("KAFKA_FETCH_MAX_WAIT_MS", "-1"), ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:\u00b2"),
    ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:\u0669\u0660\u0669\u0662"), ("QUOTE_CURRENCY", "\u00dcSD"),
    ("QUOTE_CURRENCY", "US\u0665"),
])
def test_invalid_setting_is_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        Settings.from_env(dict(GOOD, **{key: value}))


def test_a_sweep_grace_shorter_than_three_kafka_timeouts_is_refused_when_the_api_publishes():
    """The API's own send may take 2 request timeouts and it must leave itself a window to send in;
    a shorter grace would have the sweeper publish rows the API is still sending."""
    with pytest.raises(ConfigError, match="OUTBOX_SWEEP_GRACE_MS"):
        Settings.from_env(dict(GOOD, OUTBOX_PUBLISHER="api", OUTBOX_SWEEP_GRACE_MS="100"))
    with pytest.raises(ConfigError, match="3 x 1000"):
        Settings.from_env(dict(GOOD, OUTBOX_PUBLISHER="api", OUTBOX_SWEEP_GRACE_MS="2999",
                               KAFKA_REQUEST_TIMEOUT_MS="1000"))
    assert Settings.from_env(dict(GOOD, OUTBOX_PUBLISHER="api", OUTBOX_SWEEP_GRACE_MS="3000",
                                  KAFKA_REQUEST_TIMEOUT_MS="1000")).outbox_sweep_grace_ms == 3000
    assert Settings.from_env(dict(GOOD, OUTBOX_SWEEP_GRACE_MS="100")).outbox_sweep_grace_ms == 100


# --- every setting documented, new settings validated -------------------------------------------------

import ast  # noqa: E402
import re  # noqa: E402

from orders_app.config import ROOT_DIR, mask_url_password  # noqa: E402

_KEY = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")


def _keys_read(path) -> set[str]:
    """Setting names a module looks up: env.get("KEY"), os.environ.get("KEY"), _int(env, "KEY", ...), ..."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            for argument in node.args[:2]:
                if (isinstance(argument, ast.Constant) and isinstance(argument.value, str)
                        and _KEY.fullmatch(argument.value)):
                    keys.add(argument.value)
    return keys


def _documented_keys() -> set[str]:
    keys = set()
    for line in (ROOT_DIR / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            keys.add(match.group(1))
    return keys


def test_every_setting_read_is_documented_in_env_example():
    read = _keys_read(ROOT_DIR / "orders_app" / "config.py") | _keys_read(ROOT_DIR / "gunicorn.conf.py")
    assert {"DATABASE_URL", "WORKER_METRICS_PORT", "RATE_LIMIT_ORDERS_PER_SECOND", "GUNICORN_WORKERS"} <= read
    missing = read - _documented_keys()
    assert not missing, f"settings read but not in .env.example: {sorted(missing)}"


def test_env_example_documents_only_real_settings_and_its_values_are_valid():
    read = _keys_read(ROOT_DIR / "orders_app" / "config.py") | _keys_read(ROOT_DIR / "gunicorn.conf.py")
    assert _documented_keys() - read == set()
    from dotenv import dotenv_values
    example = {k: v for k, v in dotenv_values(ROOT_DIR / ".env.example").items() if v is not None}
    settings = Settings.from_env(dict(example, ADMIN_TOKEN=GOOD["ADMIN_TOKEN"]))  # the documented defaults
    assert settings.worker_metrics_port == 9100 and settings.rate_limit_orders_per_second == 0


def test_new_settings_defaults():
    settings = Settings.from_env(GOOD)
    assert settings.worker_metrics_host == "127.0.0.1" and settings.worker_metrics_port == 9100
    assert settings.rate_limit_orders_per_second == 0 and settings.rate_limit_burst == 0
    assert str(Settings.from_env(dict(GOOD, RATE_LIMIT_ORDERS_PER_SECOND="0.5")).rate_limit_orders_per_second) == "0.5"
    assert Settings.from_env(dict(GOOD, WORKER_METRICS_PORT="0")).worker_metrics_port == 0


@pytest.mark.parametrize("key,value", [
    ("WORKER_METRICS_PORT", "metrics"), ("WORKER_METRICS_PORT", "-1"), ("WORKER_METRICS_PORT", "65536"),
    ("WORKER_METRICS_HOST", "two words"), ("RATE_LIMIT_ORDERS_PER_SECOND", "fast"),
    ("RATE_LIMIT_ORDERS_PER_SECOND", "-1"), ("RATE_LIMIT_ORDERS_PER_SECOND", "NaN"),
    ("RATE_LIMIT_ORDERS_PER_SECOND", "Infinity"), ("RATE_LIMIT_ORDERS_PER_SECOND", "0.000000001"),
    ("RATE_LIMIT_ORDERS_PER_SECOND", "1e9"), ("RATE_LIMIT_BURST", "-3"), ("RATE_LIMIT_BURST", "lots"),
])
def test_invalid_new_setting_is_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        Settings.from_env(dict(GOOD, **{key: value}))


def test_secrets_are_masked_wherever_settings_are_shown():
    url = "mysql+pymysql://orders:s3cr%40t-pw@db.internal:3306/orders"
    settings = Settings.from_env(dict(GOOD, DATABASE_URL=url))
    shown = repr(settings.redacted())
    assert "s3cr" not in shown and GOOD["ADMIN_TOKEN"] not in shown
    assert settings.redacted()["database_url"] == "mysql+pymysql://orders:***@db.internal:3306/orders"
    assert mask_url_password("mysql+pymysql://root@127.0.0.1/orders") == "mysql+pymysql://root@127.0.0.1/orders"
    with pytest.raises(ConfigError) as refused:  # a wrong scheme is echoed back, without the password
        Settings.from_env(dict(GOOD, DATABASE_URL="postgresql://u:topsecret@h/db"))
    assert "topsecret" not in str(refused.value) and "DATABASE_URL" in str(refused.value)


# --- the admin token -----------------------------------------------------------------------------------

def _admin_tokens_in_example_files() -> dict[str, str]:
    """{token: file} of every literal ADMIN_TOKEN value shipped in the project's example files and docs."""
    paths = [ROOT_DIR / name for name in EXAMPLE_FILES] + sorted((ROOT_DIR / "docs").glob("*.md"))
    tokens = {}
    for path in paths:
        for token in re.findall(r"ADMIN_TOKEN\s*[=:]\s*[\"']?([^\s\"'$#]+)", path.read_text()):
            tokens[token] = path.name
    return tokens


def test_every_admin_token_shipped_in_an_example_file_is_refused():
    tokens = _admin_tokens_in_example_files()
    assert ".env.example" in tokens.values()  # the scan finds what a copy of .env.example would start with
    for token in tokens:
        with pytest.raises(ConfigError, match="ADMIN_TOKEN"):
            Settings.from_env(dict(GOOD, ADMIN_TOKEN=token))


@pytest.mark.parametrize("token", ["x" * 23, " " * 30 + "short", "change-me-to-a-long-random-string",
                                   "CHANGE-ME-TO-A-LONG-RANDOM-STRING"])
def test_an_admin_token_shorter_than_24_characters_or_a_placeholder_is_refused(token):
    with pytest.raises(ConfigError, match="ADMIN_TOKEN"):
        Settings.from_env(dict(GOOD, ADMIN_TOKEN=token))


def test_an_admin_token_of_24_characters_is_accepted_and_only_the_api_needs_one():
    assert Settings.from_env(dict(GOOD, ADMIN_TOKEN="k" * 24)).admin_token == "k" * 24
    placeholder = "change-me-to-a-long-random-string"
    assert Settings.from_env(dict(GOOD, ADMIN_TOKEN=placeholder), needs_admin_token=False)


@pytest.mark.parametrize("url,masked", [
    ("mysql+pymysql://orders:pa/ss@db:3306/orders", "mysql+pymysql://orders:***@db:3306/orders"),
    ("mysql+pymysql://orders:p@ss/w:rd@db/orders", "mysql+pymysql://orders:***@db/orders"),
    ("mysql+pymysql://orders:s3cr%2Ft@db/orders?charset=utf8mb4", "mysql+pymysql://orders:***@db/orders?charset=utf8mb4"),
    ("mysql+pymysql://orders@db/orders", "mysql+pymysql://orders@db/orders"),
])
def test_a_database_password_is_masked_whatever_characters_it_holds(url, masked):
    assert mask_url_password(url) == masked


def test_the_settings_repr_shows_neither_the_admin_token_nor_the_database_password():
    """A repr lands in tracebacks and test reports (a service context printed its settings whole)."""
    settings = Settings.from_env(dict(GOOD, DATABASE_URL="mysql+pymysql://orders:s3cr3t-pw@db/orders"))
    assert "s3cr3t-pw" not in repr(settings) and GOOD["ADMIN_TOKEN"] not in repr(settings)
    assert "kafka_bootstrap_servers='127.0.0.1:9092'" in repr(settings)
