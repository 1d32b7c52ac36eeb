"""Matching rules: price-time priority, maker price, IOC/FOK/post-only, self-trade prevention, market orders.

``OrderBook.submit(order)`` returns facts: ``Fill``s in matching order, then one terminal fact for the
taker (``Rested`` or ``Done``). Pure and deterministic: no clock, no randomness, no I/O.

Matching order = best price first, then arrival (FIFO) within a price. While the taker crosses, it
trades with the next resting order at that order's price. It stops, in this order of checks, when it
is filled, when its budget (market buy with ``quote_budget``) cannot buy one lot at the next price,
when no crossing liquidity is left, or when the next resting order belongs to the same user
(self-trade prevention: the taker's rest is cancelled, the resting order stays).
"""
from collections import deque
from heapq import heappop, heappush
from typing import NoReturn

from .book import BookState
from .facts import (
    BUY,
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

_new = tuple.__new__


class OrderBook(BookState):
    """The book of one market. See the module docstring for the rules."""

    __slots__ = ()

    def submit(self, order: Incoming) -> list:
        order_id, user_id, side, price, lots, tif, post_only, budget = order
        orders = self._orders
        if price is not None:
            # One combined test keeps validation off the profile; _refuse names the broken rule.
            if (order_id in orders or order_id in self._stale or price <= 0 or not lots or lots < 0
                    or budget is not None):
                self._refuse(order)
            try:
                opposite, own, sign = self._sides[side]
            except KeyError:
                self._refuse(order)
            limit_key = price * sign
            if not opposite or opposite[0] > limit_key:
                # Nothing to take: the common case of a passive limit order, resting inlined for speed.
                if tif == GTC:
                    key = -limit_key
                    levels = self._levels
                    queue = levels.get(key)
                    if queue is None:
                        levels[key] = deque((order_id,))
                        self._totals[key] = lots
                        heappush(own, key)
                        if len(own) > self._heap_keys_max:
                            self._rebuild_heap(own)
                    else:
                        queue.append(order_id)
                        self._totals[key] += lots
                    orders[order_id] = (lots, user_id, key)
                    return [_new(Rested, (order_id, lots))]
                if tif == IOC:
                    return [_new(Done, (order_id, CANCELLED, lots, REASON_IOC, 0))]
                if tif == FOK:
                    return [_new(Done, (order_id, REJECTED, lots, REASON_FOK, 0))]
                self._refuse(order)
            if tif != GTC and tif != IOC and tif != FOK:
                self._refuse(order)
            if post_only:
                return [_new(Done, (order_id, REJECTED, lots, POST_ONLY, 0))]
            if tif == FOK and self._fillable_lots(opposite, limit_key, user_id, lots) < lots:
                return [_new(Done, (order_id, REJECTED, lots, REASON_FOK, 0))]
        else:
            self._check_market(order)
            if post_only:
                return [_new(Done, (order_id, REJECTED, lots or 0, POST_ONLY, 0))]
            if budget is not None:
                return self._buy_with_budget(order_id, user_id, lots, budget)
            if lots is None:  # _check_market let it through: impossible without a budget
                raise InvariantViolation(f"a market order needs qty_lots or quote_budget: {order!r}")
            opposite, own, sign = self._sides[side]
            limit_key = max(opposite, default=0)  # crosses every level (stale heap keys are larger still)

        # Take from the opposite side, best level first, FIFO within a level (see module docstring).
        levels, totals = self._levels, self._totals
        facts: list = []
        append = facts.append
        self_trade = False
        while opposite:
            key = opposite[0]
            if key > limit_key:
                break
            level_price = key * sign
            queue = levels[key]
            total = totals[key]
            while queue:
                maker_id = queue[0]
                maker = orders.get(maker_id)
                if maker is None:
                    self._stale.remove(queue.popleft())
                    continue
                maker_lots, maker_user, _ = maker
                if maker_user == user_id:
                    self_trade = True
                    break
                if maker_lots <= lots:
                    queue.popleft()
                    del orders[maker_id]
                    lots -= maker_lots
                    total -= maker_lots
                    append(_new(Fill, (order_id, maker_id, user_id, maker_user, side, level_price, maker_lots, 0,
                                       price)))
                    if not lots:
                        break
                else:
                    maker_lots -= lots
                    orders[maker_id] = (maker_lots, maker_user, key)
                    total -= lots
                    append(_new(Fill, (order_id, maker_id, user_id, maker_user, side, level_price, lots, maker_lots,
                                       price)))
                    lots = 0
                    break
            if total:
                totals[key] = total
            else:
                # The level is empty: forget it (ids left in it are stale) and keep the heap top live.
                del levels[key], totals[key]
                if queue:
                    self._stale.difference_update(queue)
                heappop(opposite)
                while opposite and opposite[0] not in levels:
                    heappop(opposite)
            if self_trade or not lots:
                break

        if not lots:
            append(_new(Done, (order_id, COMPLETED, 0, FILLED, 0)))
        elif self_trade:
            append(_new(Done, (order_id, CANCELLED, lots, SELF_TRADE, 0)))
        elif price is None:
            append(_new(Done, (order_id, CANCELLED, lots, MARKET_NO_LIQUIDITY, 0)))
        elif tif == GTC:
            self._rest(order_id, user_id, -limit_key, lots)
            append(_new(Rested, (order_id, lots)))
        else:
            invariant(tif == IOC, "a FOK order that passed its check must fill in full")
            append(_new(Done, (order_id, CANCELLED, lots, REASON_IOC, 0)))
        return facts

    def check(self, order: Incoming) -> None:
        """Raise InvariantViolation if ``submit`` would refuse ``order``, without touching the book: the
        caller can then turn that one order away and go on with the others."""
        order_id, _, side, price, lots, tif, _, budget = order
        if price is None:
            self._check_market(order)
            return
        if (order_id in self._orders or order_id in self._stale or price <= 0 or not lots or lots < 0
                or budget is not None or side not in self._sides or tif not in (GTC, IOC, FOK)):
            self._refuse(order)

    def _refuse(self, order: Incoming) -> NoReturn:
        """Raise InvariantViolation naming what is wrong with a malformed limit order."""
        order_id, _, side, price, lots, tif, _, budget = order
        self._check_new_id(order_id)
        invariant(price is not None and price > 0, f"price_ticks must be positive: {price}")
        invariant(lots is not None and lots > 0, f"qty_lots must be positive: {lots}")
        invariant(budget is None, "only a market buy carries a quote budget")
        invariant(side in (BUY, SELL), f"unknown side {side!r}")
        invariant(tif in (GTC, IOC, FOK), f"unknown time in force {tif!r}")
        raise InvariantViolation(f"malformed order {order!r}")

    def _check_market(self, order: Incoming) -> None:
        order_id, _, side, _, lots, _, _, budget = order
        self._check_new_id(order_id)
        invariant(side in (BUY, SELL), f"unknown side {side!r}")
        invariant(lots is None or lots > 0, f"qty_lots must be positive: {lots}")
        # A market buy by quantity carries the hold the API priced from the asks it saw: 0 when there were
        # none. It must be cancelled then, not refused: a refused command would stall its market for good.
        invariant(budget is None or budget > 0 or (budget == 0 and lots is not None),
                  f"quote_budget must be positive: {budget}")
        if side == SELL:
            invariant(lots is not None and budget is None, "a market sell needs qty_lots and no budget")
        else:
            invariant(lots is not None or budget is not None, "a market buy needs qty_lots or quote_budget")

    def _fillable_lots(self, heap: list[int], limit_key: int, user_id: int, lots: int) -> int:
        """Crossing lots ahead of the user's first own resting order, counted up to ``lots`` (FOK)."""
        levels, orders = self._levels, self._orders
        side_is_bids = heap is self._bid_heap
        found = 0
        for key in sorted(k for k in levels if (k < 0) == side_is_bids and k <= limit_key):
            for maker_id in levels[key]:
                maker = orders.get(maker_id)
                if maker is None:
                    continue
                if maker[1] == user_id:
                    return found
                found += maker[0]
                if found >= lots:
                    return found
        return found

    def _buy_with_budget(self, order_id: int, user_id: int, lots: int | None, budget: int) -> list:
        """Buy level by level the most lots ``budget`` (ticks * lots) pays for, up to ``lots`` if given.

        By budget only: completed once the rest cannot buy one lot at the next price (the dust is
        ``unspent_budget``), cancelled if the book runs out first. With ``lots`` too: completed when
        filled, cancelled when the budget or the book runs out first."""
        levels, totals, heap = self._levels, self._totals, self._ask_heap
        orders = self._orders
        facts: list = []
        append = facts.append
        remaining = lots
        reason = None
        while reason is None:
            if not heap:
                if budget:
                    reason = MARKET_NO_LIQUIDITY
                else:
                    reason = FILLED if remaining is None else MARKET_BUDGET
                break
            price = heap[0]
            queue = levels[price]
            total = totals[price]
            while queue:
                if remaining == 0:
                    reason = FILLED
                    break
                if budget < price:
                    reason = FILLED if remaining is None else MARKET_BUDGET
                    break
                maker_id = queue[0]
                maker = orders.get(maker_id)
                if maker is None:
                    self._stale.remove(queue.popleft())
                    continue
                maker_lots, maker_user, _ = maker
                if maker_user == user_id:
                    reason = SELF_TRADE
                    break
                take = min(maker_lots, budget // price)
                if remaining is not None:
                    take = min(take, remaining)
                    remaining -= take
                invariant(take > 0, "a market buy step must take at least one lot")  # else it never ends
                budget -= take * price
                total -= take
                maker_lots -= take
                if maker_lots:
                    orders[maker_id] = (maker_lots, maker_user, price)
                else:
                    queue.popleft()
                    del orders[maker_id]
                append(_new(Fill, (order_id, maker_id, user_id, maker_user, BUY, price, take, maker_lots, None)))
            if total:
                totals[price] = total
            else:
                self._drop_level(price)
                if reason is None and remaining == 0:
                    reason = FILLED
        status = COMPLETED if reason == FILLED else CANCELLED
        facts.append(_new(Done, (order_id, status, remaining or 0, reason, budget)))
        return facts
