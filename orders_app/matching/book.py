"""The resting orders of one market, kept for fast price-time access (no matching rules here).

Layout, chosen for CPython speed (measured with ``python -m orders_app.bench.engine``):
- a price level is identified by a signed *key*: ``-price_ticks`` for bids, ``+price_ticks`` for asks,
  so on both sides a smaller key is a better price and "crosses a limit" is ``key <= limit_key``;
- ``_levels[key]`` is a FIFO deque of order ids, ``_totals[key]`` the level's resting lots;
- per order, ``_orders[order_id] = (lots, user_id, key)``: one dict (fewer cache misses on big
  books) of int-only tuples, which the garbage collector stops tracking at its first pass; a
  mutable per-order object stays tracked and is traversed again and again (it halved throughput);
- one binary heap of keys per side with lazy deletion: a heap may hold keys of removed levels, but
  its top is always a live level (best price in O(1)); it is rebuilt when stale keys dominate;
- a cancel forgets the order at once but leaves its id in the deque (``_stale``); the deque drops it
  when it reaches the front, or all of them are compacted once they outnumber the live orders.
  An id is refused while it is still stale, so a stale id never stands for a newer order.

Invariants (``check_invariants``): not crossed, every level non-empty with a correct total, the
order index is exactly the live ids of the levels, lots positive, heap tops live.
"""
from collections import deque
from heapq import heapify, heappop, heappush, nsmallest

from .facts import BUY, CANCEL_REQUESTED, CANCELLED, SELL, Done
from .invariants import invariant

_new = tuple.__new__

# A heap is rebuilt (dropping stale keys) when it outgrows twice the levels at the last rebuild, plus this.
HEAP_STALE_KEYS_SLACK = 64
# Stale (cancelled) ids tolerated in the deques before compaction, beyond the live orders.
STALE_IDS_SLACK = 1024


class BookState:
    """Storage and queries of one market's book; ``OrderBook`` (matcher.py) adds matching."""

    __slots__ = ("_levels", "_totals", "_orders", "_bid_heap", "_ask_heap", "_sides", "_heap_keys_max",
                 "_stale")

    def __init__(self) -> None:
        self._levels: dict[int, deque] = {}
        self._totals: dict[int, int] = {}
        self._orders: dict[int, tuple[int, int, int]] = {}
        self._bid_heap: list[int] = []
        self._ask_heap: list[int] = []
        # side of the taker -> (opposite heap, own heap, sign): key = price * sign on the opposite side.
        self._sides = {BUY: (self._ask_heap, self._bid_heap, 1), SELL: (self._bid_heap, self._ask_heap, -1)}
        self._heap_keys_max = HEAP_STALE_KEYS_SLACK
        self._stale: set[int] = set()

    # -- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: int) -> int | None:
        """Remaining lots of a resting order, None if it is not resting."""
        record = self._orders.get(order_id)
        return None if record is None else record[0]

    def best_bid(self) -> int | None:
        heap = self._bid_heap
        return -heap[0] if heap else None

    def best_ask(self) -> int | None:
        heap = self._ask_heap
        return heap[0] if heap else None

    def level_lots(self, side: str, price_ticks: int) -> int:
        """Resting lots at one price of a side (0 when no order rests there)."""
        return self._totals.get(-price_ticks if side == BUY else price_ticks, 0)

    def depth(self, levels: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Up to ``levels`` aggregated (price_ticks, lots) per side, best first."""
        invariant(levels >= 0, "depth levels must be >= 0")
        totals = self._totals
        bid_keys = nsmallest(levels, (k for k in totals if k < 0))
        ask_keys = nsmallest(levels, (k for k in totals if k > 0))
        return [(-k, totals[k]) for k in bid_keys], [(k, totals[k]) for k in ask_keys]

    def resting(self, side: str) -> list[tuple[int, int, int, int]]:
        """Resting orders of a side in matching order: (order_id, user_id, price_ticks, lots). O(n)."""
        invariant(side in (BUY, SELL), f"unknown side {side!r}")
        orders = self._orders
        keys = sorted(k for k in self._levels if (k < 0) == (side == BUY))
        return [(i, orders[i][1], abs(k), orders[i][0]) for k in keys for i in self._levels[k] if i in orders]

    # -- changes without matching -----------------------------------------------------------

    def add_resting(self, order_id: int, user_id: int, side: str, price_ticks: int, qty_lots: int) -> None:
        """Restore a resting order at start-up, at the back of its level; never matches.

        Callers restore in original sequence order; a restored order must not cross the book."""
        self._check_new_id(order_id)
        invariant(price_ticks > 0, f"price_ticks must be positive: {price_ticks}")
        invariant(qty_lots > 0, f"qty_lots must be positive: {qty_lots}")
        if side == BUY:
            invariant(not self._ask_heap or price_ticks < self._ask_heap[0],
                      f"restored buy {order_id} at {price_ticks} crosses the best ask")
            self._rest(order_id, user_id, -price_ticks, qty_lots)
        else:
            invariant(side == SELL, f"unknown side {side!r}")
            invariant(not self._bid_heap or price_ticks > -self._bid_heap[0],
                      f"restored sell {order_id} at {price_ticks} crosses the best bid")
            self._rest(order_id, user_id, price_ticks, qty_lots)

    def cancel(self, order_id: int) -> Done | None:
        """Remove a resting order; None if it is not resting (unknown, filled or final)."""
        record = self._orders.pop(order_id, None)
        if record is None:
            return None
        lots, _, key = record
        self._stale.add(order_id)
        total = self._totals[key] - lots
        if total:
            self._totals[key] = total
            if len(self._stale) > len(self._orders) + STALE_IDS_SLACK:
                self._compact()
        else:
            self._drop_level(key)
        return _new(Done, (order_id, CANCELLED, lots, CANCEL_REQUESTED, 0))

    def withdraw(self, order_id: int) -> int | None:
        """Take a resting order out of its level at once (no stale id left behind), so the same id may be
        submitted again: an amended order re-entering at the back of its level. O(level length), unlike
        ``cancel``; amendments are rare. Returns its lots, or None if it is not resting."""
        record = self._orders.pop(order_id, None)
        if record is None:
            return None
        lots, _, key = record
        self._levels[key].remove(order_id)
        total = self._totals[key] - lots
        if total:
            self._totals[key] = total
        else:
            self._drop_level(key)
        return lots

    # -- primitives shared with the matcher ---------------------------------------------------

    def _check_new_id(self, order_id: int) -> None:
        invariant(order_id not in self._orders, f"order {order_id} is already resting")
        invariant(order_id not in self._stale, f"order id {order_id} was cancelled and must not be reused")

    def _rest(self, order_id: int, user_id: int, key: int, lots: int) -> None:
        queue = self._levels.get(key)
        if queue is None:
            self._open_level(key, order_id, lots)
        else:
            queue.append(order_id)
            self._totals[key] += lots
        self._orders[order_id] = (lots, user_id, key)

    def _open_level(self, key: int, order_id: int, lots: int) -> None:
        levels = self._levels
        levels[key] = deque((order_id,))
        self._totals[key] = lots
        heap = self._bid_heap if key < 0 else self._ask_heap
        heappush(heap, key)
        if len(heap) > self._heap_keys_max:
            self._rebuild_heap(heap)

    def _rebuild_heap(self, heap: list[int]) -> None:
        """Drop the stale keys of a heap (they pile up when levels away from the top are removed)."""
        bids = heap is self._bid_heap
        heap[:] = [k for k in self._levels if (k < 0) == bids]
        heapify(heap)
        self._heap_keys_max = 2 * len(self._levels) + HEAP_STALE_KEYS_SLACK

    def _drop_level(self, key: int) -> None:
        """Forget an emptied level (every id left in it is stale) and keep the heap top live."""
        queue = self._levels.pop(key)
        if queue:
            self._stale.difference_update(queue)
        del self._totals[key]
        heap = self._bid_heap if key < 0 else self._ask_heap
        if heap[0] == key:
            levels = self._levels
            heappop(heap)
            while heap and heap[0] not in levels:
                heappop(heap)

    def _compact(self) -> None:
        levels, orders = self._levels, self._orders
        for key, queue in levels.items():
            levels[key] = deque(i for i in queue if i in orders)
        self._stale.clear()

    # -- verification --------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Verify the whole structure; raises InvariantViolation. O(n): for tests and start-up."""
        levels, totals, orders = self._levels, self._totals, self._orders
        invariant(levels.keys() == totals.keys(), "levels and totals disagree on the price levels")
        live_count = stale_count = 0
        for heap, bids in ((self._bid_heap, True), (self._ask_heap, False)):
            heap_keys = set(heap)
            invariant(all((k < 0) == bids for k in heap_keys), "a heap holds a key of the other side")
            invariant(not heap or heap[0] in levels, "a heap top is not a live level")
            invariant(all(heap[(i - 1) // 2] <= heap[i] for i in range(1, len(heap))), "heap order broken")
            for key in (k for k in levels if (k < 0) == bids):
                invariant(key in heap_keys, f"level {key} is missing from its heap")
                invariant(key != 0, "a level at price 0")
                level_lots = 0
                for order_id in levels[key]:
                    if order_id in orders:
                        live_count += 1
                        lots, _, order_key = orders[order_id]
                        invariant(order_key == key, f"order {order_id} sits in the wrong level")
                        invariant(lots > 0, f"order {order_id} has non-positive lots")
                        level_lots += lots
                    else:
                        stale_count += 1
                        invariant(order_id in self._stale, f"order {order_id} in level {key} is unknown")
                invariant(level_lots > 0, f"level {key} is empty")
                invariant(level_lots == totals[key], f"level {key} total {totals[key]} != {level_lots}")
        invariant(live_count == len(orders), "the order index holds orders that are in no level")
        invariant(stale_count == len(self._stale), f"stale ids {len(self._stale)} != {stale_count} in levels")
        best_bid, best_ask = self.best_bid(), self.best_ask()
        invariant(best_bid is None or best_ask is None or best_bid < best_ask,
                  f"book is crossed: bid {best_bid} >= ask {best_ask}")
