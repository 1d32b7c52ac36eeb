"""The only JSON <-> message translation for Kafka. Amounts travel as decimal strings, never floats.

A record on a topic is untrusted bytes (anyone who can write to the broker can put anything there):
decoding either returns a well-typed event or raises `MalformedMessage` with a short `reason` (a metric
label), whatever the bytes hold. The worker then sets the record aside instead of dying on it.
"""
from __future__ import annotations

import json
from decimal import Decimal

from orders_app import money
from orders_app.messages import (
    EVENT_SCHEMA_VERSION,
    MARKET_COMMAND_TYPES,
    MarketEvent,
    TradeEvent,
)

UNDECODABLE = "undecodable"
INVALID_FIELD = "invalid_field"
UNSUPPORTED_VERSION = "unsupported_version"
ID_MAX = 2 ** 63 - 1  # BIGINT


class MalformedMessage(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def encode_market_event(event: MarketEvent) -> bytes:
    return json.dumps({
        "type": event.event_type, "version": event.version, "currency_symbol": event.symbol,
        "market": event.market, "market_id": event.market_id, "seq": event.seq, "order_id": event.order_id,
        "request_id": event.request_id, "order": event.order,
    }, separators=(",", ":"), sort_keys=True).encode()


def encode_trade_event(event: TradeEvent) -> bytes:
    return json.dumps({
        "type": "trade", "version": event.version, "id": event.id, "currency_symbol": event.symbol,
        "price": money.format_amount(event.price), "quantity": money.format_amount(event.quantity),
        "buy_order_id": event.buy_order_id, "sell_order_id": event.sell_order_id, "taker_side": event.taker_side,
        "seq": event.seq, "timestamp": event.timestamp, "market": event.market,
        "buyer_fee": money.format_amount(event.buyer_fee), "buyer_fee_asset": event.buyer_fee_asset,
        "seller_fee": money.format_amount(event.seller_fee), "seller_fee_asset": event.seller_fee_asset,
    }, separators=(",", ":"), sort_keys=True).encode()


def decode_market_event(raw: bytes) -> MarketEvent:
    try:
        data = json.loads(raw, parse_float=Decimal)
    except Exception as error:  # noqa: BLE001 - RecursionError, InvalidOperation, UnicodeError, ValueError...
        raise MalformedMessage(UNDECODABLE, f"not JSON: {type(error).__name__}: {str(error)[:200]}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(INVALID_FIELD, f"top level is {type(data).__name__}, not an object")
    version = data.get("version")
    if type(version) is not int or version != EVENT_SCHEMA_VERSION:  # noqa: E721 - True is not version 1
        raise MalformedMessage(UNSUPPORTED_VERSION, f"unsupported event version {str(version)[:40]!r}")
    event_type = _field(data, "type", str)
    if event_type not in MARKET_COMMAND_TYPES:
        raise MalformedMessage(INVALID_FIELD, f"type {event_type[:40]!r} is not a market command")
    request_id, market = data.get("request_id"), data.get("market")
    if request_id is not None and not isinstance(request_id, str):
        raise MalformedMessage(INVALID_FIELD, "request_id must be a string")
    if market is not None and not isinstance(market, str):
        raise MalformedMessage(INVALID_FIELD, "market must be a string")
    return MarketEvent(event_type=event_type, symbol=_field(data, "currency_symbol", str),
                       market_id=_positive_id(data, "market_id"), seq=_positive_id(data, "seq"),
                       order_id=_positive_id(data, "order_id"), order=_field(data, "order", dict),
                       request_id=request_id, version=version, market=market)


def _field(data: dict, name: str, kind: type):
    value = data.get(name)
    if not isinstance(value, kind):
        raise MalformedMessage(INVALID_FIELD, f"{name} must be a {kind.__name__}")
    return value


def _positive_id(data: dict, name: str) -> int:
    value = data.get(name)
    if type(value) is not int or not 0 < value <= ID_MAX:  # noqa: E721 - a bool is not an id
        raise MalformedMessage(INVALID_FIELD, f"{name} must be a positive integer")
    return value
