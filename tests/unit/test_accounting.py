"""The pure accounting of a batch: postings, conservation, balances; and the effects of the engine's facts.

Property tests drive the real engine with random orders and check that what settlement would write always
conserves every asset, never takes more from an order than it held, and releases every final hold.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders_app.errors import InvariantViolation
from orders_app.matching import OrderBook
from orders_app.repositories.markets import MarketSpec
from orders_app.services.accounting import (
    BatchLedger,
    Posting,
    Trade,
    new_balances,
    trade_postings,
)
from orders_app.services.batch_effects import BatchEffects, incoming_from_row
from tests.support.order_rows import resting_limit_order

SPEC = MarketSpec(1, "BTC", "USD", Decimal("0.01"), Decimal("0.001"), Decimal("0.001"), Decimal(10**6),
                  Decimal(10**6))
PRICES = st.integers(min_value=1, max_value=20_000).map(lambda ticks: Decimal(ticks) * SPEC.price_step)
QUANTITIES = st.integers(min_value=1, max_value=5_000).map(lambda lots: Decimal(lots) * SPEC.quantity_step)


def per_asset(postings: list[Posting]) -> dict[str, Decimal]:
    ledger = BatchLedger()
    ledger.post(postings)
    return ledger.per_asset()


@given(price=PRICES, quantity=QUANTITIES, improvement_ticks=st.integers(min_value=0, max_value=500))
def test_a_trades_postings_move_money_between_its_two_users_only(price, quantity, improvement_ticks):
    trade = Trade(price, quantity, 1, 2, 10, 20, "buy", 5, 0)
    improvement = Decimal(improvement_ticks) * SPEC.price_step * quantity
    postings = trade_postings(trade, "BTC", "USD", improvement, trade_id=9)

    assert per_asset(postings) == {"USD": 0, "BTC": 0}
    buyer_usd = [p for p in postings if (p.user_id, p.asset) == (10, "USD")]
    assert sum(p.d_locked for p in buyer_usd) == -(price * quantity + improvement)  # its hold pays and releases
    assert sum(p.d_available for p in buyer_usd) == improvement
    assert {p.trade_id for p in postings} == {9}


def test_a_batch_that_creates_or_destroys_money_is_refused():
    ledger = BatchLedger()
    ledger.post([Posting(1, "USD", Decimal("5"), Decimal(0), "trade_sell", 7)])
    with pytest.raises(InvariantViolation, match="does not conserve"):
        ledger.check_conserved()


def test_new_balances_start_a_missing_account_from_zero_and_refuse_a_negative_one():
    deltas = {(1, "USD"): (Decimal("2.5"), Decimal(0)), (2, "USD"): (Decimal(0), Decimal(0)),
              (3, "BTC"): (Decimal("-1"), Decimal("1"))}
    balances = new_balances({(3, "BTC"): (Decimal("4"), Decimal("0"))}, deltas)
    assert balances[(1, "USD")] == (Decimal("2.5"), Decimal(0), Decimal("2.5"), Decimal(0))
    assert (2, "USD") not in balances  # no net change, no write
    assert balances[(3, "BTC")][:2] == (Decimal("3"), Decimal("1"))
    with pytest.raises(InvariantViolation, match="negative"):
        new_balances({}, {(4, "USD"): (Decimal("-0.01"), Decimal(0))})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 4), PRICES, QUANTITIES),
                min_size=1, max_size=25))
def test_any_batch_of_limit_orders_conserves_every_asset_and_releases_what_final_orders_held(orders):
    book, effects, rows = OrderBook(), BatchEffects(SPEC), {}
    for seq, (side, user_id, price, quantity) in enumerate(orders, start=1):
        row = rows[seq] = resting_limit_order(seq, user_id, side, price, quantity)
        effects.on_facts(book.submit(incoming_from_row(row, SPEC)), seq)
    order_rows = effects.order_rows(rows)
    effects.post_trades(list(range(1, len(effects.trades) + 1)))

    effects.ledger.check_conserved()
    for row in order_rows:
        order = rows[row.order_id]
        assert row.locked_amount >= 0 and row.filled_quantity <= order.quantity
        if row.status in ("completed", "cancelled", "rejected"):
            assert row.locked_amount == 0
        traded = sum(t.quantity for t in effects.trades if row.order_id in (t.buy_order_id, t.sell_order_id))
        assert row.filled_quantity == traded
    book.check_invariants()
