"""The pure accounting of a settled batch: trades in, ledger postings and balance deltas out.

No database and no clock: `settling.py` reads the locked accounts, hands them here, and writes what comes
back. Every balance change is a `Posting` (one ledger row); within a batch money only moves between users
and between available and locked, so each asset's postings sum to zero (`check_conserved`), and no
account may end negative (`new_balances`).
"""
from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from orders_app import money
from orders_app.errors import invariant, present
from orders_app.repositories.accounts import BalanceChange

ZERO = Decimal(0)
AccountKey = tuple[int, str]  # (user_id, asset)


class Trade(NamedTuple):
    """A trade as the batch records it (the column order of `settlement.insert_trades`)."""
    price: Decimal
    quantity: Decimal
    buy_order_id: int
    sell_order_id: int
    buyer_user_id: int
    seller_user_id: int
    taker_side: str
    seq: int  # the market command that made it
    match_index: int  # its position among that command's trades
    buyer_fee: Decimal = ZERO  # in the base asset, which the buyer receives
    seller_fee: Decimal = ZERO  # in the quote asset, which the seller receives

    @property
    def cost(self) -> Decimal:
        return money.multiply(self.price, self.quantity)


class Posting(NamedTuple):
    """One ledger row: a change of one account's available and locked (the column order of
    `accounts.journal_many`)."""
    user_id: int
    asset: str
    d_available: Decimal
    d_locked: Decimal
    reason: str
    order_id: int | None
    trade_id: int | None = None


def fee_for(amount: Decimal, rate: Decimal, scale: int) -> Decimal:
    """The fee on receiving `amount` of an asset with `scale` decimals: amount x rate rounded up to the
    scale (the exchange never undercharges by a rounding), never more than the amount itself."""
    if not rate or not amount:
        return ZERO
    with decimal.localcontext(money.MONEY_CONTEXT) as context:
        context.traps[decimal.Inexact] = False
        fee = (amount * rate).quantize(money.scale_step(scale), rounding=decimal.ROUND_CEILING)
    return money.normalize(min(fee, amount))


@dataclass(frozen=True)
class FeeTerms:
    """What a market charges, as the settling transaction read it: rates and the scales fees round to."""
    maker_rate: Decimal = ZERO
    taker_rate: Decimal = ZERO
    base_scale: int = 0
    quote_scale: int = 0
    fee_user_id: int | None = None

    def for_trade(self, quantity: Decimal, cost: Decimal, taker_side: str) -> tuple[Decimal, Decimal]:
        """(buyer's fee in base, seller's fee in quote): the taker pays the taker rate, the maker the maker's."""
        buyer_rate, seller_rate = ((self.taker_rate, self.maker_rate) if taker_side == "buy"
                                   else (self.maker_rate, self.taker_rate))
        return fee_for(quantity, buyer_rate, self.base_scale), fee_for(cost, seller_rate, self.quote_scale)


NO_FEES = FeeTerms()


def trade_postings(trade: Trade, base: str, quote: str, improvement: Decimal, trade_id: int | None = None,
                   fee_user_id: int | None = None) -> list[Posting]:
    """The four moves of a trade — the buyer's held quote pays the seller, the seller's held base goes to
    the buyer — and, when a buy fills below its limit, the release of the difference it held; then each
    side's fee, from what it received to the fee account."""
    cost, quantity = trade.cost, trade.quantity
    postings = [Posting(trade.buyer_user_id, quote, ZERO, -cost, "trade_buy", trade.buy_order_id, trade_id),
                Posting(trade.buyer_user_id, base, quantity, ZERO, "trade_buy", trade.buy_order_id, trade_id),
                Posting(trade.seller_user_id, base, ZERO, -quantity, "trade_sell", trade.sell_order_id, trade_id),
                Posting(trade.seller_user_id, quote, cost, ZERO, "trade_sell", trade.sell_order_id, trade_id)]
    if improvement:
        postings.append(Posting(trade.buyer_user_id, quote, improvement, -improvement, "price_improvement",
                                trade.buy_order_id, trade_id))
    for payer, asset, fee, order_id in ((trade.buyer_user_id, base, trade.buyer_fee, trade.buy_order_id),
                                        (trade.seller_user_id, quote, trade.seller_fee, trade.sell_order_id)):
        if fee:
            fee_account = present(fee_user_id, "a fee without a fee account")
            postings += [Posting(payer, asset, -fee, ZERO, "fee", order_id, trade_id),
                         Posting(fee_account, asset, fee, ZERO, "fee", order_id, trade_id)]
    return postings


class BatchLedger:
    """The postings of one batch and, per account, their sum."""

    def __init__(self) -> None:
        self.postings: list[Posting] = []
        self.deltas: dict[AccountKey, tuple[Decimal, Decimal]] = {}

    def post(self, postings: list[Posting]) -> None:
        for posting in postings:
            key = (posting.user_id, posting.asset)
            d_available, d_locked = self.deltas.get(key, (ZERO, ZERO))
            self.deltas[key] = (money.add(d_available, posting.d_available), money.add(d_locked, posting.d_locked))
            self.postings.append(posting)

    def per_asset(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for (_, asset), (d_available, d_locked) in self.deltas.items():
            totals[asset] = money.add(totals.get(asset, ZERO), money.add(d_available, d_locked))
        return totals

    def check_conserved(self) -> None:
        """Within a batch, money only moves between users and between available and locked."""
        totals = self.per_asset()
        invariant(all(total == 0 for total in totals.values()), f"batch does not conserve assets: {totals}")

    def touched(self) -> list[AccountKey]:
        """The accounts whose balance the batch changes (a zero net change needs no write)."""
        return [key for key, (d_available, d_locked) in self.deltas.items() if d_available or d_locked]


def new_balances(current: dict[AccountKey, tuple[Decimal, Decimal]],
                 deltas: dict[AccountKey, tuple[Decimal, Decimal]]) -> dict[AccountKey, BalanceChange]:
    """Each touched account's balance after the batch, from its locked (available, locked); an account
    absent from `current` (a first credit) starts from zero. None may go negative."""
    balances = {}
    for key, (d_available, d_locked) in deltas.items():
        if not d_available and not d_locked:
            continue
        available, locked = current.get(key, (ZERO, ZERO))
        available, locked = money.add(available, d_available), money.add(locked, d_locked)
        invariant(available >= 0 and locked >= 0, f"account {key} would go negative: {available}, {locked}")
        balances[key] = BalanceChange(available, locked, d_available, d_locked)
    return balances
