"""What goes into the engine (``Incoming``) and the facts that come out (``Fill``, ``Rested``, ``Done``).

Units are integers only: prices in *ticks* (price / price_step), quantities in *lots* (qty / qty_step),
quote amounts in ticks * lots (units of price_step * qty_step). The worker converts Decimal <-> int.

Every ``submit`` returns zero or more ``Fill`` then exactly one terminal fact for the taker: ``Rested``
(it now rests on the book) or ``Done`` (it is final). A maker is completed when its Fill has
``maker_remaining_lots == 0``. ``cancel`` returns ``Done(status="cancelled", reason="cancel_requested")``.
Facts are tuples so the hot path can build them with ``tuple.__new__`` (no Python-level ``__new__``).
"""
from typing import NamedTuple

BUY = "buy"
SELL = "sell"

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"

COMPLETED = "completed"
CANCELLED = "cancelled"
REJECTED = "rejected"

# Why an order became final (Done.reason). A completed order always has reason FILLED.
FILLED = "filled"
REASON_IOC = "ioc"
REASON_FOK = "fok"
POST_ONLY = "post_only"
SELF_TRADE = "self_trade"
MARKET_NO_LIQUIDITY = "market_no_liquidity"
MARKET_BUDGET = "market_budget"
CANCEL_REQUESTED = "cancel_requested"


class Incoming(NamedTuple):
    """An order arriving at the book. ``price_ticks`` None means a market order: always IOC (its
    ``tif`` is ignored), and rejected if ``post_only``.

    A market buy carries ``qty_lots`` and/or ``quote_budget`` (ticks * lots); every other order
    carries ``qty_lots`` only. A post-only limit order that does not cross follows its ``tif``:
    GTC rests, IOC is cancelled, FOK is rejected.
    """

    order_id: int
    user_id: int
    side: str
    price_ticks: int | None
    qty_lots: int | None
    tif: str = GTC
    post_only: bool = False
    quote_budget: int | None = None

    @classmethod
    def limit(cls, order_id: int, user_id: int, side: str, price_ticks: int, qty_lots: int,
              tif: str = GTC, post_only: bool = False) -> "Incoming":
        return cls(order_id, user_id, side, price_ticks, qty_lots, tif, post_only, None)

    @classmethod
    def market(cls, order_id: int, user_id: int, side: str, qty_lots: int | None = None,
               quote_budget: int | None = None) -> "Incoming":
        return cls(order_id, user_id, side, None, qty_lots, IOC, False, quote_budget)


class Fill(NamedTuple):
    """One trade, always at the maker's price. ``taker_limit_ticks`` is None for a market taker;
    for a limit buy, settlement releases (taker_limit_ticks - price_ticks) * qty_lots of quote."""

    taker_order_id: int
    maker_order_id: int
    taker_user_id: int
    maker_user_id: int
    taker_side: str
    price_ticks: int
    qty_lots: int
    maker_remaining_lots: int
    taker_limit_ticks: int | None


class Rested(NamedTuple):
    """The taker now rests on the book with ``remaining_lots`` (pending if it had no fills,
    else partially_filled)."""

    order_id: int
    remaining_lots: int


class Done(NamedTuple):
    """The order is final. ``remaining_lots`` is the unfilled quantity (0 for a market buy by
    quote budget only). ``unspent_budget`` is the quote (ticks * lots) a market buy with a budget
    did not spend; 0 for every other order."""

    order_id: int
    status: str
    remaining_lots: int
    reason: str
    unspent_budget: int = 0
