"""Property tests: the book's invariants hold after every step, whatever the command sequence.

Checked after each command: ``check_invariants()`` (never crossed, levels and index consistent),
agreement with the reference book, quantity conservation per order, trades only at crossing prices,
price-time priority (the fills are exactly a prefix of the opposite side in matching order, none of
them the taker's own), and determinism (a replay yields the same facts).
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orders_app.matching import Done, Fill, Incoming, OrderBook, Rested

from .reference_book import ReferenceBook

PROPERTY_SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])

users = st.integers(1, 3)
sides = st.sampled_from(["buy", "sell"])
prices = st.integers(95, 105)
lots = st.integers(1, 8)
limit_templates = st.tuples(st.just("limit"), users, sides, prices, lots,
                            st.sampled_from(["GTC", "GTC", "IOC", "FOK"]), st.sampled_from([False, False, False, True]))
market_templates = st.one_of(
    st.tuples(st.just("market"), users, st.just("sell"), lots, st.none()),
    st.tuples(st.just("market"), users, st.just("buy"), lots, st.none()),
    st.tuples(st.just("market"), users, st.just("buy"), st.none(), st.integers(1, 1200)),
    st.tuples(st.just("market"), users, st.just("buy"), lots, st.integers(1, 1200)),
)
cancel_templates = st.tuples(st.just("cancel"), st.integers(0, 60))
command_templates = st.one_of(limit_templates, limit_templates, market_templates, cancel_templates)


def incoming(order_id, template):
    if template[0] == "limit":
        _, user_id, side, price, qty, tif, post_only = template
        return Incoming.limit(order_id, user_id, side, price, qty, tif, post_only)
    _, user_id, side, qty, budget = template
    return Incoming.market(order_id, user_id, side, qty, budget)


def run(templates):
    """Apply command templates to a fresh book; order ids are 1, 2, ... in command order."""
    book = OrderBook()
    results = []
    for order_id, template in enumerate(templates, start=1):
        if template[0] == "cancel":
            results.append(book.cancel(template[1]))
        else:
            results.append(book.submit(incoming(order_id, template)))
    book.check_invariants()
    return results, book.resting("buy"), book.resting("sell")


def crosses(order, price):
    if order.price_ticks is None:
        return True
    return price <= order.price_ticks if order.side == "buy" else price >= order.price_ticks


class BookUnderRandomCommands(RuleBasedStateMachine):
    """Random limit, market, cancel and restore commands against the book and the reference book."""

    def __init__(self):
        super().__init__()
        self.book = OrderBook()
        self.reference = ReferenceBook()
        self.next_order_id = 1
        self.original_lots = {}  # order id -> lots it asked for (limit and quantity orders)
        self.filled_lots = {}
        self.final_remaining = {}  # order id -> remaining lots when it became final

    def _new_order_id(self):
        self.next_order_id += 1
        return self.next_order_id - 1

    def _submit(self, order):
        opposite = "sell" if order.side == "buy" else "buy"
        queue_before = self.book.resting(opposite)
        facts = self.book.submit(order)
        assert facts == self.reference.submit(order)
        *fills, terminal = facts
        assert all(isinstance(f, Fill) for f in fills) and isinstance(terminal, (Rested, Done))
        if order.qty_lots is not None:
            self.original_lots[order.order_id] = order.qty_lots
        for position, fill in enumerate(fills):
            maker_id, maker_user, maker_price, maker_lots = queue_before[position]
            assert (fill.maker_order_id, fill.maker_user_id, fill.price_ticks) == (maker_id, maker_user, maker_price)
            assert fill.maker_user_id != order.user_id
            assert crosses(order, fill.price_ticks)
            assert fill.taker_limit_ticks == order.price_ticks
            assert 0 < fill.qty_lots <= maker_lots
            assert fill.maker_remaining_lots == maker_lots - fill.qty_lots
            if position < len(fills) - 1:
                assert fill.maker_remaining_lots == 0  # only the last maker may be left partially filled
            for order_id in (fill.maker_order_id, fill.taker_order_id):
                self.filled_lots[order_id] = self.filled_lots.get(order_id, 0) + fill.qty_lots
            if fill.maker_remaining_lots == 0:
                self.final_remaining[fill.maker_order_id] = 0
        if isinstance(terminal, Done):
            self.final_remaining[order.order_id] = terminal.remaining_lots
            if terminal.status == "rejected":
                assert not fills
            if terminal.reason == "self_trade":  # stopped exactly at the user's own resting order
                assert queue_before[len(fills)][1] == order.user_id
        if order.quote_budget is not None:
            spent = sum(f.price_ticks * f.qty_lots for f in fills)
            assert terminal.unspent_budget == order.quote_budget - spent >= 0

    @rule(template=limit_templates)
    def submit_limit(self, template):
        self._submit(incoming(self._new_order_id(), template))

    @rule(template=market_templates)
    def submit_market(self, template):
        self._submit(incoming(self._new_order_id(), template))

    @rule(order_id=st.integers(0, 80))
    def cancel(self, order_id):
        done = self.book.cancel(order_id)
        assert done == self.reference.cancel(order_id)
        if done is not None:
            self.final_remaining[order_id] = done.remaining_lots

    @precondition(lambda self: len(self.book) > 0)
    @rule(user_id=users, side=sides, qty=lots, offset=st.integers(1, 3))
    def add_resting_behind_the_spread(self, user_id, side, qty, offset):
        best_bid, best_ask = self.book.best_bid(), self.book.best_ask()
        if side == "buy":
            price = (best_ask if best_ask is not None else best_bid + 1) - offset
        else:
            price = (best_bid if best_bid is not None else best_ask - 1) + offset
        if price < 1:
            return
        order_id = self._new_order_id()
        self.book.add_resting(order_id, user_id, side, price, qty)
        self.reference.add_resting(order_id, user_id, side, price, qty)
        self.original_lots[order_id] = qty

    @invariant()
    def book_is_internally_consistent(self):
        self.book.check_invariants()

    @invariant()
    def book_is_never_crossed_at_rest(self):
        best_bid, best_ask = self.book.best_bid(), self.book.best_ask()
        assert best_bid is None or best_ask is None or best_bid < best_ask

    @invariant()
    def book_agrees_with_the_reference(self):
        assert self.book.resting("buy") == self.reference.resting("buy")
        assert self.book.resting("sell") == self.reference.resting("sell")
        assert self.book.depth(50) == self.reference.depth(50)

    @invariant()
    def every_order_conserves_its_quantity(self):
        for order_id, original in self.original_lots.items():
            filled = self.filled_lots.get(order_id, 0)
            resting = self.book.get(order_id)
            if resting is not None:
                assert order_id not in self.final_remaining
                assert filled + resting == original
            else:
                assert filled + self.final_remaining[order_id] == original


BookUnderRandomCommands.TestCase.settings = PROPERTY_SETTINGS
TestEveryCommandSequenceKeepsTheBookConsistent = BookUnderRandomCommands.TestCase


@PROPERTY_SETTINGS
@given(templates=st.lists(command_templates, max_size=150))
def test_replaying_the_same_commands_yields_the_same_facts_and_book(templates):
    assert run(templates) == run(templates)
