"""Trades written straight into the database, at chosen times: market-data tests need trades hours or days
old, and on exact interval edges, which no worker would produce on demand."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select

from orders_app.models import Trade
from orders_app.repositories import candles
from orders_app.services.candles import bucket_start

# Ids no order or user has: the shared database's reconciliation compares orders with their trades, and these
# trades belong to none.
NO_ORDER, NO_USER = 0, 0


def record_trades(ctx, market_id: int, trades: list[tuple[Decimal, Decimal, datetime]]) -> list[int]:
    """Insert (price, quantity, created_at) trades as one settled batch would (ids ascending in list order,
    one command each) and add them to the candles as the worker does; returns their ids."""
    with ctx.uow() as uow:
        session = uow.session
        first_seq = (session.execute(select(Trade.seq).where(Trade.market_id == market_id)
                                     .order_by(Trade.seq.desc()).limit(1)).scalar() or 0) + 1
        ids = []
        for offset, (price, quantity, created_at) in enumerate(trades):
            ids.append(session.execute(insert(Trade).values(
                market_id=market_id, price=price, quantity=quantity, buy_order_id=NO_ORDER, sell_order_id=NO_ORDER,
                buyer_user_id=NO_USER, seller_user_id=NO_USER - 1, taker_side="buy", seq=first_seq + offset,
                match_index=0, created_at=created_at)).inserted_primary_key[0])
        if trades:
            candles.record_trades(session, market_id, first_seq, first_seq + len(trades) - 1)
        uow.commit()
    return ids


def brute_force_candles(trades, interval_s: int) -> dict[datetime, tuple]:
    """{interval start: (open, high, low, close, volume, quote volume, count)} read off (id, price, quantity,
    created_at) trades directly: the reference the maintained candles must equal."""
    by_start: dict[datetime, list] = {}
    for trade_id, price, quantity, created_at in trades:
        by_start.setdefault(bucket_start(created_at, interval_s), []).append((trade_id, price, quantity))
    result = {}
    for start, rows in by_start.items():
        rows.sort()
        prices = [price for _, price, _ in rows]
        result[start] = (rows[0][1], max(prices), min(prices), rows[-1][1], sum(q for _, _, q in rows),
                         sum(p * q for _, p, q in rows), len(rows))
    return result


def api_candles(candles_json: list[dict]) -> dict[datetime, tuple]:
    """The candles of a `/api/candles` answer in `brute_force_candles`' shape."""
    return {datetime.strptime(c["open_time"], "%Y-%m-%dT%H:%M:%S.%fZ"):
            (*(Decimal(c[key]) for key in ("open", "high", "low", "close", "volume", "quote_volume")), c["trades"])
            for c in candles_json}
