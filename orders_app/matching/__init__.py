"""The pure matching engine: one ``OrderBook`` per market, integer ticks and lots, facts out.

No I/O, no clock, no randomness (see tests/unit/test_matching_layout.py). The worker converts
Decimal amounts to ticks/lots, submits ``Incoming`` orders and settles the returned facts.
"""
from .facts import (
                    BUY,
                    CANCEL_REQUESTED,
                    CANCELLED,
                    COMPLETED,
                    FILLED,
                    FOK,
                    GTC,
                    IOC,
                    MARKET_BUDGET,
                    MARKET_NO_LIQUIDITY,
                    POST_ONLY,
                    REASON_FOK,
                    REASON_IOC,
                    REJECTED,
                    SELF_TRADE,
                    SELL,
                    Done,
                    Fill,
                    Incoming,
                    Rested,
)
from .invariants import InvariantViolation, invariant
from .matcher import OrderBook

__all__ = [
    "BUY", "SELL", "GTC", "IOC", "FOK", "COMPLETED", "CANCELLED", "REJECTED",
    "FILLED", "REASON_IOC", "REASON_FOK", "POST_ONLY", "SELF_TRADE", "MARKET_NO_LIQUIDITY", "MARKET_BUDGET",
    "CANCEL_REQUESTED",
    "Incoming", "Fill", "Rested", "Done", "OrderBook", "InvariantViolation", "invariant",
]
