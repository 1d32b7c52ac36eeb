"""A naive, obviously-correct order book, written from the matching rules in docs/api.md for differential testing.

One list of resting orders in arrival order; every submit sorts the opposite side into matching order
(best price, then arrival) and walks it. Slow on purpose: no heaps, no lazy deletion, no shortcuts.
It returns the same fact types as ``orders_app.matching.OrderBook``.
"""
from orders_app.matching import Done, Fill, Rested


class ReferenceBook:
    def __init__(self):
        self.orders = []  # resting orders, arrival order: dicts with id, user, side, price, lots

    # -- queries ---------------------------------------------------------------------------

    def __len__(self):
        return len(self.orders)

    def get(self, order_id):
        for o in self.orders:
            if o["id"] == order_id:
                return o["lots"]
        return None

    def queue(self, side):
        """Resting orders of ``side`` in matching order (Python's sort is stable: arrival breaks ties)."""
        mine = [o for o in self.orders if o["side"] == side]
        if side == "buy":
            return sorted(mine, key=lambda o: -o["price"])
        return sorted(mine, key=lambda o: o["price"])

    def best_bid(self):
        bids = [o["price"] for o in self.orders if o["side"] == "buy"]
        return max(bids) if bids else None

    def best_ask(self):
        asks = [o["price"] for o in self.orders if o["side"] == "sell"]
        return min(asks) if asks else None

    def depth(self, levels):
        result = []
        for side in ("buy", "sell"):
            totals = {}
            for o in self.queue(side):
                totals[o["price"]] = totals.get(o["price"], 0) + o["lots"]
            result.append(list(totals.items())[:levels])  # dicts keep first-seen order = best first
        return result[0], result[1]

    def resting(self, side):
        return [(o["id"], o["user"], o["price"], o["lots"]) for o in self.queue(side)]

    # -- changes ---------------------------------------------------------------------------

    def add_resting(self, order_id, user_id, side, price_ticks, qty_lots):
        self.orders.append({"id": order_id, "user": user_id, "side": side, "price": price_ticks, "lots": qty_lots})
        if self.best_bid() is not None and self.best_ask() is not None:
            assert self.best_bid() < self.best_ask(), "restored order crosses the book"

    @classmethod
    def restored(cls, rows):
        """A book holding ``rows`` (order_id, user_id, side, price_ticks, lots) in that order; one crossing
        check at the end, so a bench can load 100,000 orders."""
        book = cls()
        for order_id, user_id, side, price, lots in rows:
            book.orders.append({"id": order_id, "user": user_id, "side": side, "price": price, "lots": lots})
        if book.best_bid() is not None and book.best_ask() is not None:
            assert book.best_bid() < book.best_ask(), "restored orders cross"
        return book

    def cancel(self, order_id):
        for o in self.orders:
            if o["id"] == order_id:
                self.orders.remove(o)
                return Done(order_id, "cancelled", o["lots"], "cancel_requested", 0)
        return None

    def submit(self, order):
        oid, user, side, limit, lots, tif, post_only, budget = order
        market = limit is None
        other = "sell" if side == "buy" else "buy"

        def crosses(maker):
            if market:
                return True
            return maker["price"] <= limit if side == "buy" else maker["price"] >= limit

        makers = self.queue(other)
        if post_only and (market or (makers and crosses(makers[0]))):
            return [Done(oid, "rejected", lots or 0, "post_only", 0)]
        if market:
            tif = "IOC"
        if tif == "FOK":
            ahead = 0
            for m in makers:
                if not crosses(m) or m["user"] == user:
                    break
                ahead += m["lots"]
            if ahead < lots:
                return [Done(oid, "rejected", lots, "fok", 0)]

        facts = []
        left = lots  # None for a market buy by budget only
        stop = None
        while left != 0:
            makers = self.queue(other)  # looked up afresh before every trade
            if not makers:
                if budget == 0:
                    stop = "budget"  # spent to the last unit exactly as the book ran out
                break
            m = makers[0]
            if budget is not None and budget < m["price"]:  # cannot buy one lot at the next price
                stop = "budget"
                break
            if not crosses(m):
                break
            if m["user"] == user:
                stop = "self_trade"
                break
            qty = m["lots"]
            if left is not None:
                qty = min(qty, left)
            if budget is not None:
                qty = min(qty, budget // m["price"])
                budget -= qty * m["price"]
            if left is not None:
                left -= qty
            m["lots"] -= qty
            if m["lots"] == 0:
                self.orders.remove(m)
            facts.append(Fill(oid, m["id"], user, m["user"], side, m["price"], qty, m["lots"], limit))

        unspent = budget if budget is not None else 0
        if left == 0:
            facts.append(Done(oid, "completed", 0, "filled", unspent))
        elif stop == "self_trade":
            facts.append(Done(oid, "cancelled", left or 0, "self_trade", unspent))
        elif stop == "budget":
            if left is None:
                facts.append(Done(oid, "completed", 0, "filled", unspent))
            else:
                facts.append(Done(oid, "cancelled", left, "market_budget", unspent))
        elif market:
            facts.append(Done(oid, "cancelled", left or 0, "market_no_liquidity", unspent))
        elif tif == "GTC":
            self.orders.append({"id": oid, "user": user, "side": side, "price": limit, "lots": left})
            facts.append(Rested(oid, left))
        elif tif == "IOC":
            facts.append(Done(oid, "cancelled", left, "ioc", 0))
        else:
            raise AssertionError("a FOK that passed its check filled in full")
        return facts
