"""Fees: amount x rate rounded up to the received asset's scale, never more than the amount; the taker pays the
taker rate and the maker the maker rate; fee postings move money to the fee account and conserve every asset."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from orders_app.matching import OrderBook
from orders_app.repositories.markets import MarketSpec
from orders_app.services.accounting import FeeTerms, Trade, fee_for, trade_postings
from orders_app.services.batch_effects import BatchEffects, incoming_from_row
from tests.support.order_rows import resting_limit_order

FEE_USER = 99
# ETH-BTC: the quote is BTC (8 decimals), so price step x quantity step must be a whole number of 1e-8.
ETH_BTC = MarketSpec(3, "ETH", "BTC", Decimal("0.00001"), Decimal("0.001"), Decimal("0.001"), Decimal(100),
                     Decimal(10**6))
RATES = st.integers(min_value=0, max_value=10**6).map(lambda n: Decimal(n).scaleb(-7))  # 0 .. 0.1


@given(units=st.integers(min_value=1, max_value=10**15), scale=st.integers(min_value=0, max_value=18), rate=RATES)
def test_a_fee_is_the_amount_times_the_rate_rounded_up_to_the_scale_and_never_above_the_amount(units, scale, rate):
    amount = Decimal(units).scaleb(-scale)
    fee = fee_for(amount, rate, scale)
    exact = amount * rate
    assert fee <= amount
    assert fee == fee.quantize(Decimal(1).scaleb(-scale))  # exact at the scale: nothing left to round
    assert fee >= exact or fee == amount
    assert fee - exact < Decimal(1).scaleb(-scale)  # rounded up by less than one smallest unit


def test_a_fee_rounds_up_a_fraction_of_the_smallest_unit_to_a_whole_one():
    assert fee_for(Decimal("0.00000001"), Decimal("0.001"), 8) == Decimal("0.00000001")
    assert fee_for(Decimal("1.5"), Decimal("0.001"), 8) == Decimal("0.0015")
    assert fee_for(Decimal("2"), Decimal("0.1"), 0) == Decimal("1")  # 0.2 of a unit is a whole unit
    assert fee_for(Decimal("1"), Decimal("0.1"), 0) == Decimal("1")  # and never more than the amount
    assert fee_for(Decimal("5"), Decimal(0), 8) == 0


def test_the_taker_pays_the_taker_rate_and_the_maker_the_maker_rate_each_on_what_it_receives():
    terms = FeeTerms(maker_rate=Decimal("0.001"), taker_rate=Decimal("0.002"), base_scale=8, quote_scale=8,
                     fee_user_id=FEE_USER)
    # A taker buy receives 10 base (taker rate); the resting seller receives 0.5 quote (maker rate).
    assert terms.for_trade(Decimal("10"), Decimal("0.5"), "buy") == (Decimal("0.02"), Decimal("0.0005"))
    assert terms.for_trade(Decimal("10"), Decimal("0.5"), "sell") == (Decimal("0.01"), Decimal("0.001"))


def test_fee_postings_take_from_what_each_side_received_and_credit_the_fee_account():
    trade = Trade(Decimal("0.05"), Decimal("2"), 1, 2, 10, 20, "sell", 5, 0, Decimal("0.002"), Decimal("0.0002"))
    postings = trade_postings(trade, "ETH", "BTC", Decimal(0), trade_id=9, fee_user_id=FEE_USER)
    fees = [p for p in postings if p.reason == "fee"]
    assert sorted((p.user_id, p.asset, p.d_available, p.d_locked) for p in fees) == [
        (10, "ETH", Decimal("-0.002"), 0), (20, "BTC", Decimal("-0.0002"), 0),
        (FEE_USER, "BTC", Decimal("0.0002"), 0), (FEE_USER, "ETH", Decimal("0.002"), 0)]
    assert {p.trade_id for p in fees} == {9}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 4),
                          st.integers(1, 2_000).map(lambda t: t * ETH_BTC.price_step),
                          st.integers(1, 3_000).map(lambda lots: lots * ETH_BTC.quantity_step)),
                min_size=2, max_size=25), RATES, RATES)
def test_a_batch_with_fees_conserves_every_asset_and_the_fee_account_gets_every_fee(orders, maker_rate, taker_rate):
    terms = FeeTerms(maker_rate, taker_rate, base_scale=8, quote_scale=8, fee_user_id=FEE_USER)
    book, effects, rows = OrderBook(), BatchEffects(ETH_BTC, terms), {}
    for seq, (side, user_id, price, quantity) in enumerate(orders, start=1):
        row = rows[seq] = resting_limit_order(seq, user_id, side, price, quantity)
        effects.on_facts(book.submit(incoming_from_row(row, ETH_BTC)), seq)
    order_rows = effects.order_rows(rows)
    effects.post_trades(list(range(1, len(effects.trades) + 1)))

    effects.ledger.check_conserved()
    fee_account = {asset: d_available for (user, asset), (d_available, _) in effects.ledger.deltas.items()
                   if user == FEE_USER}
    assert fee_account.get("ETH", 0) == sum(t.buyer_fee for t in effects.trades)
    assert fee_account.get("BTC", 0) == sum(t.seller_fee for t in effects.trades)
    for row in order_rows:
        order = rows[row.order_id]
        paid = sum(t.buyer_fee if order.side == "buy" else t.seller_fee for t in effects.trades
                   if row.order_id in (t.buy_order_id, t.sell_order_id))
        assert row.fee == paid
