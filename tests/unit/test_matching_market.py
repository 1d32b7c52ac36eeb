"""Market orders: always IOC, sell by quantity, buy by quantity and/or quote budget (ticks * lots)."""
from orders_app.matching import Done, Fill, Incoming, OrderBook


def sell(order_id, user_id, price, lots):
    return Incoming.limit(order_id, user_id, "sell", price, lots)


def buy(order_id, user_id, price, lots):
    return Incoming.limit(order_id, user_id, "buy", price, lots)


def asks(*levels):
    book = OrderBook()
    for n, (price, lots) in enumerate(levels, start=1):
        book.submit(sell(n, 1, price, lots))
    return book


def test_market_sell_takes_the_best_bids_and_completes():
    book = OrderBook()
    book.submit(buy(1, 1, 100, 2))
    book.submit(buy(2, 1, 90, 5))
    facts = book.submit(Incoming.market(3, 2, "sell", qty_lots=4))
    assert facts == [Fill(3, 1, 2, 1, "sell", 100, 2, 0, None), Fill(3, 2, 2, 1, "sell", 90, 2, 3, None),
                     Done(3, "completed", 0, "filled", 0)]
    book.check_invariants()


def test_market_sell_larger_than_the_book_is_cancelled_when_the_book_runs_out():
    book = OrderBook()
    book.submit(buy(1, 1, 100, 2))
    facts = book.submit(Incoming.market(2, 2, "sell", qty_lots=5))
    assert facts[-1] == Done(2, "cancelled", 3, "market_no_liquidity", 0)
    assert len(book) == 0
    book.check_invariants()


def test_market_order_on_an_empty_book_is_cancelled_without_fills():
    book = OrderBook()
    assert book.submit(Incoming.market(1, 1, "buy", qty_lots=5)) == [Done(1, "cancelled", 5, "market_no_liquidity", 0)]
    assert book.submit(Incoming.market(2, 1, "buy", quote_budget=500)) == [
        Done(2, "cancelled", 0, "market_no_liquidity", 500)]
    book.check_invariants()


def test_market_buy_by_quantity_walks_the_asks_and_completes():
    book = asks((100, 1), (101, 1), (105, 10))
    facts = book.submit(Incoming.market(9, 2, "buy", qty_lots=3))
    assert [(f.price_ticks, f.qty_lots) for f in facts[:-1]] == [(100, 1), (101, 1), (105, 1)]
    assert facts[-1] == Done(9, "completed", 0, "filled", 0)
    assert book.depth(5) == ([], [(105, 9)])
    book.check_invariants()


def test_market_buy_by_budget_stops_at_dust_and_completes_with_the_unspent_budget():
    book = asks((100, 3), (200, 10))
    facts = book.submit(Incoming.market(9, 2, "buy", quote_budget=750))
    # 3 lots at 100 (300), then floor(450 / 200) = 2 lots at 200 (400); 50 cannot buy a lot at 200.
    assert [(f.price_ticks, f.qty_lots) for f in facts[:-1]] == [(100, 3), (200, 2)]
    assert facts[-1] == Done(9, "completed", 0, "filled", 50)
    assert book.get(2) == 8
    book.check_invariants()


def test_market_buy_by_budget_too_small_for_one_lot_completes_without_trading():
    book = asks((100, 3))
    assert book.submit(Incoming.market(9, 2, "buy", quote_budget=99)) == [Done(9, "completed", 0, "filled", 99)]
    assert book.get(1) == 3
    book.check_invariants()


def test_market_buy_by_budget_that_empties_the_book_is_cancelled_with_the_rest():
    book = asks((100, 2), (110, 1))
    facts = book.submit(Incoming.market(9, 2, "buy", quote_budget=1000))
    assert sum(f.qty_lots for f in facts[:-1]) == 3
    assert facts[-1] == Done(9, "cancelled", 0, "market_no_liquidity", 690)
    book.check_invariants()


def test_market_buy_by_budget_spent_exactly_as_the_book_empties_is_completed():
    book = asks((100, 2))
    assert book.submit(Incoming.market(9, 2, "buy", quote_budget=200))[-1] == Done(9, "completed", 0, "filled", 0)
    book.check_invariants()


def test_market_buy_with_quantity_and_budget_completes_when_the_quantity_is_filled():
    book = asks((100, 2), (120, 5))
    facts = book.submit(Incoming.market(9, 2, "buy", qty_lots=4, quote_budget=4 * 130))
    assert [(f.price_ticks, f.qty_lots) for f in facts[:-1]] == [(100, 2), (120, 2)]
    assert facts[-1] == Done(9, "completed", 0, "filled", 520 - 200 - 240)
    book.check_invariants()


def test_market_buy_with_quantity_is_cancelled_when_its_budget_runs_out_first():
    book = asks((100, 2), (150, 5))
    facts = book.submit(Incoming.market(9, 2, "buy", qty_lots=4, quote_budget=400))
    assert [(f.price_ticks, f.qty_lots) for f in facts[:-1]] == [(100, 2), (150, 1)]
    assert facts[-1] == Done(9, "cancelled", 1, "market_budget", 50)
    book.check_invariants()


def test_market_buy_with_quantity_is_cancelled_when_the_book_runs_out_first():
    book = asks((100, 2))
    facts = book.submit(Incoming.market(9, 2, "buy", qty_lots=4, quote_budget=1000))
    assert facts[-1] == Done(9, "cancelled", 2, "market_no_liquidity", 800)
    book.check_invariants()


def test_market_buy_stops_at_the_users_own_ask_and_keeps_earlier_trades():
    book = OrderBook()
    book.submit(sell(1, 1, 100, 1))
    book.submit(sell(2, 2, 101, 1))
    book.submit(sell(3, 1, 102, 1))
    facts = book.submit(Incoming.market(4, 2, "buy", quote_budget=1000))
    assert facts == [Fill(4, 1, 2, 1, "buy", 100, 1, 0, None), Done(4, "cancelled", 0, "self_trade", 900)]
    assert book.get(2) == 1
    book.check_invariants()


def test_market_sell_stops_at_the_users_own_bid():
    book = OrderBook()
    book.submit(buy(1, 2, 100, 1))
    facts = book.submit(Incoming.market(2, 2, "sell", qty_lots=1))
    assert facts == [Done(2, "cancelled", 1, "self_trade", 0)]
    book.check_invariants()


def test_post_only_market_order_is_rejected():
    book = asks((100, 1))
    order = Incoming(9, 2, "buy", None, 1, "IOC", True, None)
    assert book.submit(order) == [Done(9, "rejected", 1, "post_only", 0)]
    book.check_invariants()


def test_market_buy_by_quantity_with_a_zero_hold_is_cancelled_not_refused():
    # Accepted on an empty ask book, its hold was priced at 0; asks may have arrived since.
    assert OrderBook().submit(Incoming.market(9, 2, "buy", qty_lots=3, quote_budget=0)) == [
        Done(9, "cancelled", 3, "market_budget", 0)]
    book = asks((100, 5))
    assert book.submit(Incoming.market(9, 2, "buy", qty_lots=3, quote_budget=0)) == [
        Done(9, "cancelled", 3, "market_budget", 0)]
    assert len(book) == 1
    book.check_invariants()
