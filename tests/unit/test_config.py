"""Settings are validated at start-up; a bad value stops the process with the key's name."""
from __future__ import annotations

import pytest

from orders_app.config import ConfigError, Settings

GOOD = {"DATABASE_URL": "mysql+pymysql://u@127.0.0.1:3306/orders", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "ADMIN_TOKEN": "a-long-enough-admin-token"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(GOOD) + ["PORT", "MERGE_SAME_PRICE_ORDERS", "OUTBOX_SWEEP_GRACE_MS", "LOG_LEVEL",
                             "KAFKA_REQUEST_TIMEOUT_MS", "OUTBOX_PUBLISHER", "PLACE_BATCH_ORDERS_MAX",
                             "KAFKA_SESSION_TIMEOUT_MS", "KAFKA_FETCH_MAX_WAIT_MS"]:
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
    ("KAFKA_FETCH_MAX_WAIT_MS", "-1"),
])
def test_invalid_setting_is_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        Settings.from_env(dict(GOOD, **{key: value}))


def test_a_sweep_grace_shorter_than_two_kafka_timeouts_is_refused_when_the_api_publishes():
    """The API's own send may take ~2 request timeouts; sweeping sooner would publish rows twice."""
    with pytest.raises(ConfigError, match="OUTBOX_SWEEP_GRACE_MS"):
        Settings.from_env(dict(GOOD, OUTBOX_PUBLISHER="api", OUTBOX_SWEEP_GRACE_MS="100"))
    assert Settings.from_env(dict(GOOD, OUTBOX_SWEEP_GRACE_MS="100")).outbox_sweep_grace_ms == 100
