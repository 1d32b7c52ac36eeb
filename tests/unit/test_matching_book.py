"""Book operations without matching: cancel, add_resting, depth, queries, and the invariant checks."""
import pytest

from orders_app.matching import (
    Done,
    Incoming,
    InvariantViolation,
    OrderBook,
    Rested,
    invariant,
)


def buy(order_id, user_id, price, lots):
    return Incoming.limit(order_id, user_id, "buy", price, lots)


def sell(order_id, user_id, price, lots):
    return Incoming.limit(order_id, user_id, "sell", price, lots)


def test_cancel_removes_a_resting_order_and_reports_its_remaining_lots():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 5))
    book.submit(buy(2, 2, 100, 2))
    assert book.cancel(1) == Done(1, "cancelled", 3, "cancel_requested", 0)
    assert book.get(1) is None and len(book) == 0 and book.best_ask() is None
    book.check_invariants()


def test_cancel_of_an_unknown_or_filled_order_returns_none():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 5))
    book.submit(buy(2, 2, 100, 5))
    assert book.cancel(1) is None
    assert book.cancel(42) is None
    assert book.cancel(1) is None
    book.check_invariants()


def test_cancel_in_the_middle_of_a_level_keeps_the_fifo_order_of_the_others():
    book = OrderBook()
    for order_id in (1, 2, 3):
        book.submit(sell(order_id, order_id, 100, 1))
    book.cancel(2)
    facts = book.submit(buy(4, 9, 100, 2))
    assert [f.maker_order_id for f in facts[:-1]] == [1, 3]
    book.check_invariants()


def test_cancel_of_the_best_level_moves_the_best_price():
    book = OrderBook()
    book.submit(buy(1, 1, 100, 1))
    book.submit(buy(2, 1, 98, 1))
    book.cancel(1)
    assert book.best_bid() == 98
    book.submit(buy(3, 1, 100, 1))
    assert book.best_bid() == 100
    book.check_invariants()


def test_many_cancels_compact_the_queues_and_keep_the_book_consistent():
    book = OrderBook()
    for order_id in range(1, 5001):
        book.submit(sell(order_id, 1, 100 + order_id % 3, 1))
    for order_id in range(1, 5001, 2):
        book.cancel(order_id)
    book.check_invariants()
    assert len(book) == 2500
    facts = book.submit(buy(9999, 2, 102, 2500))
    assert sum(f.qty_lots for f in facts[:-1]) == 2500 and len(book) == 0
    book.check_invariants()


def test_add_resting_restores_orders_without_matching_in_the_given_order():
    book = OrderBook()
    book.add_resting(1, 1, "buy", 99, 5)
    book.add_resting(2, 2, "buy", 99, 3)
    book.add_resting(3, 1, "sell", 101, 4)
    assert book.depth(10) == ([(99, 8)], [(101, 4)])
    facts = book.submit(sell(4, 3, 99, 6))
    assert [f.maker_order_id for f in facts[:-1]] == [1, 2]
    book.check_invariants()


def test_add_resting_refuses_an_order_that_crosses_the_book():
    book = OrderBook()
    book.add_resting(1, 1, "sell", 100, 1)
    with pytest.raises(InvariantViolation):
        book.add_resting(2, 2, "buy", 100, 1)
    book.add_resting(3, 2, "buy", 99, 1)
    with pytest.raises(InvariantViolation):
        book.add_resting(4, 2, "sell", 99, 1)
    book.check_invariants()


def test_a_cancelled_order_id_cannot_be_reused_while_it_may_still_sit_in_a_queue():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 1))
    book.submit(sell(2, 1, 100, 1))
    book.cancel(1)
    with pytest.raises(InvariantViolation, match="reused"):
        book.submit(sell(1, 1, 100, 1))
    with pytest.raises(InvariantViolation, match="reused"):
        book.add_resting(1, 1, "sell", 100, 1)
    book.check_invariants()


def test_add_resting_refuses_a_duplicate_id_and_non_positive_amounts():
    book = OrderBook()
    book.add_resting(1, 1, "buy", 99, 5)
    for args in ((1, 1, "buy", 98, 1), (2, 1, "buy", 0, 1), (3, 1, "buy", 98, 0), (4, 1, "hold", 98, 1)):
        with pytest.raises(InvariantViolation):
            book.add_resting(*args)
    book.check_invariants()


def test_submit_refuses_malformed_orders():
    book = OrderBook()
    book.submit(buy(1, 1, 100, 1))
    malformed = [
        buy(1, 1, 100, 1),                                    # already resting
        Incoming(2, 1, "buy", 100, 0),                        # no quantity
        Incoming(3, 1, "hold", 100, 1),                       # unknown side
        Incoming(4, 1, "buy", 100, 1, "GTD"),                 # unknown time in force
        Incoming(5, 1, "buy", -3, 1),                         # bad price
        Incoming(6, 1, "buy", 100, 1, "GTC", False, 500),     # budget on a limit order
        Incoming.market(7, 1, "buy"),                         # market buy with neither
        Incoming.market(8, 1, "sell", quote_budget=5),        # market sell by budget
        Incoming.market(9, 1, "buy", quote_budget=0),         # empty budget
    ]
    for order in malformed:
        with pytest.raises(InvariantViolation):
            book.submit(order)
    book.check_invariants()


def test_depth_aggregates_each_price_level_best_first_and_limits_the_levels():
    book = OrderBook()
    book.submit(buy(1, 1, 98, 1))
    book.submit(buy(2, 2, 99, 2))
    book.submit(buy(3, 3, 99, 3))
    book.submit(buy(4, 3, 97, 4))
    book.submit(sell(5, 1, 101, 5))
    book.submit(sell(6, 1, 103, 6))
    book.submit(sell(7, 2, 101, 7))
    assert book.depth(10) == ([(99, 5), (98, 1), (97, 4)], [(101, 12), (103, 6)])
    assert book.depth(1) == ([(99, 5)], [(101, 12)])
    assert book.depth(0) == ([], [])
    book.check_invariants()


def test_queries_describe_the_resting_orders():
    book = OrderBook()
    assert (len(book), book.best_bid(), book.best_ask(), book.get(1)) == (0, None, None, None)
    assert book.submit(buy(1, 1, 99, 2)) == [Rested(1, 2)]
    book.submit(sell(2, 2, 101, 3))
    assert (len(book), book.best_bid(), book.best_ask(), book.get(2)) == (2, 99, 101, 3)
    assert book.resting("buy") == [(1, 1, 99, 2)] and book.resting("sell") == [(2, 2, 101, 3)]
    book.check_invariants()


def test_invariant_raises_its_own_exception_type():
    invariant(True, "fine")
    with pytest.raises(InvariantViolation, match="broken"):
        invariant(False, "broken")


def test_check_invariants_detects_a_wrong_level_total():
    book = OrderBook()
    book.submit(buy(1, 1, 99, 2))
    book._totals[-99] += 1
    with pytest.raises(InvariantViolation, match="total"):
        book.check_invariants()


def test_check_invariants_detects_a_crossed_book():
    book = OrderBook()
    book.submit(buy(1, 1, 99, 2))
    book._rest(2, 2, 98, 1)  # an ask at 98 under the bid at 99, bypassing the matcher
    with pytest.raises(InvariantViolation, match="crossed"):
        book.check_invariants()


def test_check_invariants_detects_an_order_that_is_in_no_level():
    book = OrderBook()
    book.submit(buy(1, 1, 99, 2))
    book._orders[7] = (1, 1, -99)
    with pytest.raises(InvariantViolation, match="no level"):
        book.check_invariants()


def test_check_invariants_detects_a_non_positive_quantity():
    book = OrderBook()
    book.submit(buy(1, 1, 99, 2))
    book._orders[1] = (-2, 1, -99)
    with pytest.raises(InvariantViolation):
        book.check_invariants()


def test_a_withdrawn_order_can_be_submitted_again_and_goes_to_the_back_of_its_level():
    from orders_app.matching import Fill, Incoming, OrderBook
    book = OrderBook()
    book.submit(Incoming.limit(1, 10, "buy", 100, 5))
    book.submit(Incoming.limit(2, 20, "buy", 100, 5))
    assert book.withdraw(1) == 5 and book.withdraw(1) is None
    book.submit(Incoming.limit(1, 10, "buy", 100, 8))  # the amended order, merged quantity
    fills = [f for f in book.submit(Incoming.limit(3, 30, "sell", 100, 6)) if isinstance(f, Fill)]
    assert [(f.maker_order_id, f.qty_lots) for f in fills] == [(2, 5), (1, 1)]
    assert book.get(1) == 7
    book.check_invariants()


def test_withdrawing_the_last_order_of_a_level_removes_the_level():
    from orders_app.matching import Incoming, OrderBook
    book = OrderBook()
    book.submit(Incoming.limit(1, 10, "sell", 100, 5))
    book.submit(Incoming.limit(2, 10, "sell", 101, 5))
    assert book.withdraw(1) == 5
    assert book.best_ask() == 101 and book.depth(5) == ([], [(101, 5)])
    book.check_invariants()
