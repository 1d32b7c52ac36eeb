"""A reference exchange written from the API contract (docs/api.md) alone, to check the real system against
(the model-based test and the service state machine).

Deliberately naive and independent of `orders_app`: plain `Decimal`, one list of resting orders per
market (sorted on every use), every rule spelled out as the contract states it. `accept` holds an order's
funds and matches it at once, as the real system does once its worker has applied the command (the tests
wait for that); `hold` then `apply` split the two, for orders accepted while no worker runs.

- Holds at acceptance: a limit buy holds price x quantity quote, a sell holds quantity base, a market buy
  by quote_quantity holds that, a market buy by quantity holds what the quantity costs at the resting asks
  plus the collar, rounded up to the quote scale. Not enough available: INSUFFICIENT_FUNDS.
- Matching: price-time priority, at the resting order's price; self-trade prevention cancels the
  incoming order's rest; IOC / market cancel their rest; FOK fills fully from liquidity ahead of the
  user's own first resting order or is rejected; post-only is rejected if it would cross.
- Settling: the buyer pays price x quantity from the hold (a limit buy's price improvement is released at
  once), the seller receives it; a final order's remaining hold is released.
- Markets are pairs: each market (named here by its base, as the tests do) has a quote asset (default USD),
  fee rates and a status. A halted market refuses orders (409 MARKET_HALTED); cancels still work. On each
  trade the taker pays the taker rate and the maker the maker rate on what it receives (the buyer base, the
  seller quote), rounded up to that asset's scale and never more than it received; the fee account gets it.
"""
from __future__ import annotations

import decimal
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

QUOTE = "USD"
QUANTITY_STEP = Decimal("0.00000001")
QUOTE_STEP = Decimal("0.00000000000001")  # the quote asset's 14 decimals
BASE_STEP = Decimal("0.00000001")  # a base asset's 8 decimals
FINAL_STATUSES = ("completed", "cancelled", "rejected")
ZERO = Decimal(0)
EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation])


class Refused(Exception):
    def __init__(self, status: int, code: str):
        super().__init__(f"{status} {code}")
        self.status, self.code = status, code


@dataclass
class RefMarket:
    quote: str = QUOTE
    base_step: Decimal = BASE_STEP  # the smallest unit of each asset: fees round up to it
    quote_step: Decimal = QUOTE_STEP
    maker_rate: Decimal = ZERO
    taker_rate: Decimal = ZERO
    halted: bool = False


def fee_on(amount: Decimal, rate: Decimal, step: Decimal) -> Decimal:
    """amount x rate, rounded up to `step`, at most `amount`."""
    return min(amount, EXACT.multiply(amount, rate).quantize(step, rounding=decimal.ROUND_CEILING,
                                                             context=decimal.Context(prec=60)))


@dataclass(eq=False)
class RefOrder:
    id: int
    user: int
    symbol: str
    side: str  # buy | sell
    type: str  # limit | market
    tif: str  # GTC | IOC | FOK (market orders: IOC)
    post_only: bool
    price: Decimal | None
    quantity: Decimal | None  # None: a market buy by quote_quantity
    quote_quantity: Decimal | None
    hold: Decimal  # what is still held for it
    filled: Decimal = ZERO
    status: str = "pending"
    quote: str = QUOTE
    fee: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def hold_asset(self) -> str:
        return self.quote if self.side == "buy" else self.symbol


class ReferenceExchange:
    def __init__(self, collar_percent: int):
        self.collar_percent = collar_percent
        self.balances: dict[tuple[int, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])  # available, locked
        self.orders: dict[int, RefOrder] = {}
        self.resting: dict[str, list[RefOrder]] = defaultdict(list)
        self.trades: list[tuple] = []  # (symbol, price, quantity, buy order id, sell order id, taker side)
        self.markets: dict[str, RefMarket] = defaultdict(RefMarket)
        self.fees: dict[str, Decimal] = defaultdict(lambda: ZERO)  # what the fee account received, per asset

    def quote_of(self, symbol: str) -> str:
        return self.markets[symbol].quote

    # --- market administration ----------------------------------------------------------------------------

    def set_fee_rates(self, symbol: str, maker_rate: Decimal, taker_rate: Decimal) -> None:
        market = self.markets[symbol]
        market.maker_rate, market.taker_rate = maker_rate, taker_rate

    def set_halted(self, symbol: str, halted: bool) -> None:
        self.markets[symbol].halted = halted

    # --- funding ------------------------------------------------------------------------------------------

    def available(self, user: int, asset: str) -> Decimal:
        return self.balances[(user, asset)][0]

    def deposit(self, user: int, asset: str, amount: Decimal) -> None:
        self._move(user, asset, amount, ZERO)

    def withdraw(self, user: int, asset: str, amount: Decimal) -> None:
        if self.available(user, asset) < amount:
            raise Refused(400, "INSUFFICIENT_FUNDS")
        self._move(user, asset, -amount, ZERO)

    def _move(self, user: int, asset: str, d_available: Decimal, d_locked: Decimal) -> None:
        balance = self.balances[(user, asset)]
        balance[0], balance[1] = EXACT.add(balance[0], d_available), EXACT.add(balance[1], d_locked)
        assert balance[0] >= 0 and balance[1] >= 0, f"the model went negative: {user} {asset} {balance}"

    # --- placing ------------------------------------------------------------------------------------------

    def book(self, symbol: str, side: str) -> list[RefOrder]:
        """Resting orders of one side, in matching order: best price first, then arrival."""
        orders = [o for o in self.resting[symbol] if o.side == side]
        return sorted(orders, key=lambda o: (o.price if side == "sell" else -o.price, o.id))

    def hold_for(self, user: int, symbol: str, side: str, type_: str, price: Decimal | None,
                 quantity: Decimal | None, quote_quantity: Decimal | None) -> Decimal:
        """What an order holds at acceptance; Refused if its market is halted or the user has not that much
        available."""
        market = self.markets[symbol]
        if market.halted:
            raise Refused(409, "MARKET_HALTED")
        if side == "sell":
            hold = quantity
        elif type_ == "limit":
            hold = EXACT.multiply(price, quantity)
        elif quote_quantity is not None:
            hold = quote_quantity
        else:
            cost, wanted = ZERO, quantity
            for ask in self.book(symbol, "sell"):
                take = min(wanted, ask.remaining)
                cost, wanted = EXACT.add(cost, EXACT.multiply(ask.price, take)), wanted - take
                if wanted == 0:
                    break
            collared = EXACT.divide(EXACT.multiply(cost, 100 + self.collar_percent), 100)
            hold = collared.quantize(market.quote_step, rounding=decimal.ROUND_CEILING)
        if self.available(user, market.quote if side == "buy" else symbol) < hold:
            raise Refused(400, "INSUFFICIENT_FUNDS")
        return hold

    def accept(self, order: RefOrder) -> None:
        """An order answered 201: hold its funds, then match it as the worker will."""
        self.hold(order)
        self.apply(order)

    def hold(self, order: RefOrder) -> None:
        """What the API does on 201: the order exists, pending, with its funds held."""
        assert order.id not in self.orders
        self.orders[order.id] = order
        self._move(order.user, order.hold_asset, -order.hold, order.hold)

    def apply(self, order: RefOrder) -> None:
        """What the worker does with a held order, in its market's sequence."""
        self._match(order)

    def _crosses(self, taker: RefOrder, maker: RefOrder) -> bool:
        if taker.price is None:
            return True
        return maker.price <= taker.price if taker.side == "buy" else maker.price >= taker.price

    def _match(self, taker: RefOrder) -> None:
        opposite = [o for o in self.book(taker.symbol, "sell" if taker.side == "buy" else "buy")
                    if self._crosses(taker, o)]
        if taker.post_only and opposite:
            return self._finish(taker, "rejected")
        if taker.tif == "FOK":
            ahead = ZERO
            for maker in opposite:
                if maker.user == taker.user:
                    break
                ahead += maker.remaining
            if ahead < taker.quantity:
                return self._finish(taker, "rejected")
        budget = taker.hold if taker.type == "market" and taker.side == "buy" else None
        stopped = None  # why it stopped before the book ran out: "budget" | "self_trade" | "filled"
        position = 0
        while position < len(opposite):  # a maker partly taken stays first: the next check may stop there
            maker = opposite[position]
            if maker.remaining == 0:
                position += 1
                continue
            if taker.quantity is not None and taker.remaining == 0:
                stopped = "filled"
                break
            take = maker.remaining if taker.quantity is None else min(maker.remaining, taker.remaining)
            if budget is not None:
                affordable = EXACT.divide_int(budget, EXACT.multiply(maker.price, QUANTITY_STEP)) * QUANTITY_STEP
                if affordable == 0:
                    stopped = "budget"
                    break
                take = min(take, affordable)
            if maker.user == taker.user:
                stopped = "self_trade"
                break
            self._trade(taker, maker, maker.price, take)
            if budget is not None:
                budget = EXACT.subtract(budget, EXACT.multiply(maker.price, take))
        if taker.quantity is not None and taker.remaining == 0:
            return self._finish(taker, "completed")
        if taker.quantity is None:  # a market buy by quote_quantity got all it asked for, or not
            spent_it_all = stopped == "budget" or (stopped is None and budget == 0)
            return self._finish(taker, "completed" if spent_it_all else "cancelled")
        if stopped == "self_trade" or taker.type == "market" or taker.tif != "GTC":
            return self._finish(taker, "cancelled")
        taker.status = "partially_filled" if taker.filled else "pending"
        self.resting[taker.symbol].append(taker)

    def _trade(self, taker: RefOrder, maker: RefOrder, price: Decimal, quantity: Decimal) -> None:
        buy, sell = (taker, maker) if taker.side == "buy" else (maker, taker)
        market = self.markets[taker.symbol]
        paid = EXACT.multiply(price, quantity)
        held = EXACT.multiply(buy.price, quantity) if buy.type == "limit" else paid  # price improvement released
        self._move(buy.user, market.quote, held - paid, -held)
        buy.hold -= held
        self._move(buy.user, buy.symbol, quantity, ZERO)
        self._move(sell.user, sell.symbol, ZERO, -quantity)
        sell.hold -= quantity
        self._move(sell.user, market.quote, paid, ZERO)
        buyer_rate, seller_rate = ((market.taker_rate, market.maker_rate) if taker.side == "buy"
                                   else (market.maker_rate, market.taker_rate))
        for order, asset, received, rate, step in ((buy, buy.symbol, quantity, buyer_rate, market.base_step),
                                                   (sell, market.quote, paid, seller_rate, market.quote_step)):
            fee = fee_on(received, rate, step)
            if fee:
                self._move(order.user, asset, -fee, ZERO)
                self.fees[asset] = EXACT.add(self.fees[asset], fee)
                order.fee = EXACT.add(order.fee, fee)
        for order in (buy, sell):
            order.filled += quantity
        self.trades.append((taker.symbol, price, quantity, buy.id, sell.id, taker.side))
        if maker.remaining == 0:
            self._finish(maker, "completed")
        else:
            maker.status = "partially_filled"

    def _finish(self, order: RefOrder, status: str) -> None:
        """Final: release what is still held, leave the book."""
        self._move(order.user, order.hold_asset, order.hold, -order.hold)
        order.hold, order.status = ZERO, status
        if order in self.resting[order.symbol]:
            self.resting[order.symbol].remove(order)

    # --- cancelling ---------------------------------------------------------------------------------------

    def cancel(self, order_id: int) -> None:
        order = self.orders[order_id]
        if order.status in FINAL_STATUSES:
            raise Refused(409, "ORDER_NOT_CANCELLABLE")
        self._finish(order, "cancelled")
