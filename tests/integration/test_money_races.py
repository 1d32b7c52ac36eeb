"""Races where money could vanish or a repeat could be refused, each forced into its worst interleaving.

No worker process runs here: each test settles its own fresh market in-process (`settle_commands`), so it can
step in between two statements of the settling transaction. Every test ends with the reconciliation.
"""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from orders_app.messages import Fund
from orders_app.processes import ApiServer, WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.repositories import accounts, settlement
from orders_app.services.funding import fund
from orders_app.services.markets import add_market, update_market
from orders_app.services.settling import MarketRuntime, settle_commands
from tests.support.waits import wait_market_applied


@pytest.fixture()
def market(ctx):
    symbol = "R" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    yield symbol
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()


def settle_all(ctx, symbol: str):
    """Apply every accepted command of the market in-process; returns the batch."""
    spec = ctx.resolve_market(symbol)
    with ctx.uow() as uow:
        accepted = settlement.accepted_seq(uow.session, spec.id)
    return settle_commands(MarketRuntime(spec), [], ctx, up_to_seq=accepted)


def test_a_deposit_landing_while_a_first_credit_settles_is_kept(ctx, market, make_user, monkeypatch):
    seller = make_user("seller", **{market: "1"})  # never held USD: its USD account does not exist yet
    buyer = make_user("buyer", USD="1000")
    assert seller.place(currency_symbol=market, order_type="sell", price="100", quantity="1").status_code == 201
    assert buyer.place(currency_symbol=market, order_type="buy", price="100", quantity="1").status_code == 201

    real_lock_many = accounts.lock_many
    deposited = []

    def lock_then_deposit(session, keys):
        locked = real_lock_many(session, keys)
        if not deposited:  # the seller's first USD deposit commits between the lock and the write
            fund(Fund(seller.id, "USD", Decimal("7"), "deposit"), ctx)
            deposited.append(True)
        return locked

    monkeypatch.setattr(accounts, "lock_many", lock_then_deposit)
    batch = settle_all(ctx, market)
    monkeypatch.undo()

    assert (batch.commands, batch.trades, deposited) == (2, 1, [True])
    assert seller.balances()["USD"]["available"] == "107"  # the deposit and the trade's proceeds both count


@pytest.mark.slow
def test_first_quote_deposits_racing_the_sellers_first_proceeds_all_count(client, ctx, market, make_user):
    """Black box: a real worker fills many sellers who never held USD with one taker while each seller's first
    USD deposit lands through the API."""
    taker = make_user("taker", USD=str(SELLERS_PER_ROUND * ROUNDS))
    worker = WorkerProcess("worker-first-credit", KAFKA_MAX_POLL_INTERVAL_MS="3000")
    try:
        market_id = ctx.resolve_market(market).id
        for round_index in range(ROUNDS):
            sellers = [make_user("seller", **{market: "1"}) for _ in range(SELLERS_PER_ROUND)]
            for seller in sellers:
                assert seller.place(currency_symbol=market, order_type="sell", price="1",
                                    quantity="1").status_code == 201
            wait_market_applied(ctx, market_id)
            with ThreadPoolExecutor(DEPOSIT_THREADS) as pool:
                taker_placed = pool.submit(taker.place, currency_symbol=market, order_type="buy", type="market",
                                           quote_quantity=str(SELLERS_PER_ROUND))
                deposits = [pool.submit(seller.deposit, "USD", "1") for seller in sellers]
                assert taker_placed.result().status_code == 201
                [deposit.result() for deposit in deposits]
            wait_market_applied(ctx, market_id)
            lost = [seller.id for seller in sellers if seller.balances()["USD"]["balance"] != "2"]
            assert not lost, f"round {round_index}: sellers whose deposit or proceeds vanished: {lost}"
    finally:
        assert worker.stop() == 0


SELLERS_PER_ROUND = 60
ROUNDS = 4
DEPOSIT_THREADS = 16


@pytest.mark.slow
def test_concurrent_repeats_of_a_client_order_id_across_processes_all_answer_the_first_order(make_user):
    """Funds for one order only: whichever repeat commits first is the order; every other repeat, in any
    process or batch, answers it with 200 — never INSUFFICIENT_FUNDS."""
    server = ApiServer("api-repeats", workers=2, threads=8)
    try:
        for round_index in range(REPEAT_ROUNDS):
            user = make_user("repeats", USD="10")
            body = {"order_type": "buy", "currency_symbol": "BTC", "price": "10", "quantity": "1",
                    "client_order_id": f"repeat-{round_index}"}
            with ThreadPoolExecutor(REPEATS) as pool:
                responses = list(pool.map(
                    lambda _, body=body, headers=user.headers: requests.post(
                        f"{server.url}/api/orders", json=body, headers=headers, timeout=30),
                    range(REPEATS)))
            statuses = sorted(response.status_code for response in responses)
            assert statuses == [200] * (REPEATS - 1) + [201], [response.json() for response in responses]
            assert len({response.json()["order"]["id"] for response in responses}) == 1
    finally:
        server.stop()


REPEATS = 12
REPEAT_ROUNDS = 5


def test_an_order_accepted_just_before_its_market_halted_is_cancelled_as_market_halted_not_matched(
        ctx, market, make_user):
    """The API refuses orders once a market is halted; one it accepted just before reaches the worker after
    the halt, and must not trade then: it ends `cancelled` with reason `market_halted`, its hold released."""
    seller, buyer = make_user("seller", **{market: "1"}), make_user("buyer", USD="100")
    assert seller.place(currency_symbol=market, order_type="sell", price="10", quantity="1").status_code == 201
    settle_all(ctx, market)
    late = buyer.place(currency_symbol=market, order_type="buy", price="10", quantity="1")
    assert late.status_code == 201
    update_market(ctx.resolve_market(market).name, {"status": "halted"}, ctx)
    try:
        batch = settle_all(ctx, market)
    finally:
        update_market(ctx.resolve_market(market).name, {"status": "trading"}, ctx)

    assert (batch.commands, batch.trades) == (1, 0)
    order = buyer.orders()[0]
    assert (order["id"], order["status"], order["status_reason"]) == (late.json["order"]["id"], "cancelled",
                                                                      "market_halted")
    assert (buyer.balances()["USD"]["available"], buyer.balances()["USD"]["locked"]) == ("100", "0")
