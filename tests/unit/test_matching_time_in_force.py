"""IOC, FOK, post-only and self-trade prevention."""
from orders_app.matching import Done, Fill, Incoming, OrderBook, Rested


def buy(order_id, user_id, price, lots, **kw):
    return Incoming.limit(order_id, user_id, "buy", price, lots, **kw)


def sell(order_id, user_id, price, lots, **kw):
    return Incoming.limit(order_id, user_id, "sell", price, lots, **kw)


def snapshot(book):
    return book.resting("buy"), book.resting("sell"), len(book)


def test_ioc_fills_what_crosses_and_cancels_the_rest_without_resting():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 2))
    book.submit(sell(2, 1, 105, 2))
    facts = book.submit(buy(3, 2, 101, 5, tif="IOC"))
    assert facts == [Fill(3, 1, 2, 1, "buy", 100, 2, 0, 101), Done(3, "cancelled", 3, "ioc", 0)]
    assert book.get(3) is None and book.best_bid() is None
    book.check_invariants()


def test_ioc_that_fills_in_full_is_completed():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 5))
    assert book.submit(buy(2, 2, 100, 5, tif="IOC"))[-1] == Done(2, "completed", 0, "filled", 0)
    book.check_invariants()


def test_ioc_on_an_empty_book_is_cancelled_with_everything_remaining():
    book = OrderBook()
    assert book.submit(sell(1, 1, 100, 5, tif="IOC")) == [Done(1, "cancelled", 5, "ioc", 0)]
    assert len(book) == 0
    book.check_invariants()


def test_fok_that_cannot_fill_in_full_is_rejected_and_changes_nothing():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 2))
    book.submit(sell(2, 1, 101, 2))
    book.submit(sell(3, 1, 102, 9))  # beyond the limit: does not count
    before = snapshot(book)
    assert book.submit(buy(4, 2, 101, 5, tif="FOK")) == [Done(4, "rejected", 5, "fok", 0)]
    assert snapshot(book) == before
    book.check_invariants()


def test_fok_that_can_fill_fills_across_levels_and_completes():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 2))
    book.submit(sell(2, 1, 101, 2))
    facts = book.submit(buy(3, 2, 101, 4, tif="FOK"))
    assert [f.qty_lots for f in facts[:-1]] == [2, 2]
    assert facts[-1] == Done(3, "completed", 0, "filled", 0)
    assert len(book) == 0
    book.check_invariants()


def test_fok_counts_only_liquidity_ahead_of_the_users_own_resting_order():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 2))
    book.submit(sell(2, 7, 100, 5))  # user 7's own order
    book.submit(sell(3, 1, 100, 5))
    before = snapshot(book)
    assert book.submit(buy(4, 7, 100, 3, tif="FOK")) == [Done(4, "rejected", 3, "fok", 0)]
    assert snapshot(book) == before
    facts = book.submit(buy(5, 7, 100, 2, tif="FOK"))
    assert facts == [Fill(5, 1, 7, 1, "buy", 100, 2, 0, 100), Done(5, "completed", 0, "filled", 0)]
    book.check_invariants()


def test_fok_with_nothing_crossing_is_rejected():
    book = OrderBook()
    book.submit(sell(1, 1, 105, 5))
    assert book.submit(buy(2, 2, 100, 1, tif="FOK")) == [Done(2, "rejected", 1, "fok", 0)]
    assert book.get(1) == 5
    book.check_invariants()


def test_post_only_that_would_take_is_rejected_without_trading():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 5))
    assert book.submit(buy(2, 2, 100, 5, post_only=True)) == [Done(2, "rejected", 5, "post_only", 0)]
    assert book.get(1) == 5 and book.get(2) is None
    book.check_invariants()


def test_post_only_is_rejected_even_when_the_best_opposite_order_is_the_users_own():
    book = OrderBook()
    book.submit(buy(1, 3, 100, 5))
    assert book.submit(sell(2, 3, 99, 1, post_only=True)) == [Done(2, "rejected", 1, "post_only", 0)]
    book.check_invariants()


def test_post_only_that_does_not_cross_rests_like_a_gtc_order():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 5))
    assert book.submit(buy(2, 2, 99, 5, post_only=True)) == [Rested(2, 5)]
    assert book.best_bid() == 99
    book.check_invariants()


def test_self_trade_cancels_the_incoming_rest_and_keeps_the_resting_order():
    book = OrderBook()
    book.submit(sell(1, 5, 100, 3))
    assert book.submit(buy(2, 5, 100, 2)) == [Done(2, "cancelled", 2, "self_trade", 0)]
    assert book.get(1) == 3 and book.get(2) is None
    book.check_invariants()


def test_trades_before_the_users_own_order_are_kept_when_self_trade_stops_the_taker():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 2))
    book.submit(sell(2, 5, 100, 3))
    book.submit(sell(3, 1, 100, 4))
    facts = book.submit(buy(4, 5, 101, 6))
    assert facts == [Fill(4, 1, 5, 1, "buy", 100, 2, 0, 101), Done(4, "cancelled", 4, "self_trade", 0)]
    assert book.resting("sell") == [(2, 5, 100, 3), (3, 1, 100, 4)]
    book.check_invariants()


def test_self_trade_applies_to_ioc_orders_too():
    book = OrderBook()
    book.submit(buy(1, 5, 100, 3))
    assert book.submit(sell(2, 5, 90, 1, tif="IOC")) == [Done(2, "cancelled", 1, "self_trade", 0)]
    book.check_invariants()


def test_users_own_order_beyond_the_limit_does_not_stop_the_taker():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 1))
    book.submit(sell(2, 5, 110, 1))
    facts = book.submit(buy(3, 5, 100, 3))
    assert facts[-1] == Rested(3, 2)
    book.check_invariants()
