"""The only JSON <-> message translation for Kafka. Amounts travel as decimal strings, never floats."""
from __future__ import annotations

import json
from decimal import Decimal

from orders_app.messages import EVENT_SCHEMA_VERSION, MarketEvent


class MalformedMessage(ValueError):
    pass


def encode_market_event(event: MarketEvent) -> bytes:
    return json.dumps({
        "type": event.event_type, "version": event.version, "currency_symbol": event.symbol,
        "market_id": event.market_id, "seq": event.seq, "order_id": event.order_id,
        "request_id": event.request_id, "order": event.order,
    }, separators=(",", ":"), sort_keys=True).encode()


def decode_market_event(raw: bytes) -> MarketEvent:
    try:
        data = json.loads(raw, parse_float=Decimal)
        if data["version"] != EVENT_SCHEMA_VERSION:
            raise MalformedMessage(f"unsupported event version {data['version']!r}")
        return MarketEvent(event_type=str(data["type"]), symbol=str(data["currency_symbol"]),
                           market_id=int(data["market_id"]), seq=int(data["seq"]),
                           order_id=int(data["order_id"]), order=dict(data["order"]),
                           request_id=data.get("request_id"), version=int(data["version"]))
    except (ValueError, KeyError, TypeError) as error:
        raise MalformedMessage(str(error)) from error
