"""Limit GTC orders: price-time priority, maker price, partial fills, resting."""
from orders_app.matching import Done, Fill, Incoming, OrderBook, Rested


def buy(order_id, user_id, price, lots, **kw):
    return Incoming.limit(order_id, user_id, "buy", price, lots, **kw)


def sell(order_id, user_id, price, lots, **kw):
    return Incoming.limit(order_id, user_id, "sell", price, lots, **kw)


def test_limit_order_on_an_empty_book_rests_untouched():
    book = OrderBook()
    assert book.submit(buy(1, 1, 100, 5)) == [Rested(1, 5)]
    assert book.get(1) == 5 and len(book) == 1
    assert book.best_bid() == 100 and book.best_ask() is None
    book.check_invariants()


def test_non_crossing_orders_rest_on_both_sides():
    book = OrderBook()
    book.submit(buy(1, 1, 99, 5))
    assert book.submit(sell(2, 2, 100, 3)) == [Rested(2, 3)]
    assert (book.best_bid(), book.best_ask()) == (99, 100)
    book.check_invariants()


def test_exact_match_completes_both_orders_at_the_maker_price():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 5))
    facts = book.submit(buy(2, 2, 103, 5))
    assert facts == [Fill(2, 1, 2, 1, "buy", 100, 5, 0, 103), Done(2, "completed", 0, "filled", 0)]
    assert len(book) == 0 and book.depth(5) == ([], [])
    book.check_invariants()


def test_fill_carries_the_buyer_limit_so_settlement_can_release_the_price_improvement():
    book = OrderBook()
    book.submit(sell(1, 1, 95, 4))
    fill = book.submit(buy(2, 2, 100, 4))[0]
    assert (fill.taker_limit_ticks - fill.price_ticks) * fill.qty_lots == 20
    book.check_invariants()


def test_sell_taker_trades_at_the_higher_bid_price_of_the_maker():
    book = OrderBook()
    book.submit(buy(1, 1, 105, 2))
    facts = book.submit(sell(2, 2, 100, 2))
    assert facts[0] == Fill(2, 1, 2, 1, "sell", 105, 2, 0, 100)
    book.check_invariants()


def test_taker_larger_than_maker_fills_it_and_rests_the_rest_partially_filled():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 3))
    facts = book.submit(buy(2, 2, 100, 10))
    assert facts == [Fill(2, 1, 2, 1, "buy", 100, 3, 0, 100), Rested(2, 7)]
    assert book.get(1) is None and book.get(2) == 7
    assert book.depth(5) == ([(100, 7)], [])
    book.check_invariants()


def test_taker_smaller_than_maker_leaves_the_maker_partially_filled_at_the_front():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 10))
    book.submit(sell(2, 3, 100, 10))
    facts = book.submit(buy(3, 2, 100, 4))
    assert facts == [Fill(3, 1, 2, 1, "buy", 100, 4, 6, 100), Done(3, "completed", 0, "filled", 0)]
    assert book.resting("sell") == [(1, 1, 100, 6), (2, 3, 100, 10)]
    book.check_invariants()


def test_orders_at_one_price_fill_first_in_first_out():
    book = OrderBook()
    for order_id in (1, 2, 3):
        book.submit(sell(order_id, 10 + order_id, 100, 2))
    facts = book.submit(buy(9, 1, 100, 5))
    fills = [(f.maker_order_id, f.qty_lots, f.maker_remaining_lots) for f in facts[:-1]]
    assert fills == [(1, 2, 0), (2, 2, 0), (3, 1, 1)]
    book.check_invariants()


def test_buy_fills_the_lowest_ask_first_whatever_the_arrival_order():
    book = OrderBook()
    book.submit(sell(1, 1, 103, 1))
    book.submit(sell(2, 1, 101, 1))
    book.submit(sell(3, 1, 102, 1))
    facts = book.submit(buy(4, 2, 103, 3))
    assert [f.price_ticks for f in facts[:-1]] == [101, 102, 103]
    book.check_invariants()


def test_sell_fills_the_highest_bid_first():
    book = OrderBook()
    book.submit(buy(1, 1, 98, 1))
    book.submit(buy(2, 1, 99, 1))
    book.submit(buy(3, 1, 97, 1))
    facts = book.submit(sell(4, 2, 97, 3))
    assert [f.maker_order_id for f in facts[:-1]] == [2, 1, 3]
    book.check_invariants()


def test_matching_stops_at_the_limit_price_and_rests_the_rest():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 1))
    book.submit(sell(2, 1, 101, 1))
    book.submit(sell(3, 1, 102, 1))
    facts = book.submit(buy(4, 2, 101, 5))
    assert [f.maker_order_id for f in facts if isinstance(f, Fill)] == [1, 2]
    assert facts[-1] == Rested(4, 3)
    assert (book.best_bid(), book.best_ask()) == (101, 102)
    book.check_invariants()


def test_taker_sweeps_many_levels_and_keeps_the_book_consistent():
    book = OrderBook()
    for i in range(50):
        book.submit(sell(i + 1, 1 + i % 3, 1000 + i, 10 + i))
    total = sum(10 + i for i in range(50))
    facts = book.submit(buy(100, 9, 2000, total + 5))
    fills = [f for f in facts if isinstance(f, Fill)]
    assert len(fills) == 50 and sum(f.qty_lots for f in fills) == total
    assert [f.price_ticks for f in fills] == sorted(f.price_ticks for f in fills)
    assert facts[-1] == Rested(100, 5) and book.best_bid() == 2000 and book.best_ask() is None
    book.check_invariants()


def test_rested_rest_of_a_taker_is_matched_later_ahead_of_orders_that_came_after_it():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 2))
    assert book.submit(buy(2, 2, 100, 5))[-1] == Rested(2, 3)
    book.submit(buy(3, 3, 100, 4))
    facts = book.submit(sell(4, 4, 100, 4))
    assert [(f.maker_order_id, f.qty_lots) for f in facts[:-1]] == [(2, 3), (3, 1)]
    assert book.resting("buy") == [(3, 3, 100, 3)]
    book.check_invariants()
