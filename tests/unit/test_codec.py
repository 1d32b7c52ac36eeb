"""Records on `order-events` are untrusted bytes: every one either decodes to a well-typed event or raises
MalformedMessage with a reason, whatever it holds."""
from __future__ import annotations

import json

import pytest

from orders_app.messages import MarketEvent
from orders_app.messaging.codec import (
    MalformedMessage,
    decode_market_event,
    encode_market_event,
)

GOOD = {"type": "order_placed", "version": 1, "currency_symbol": "BTC", "market_id": 1, "seq": 7, "order_id": 42,
        "request_id": "req-1", "order": {"id": 42}}


def _raw(**changes) -> bytes:
    return json.dumps(GOOD | changes).encode()


def test_an_encoded_event_decodes_to_itself():
    event = MarketEvent("cancel_requested", "BTC", 1, 9, 42, {"id": 42}, "req-2")
    assert decode_market_event(encode_market_event(event)) == event


@pytest.mark.parametrize("raw, reason", [
    (b"[" * 100_000, "undecodable"),
    (b'{"seq": 1e9999999999999999999}', "undecodable"),
    (b"1" * 5000, "undecodable"),
    (b"\xff\xfe garbage", "undecodable"),
    (b"", "undecodable"),
    (b"[1, 2]", "invalid_field"),
    (b"null", "invalid_field"),
    (b'"text"', "invalid_field"),
    (_raw(version=2), "unsupported_version"),
    (_raw(version=True), "unsupported_version"),
    (_raw(version="1"), "unsupported_version"),
])
def test_unreadable_bytes_raise_malformed_message_with_a_reason(raw, reason):
    with pytest.raises(MalformedMessage) as caught:
        decode_market_event(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize("field, value", [
    ("seq", True), ("seq", 1.5), ("seq", "7"), ("seq", 0), ("seq", -3), ("seq", 10 ** 30),
    ("market_id", False), ("market_id", None), ("order_id", "42"), ("order_id", [42]),
    ("order", "not an object"), ("order", [1]), ("type", "order_deleted"), ("type", 5),
    ("currency_symbol", 12), ("currency_symbol", {}), ("request_id", 17), ("request_id", ["x"]),
])
def test_a_field_of_the_wrong_type_or_range_is_an_invalid_field(field, value):
    with pytest.raises(MalformedMessage) as caught:
        decode_market_event(_raw(**{field: value}))
    assert caught.value.reason == "invalid_field"
    assert field in str(caught.value)


@pytest.mark.parametrize("field", ["type", "version", "currency_symbol", "market_id", "seq", "order_id", "order"])
def test_a_missing_field_is_an_invalid_field(field):
    data = dict(GOOD)
    del data[field]
    with pytest.raises(MalformedMessage) as caught:
        decode_market_event(json.dumps(data).encode())
    assert caught.value.reason in ("invalid_field", "unsupported_version")


def test_a_record_without_request_id_decodes_with_none():
    data = dict(GOOD)
    del data["request_id"]
    assert decode_market_event(json.dumps(data).encode()).request_id is None
