"""Sequenced market events written to the outbox in the caller's transaction."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from orders_app import money
from orders_app.messages import MarketEvent
from orders_app.messaging.codec import encode_market_event
from orders_app.repositories import outbox
from orders_app.repositories.markets import MarketSpec
from orders_app.services import ServiceContext


@dataclass(frozen=True)
class PendingPublish:
    """A committed outbox row, handed to the publisher after commit."""
    outbox_id: int
    topic: str
    key: str
    payload: bytes
    queued_at: float = field(default_factory=time.monotonic)


def record_market_event(session: Session, ctx: ServiceContext, event_type: str, market: MarketSpec, seq: int,
                        order_id: int, view: dict, request_id: str | None, now: datetime) -> PendingPublish:
    event = MarketEvent(event_type=event_type, symbol=market.symbol, market_id=market.id, seq=seq,
                        order_id=order_id, order=wire_amounts(view), request_id=request_id)
    payload = encode_market_event(event)
    topic = ctx.settings.order_events_topic
    outbox_id = outbox.add(session, topic=topic, key=market.symbol, event_type=event_type,
                           payload=payload.decode(), created_at=now, market_id=market.id, seq=seq,
                           order_id=order_id)
    return PendingPublish(outbox_id, topic, market.symbol, payload)


def wire_amounts(view: dict) -> dict:
    """Amounts as canonical decimal strings, as the API renders them."""
    return {k: money.format_amount(v) if isinstance(v, Decimal) else v for k, v in view.items()}
