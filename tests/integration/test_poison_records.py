"""Untrusted records on `order-events` and commands the engine cannot take never stop a market.

A record the worker cannot read, or whose content differs from the database's command of its sequence,
is set aside (logged, counted, copied to `order-events.dlq` with the reason in a header) and the market
goes on with the database's commands. An order the engine cannot take is rejected with its hold released.
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from orders_app.models import Order
from orders_app.processes import WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.repositories import settlement
from orders_app.services.markets import add_market
from tests.support.book import Book, balances
from tests.support.kafka import DeadLetters, forged_command, produce, reason_of, wait_consumed
from tests.support.metrics import scrape
from tests.support.waits import wait_market_applied

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker(stack_env):
    # A group of its own: on the test broker a group whose members were killed may never form again, and
    # these tests need the worker to read the topic (the catch-up from the database would hide a record).
    group = f"poison-{uuid.uuid4().hex[:8]}"
    process = WorkerProcess("worker-poison", KAFKA_MAX_POLL_INTERVAL_MS="3000", KAFKA_CONSUMER_GROUP=group)
    process.wait_logged('"partitions assigned"')
    # A new group reads the topic from its start, other tests' bad records included: the counts these tests
    # compare start once the worker has caught up.
    wait_consumed(stack_env["KAFKA_BOOTSTRAP_SERVERS"], group)
    yield process
    assert process.stop() == 0


@pytest.fixture()
def dead_letters(stack_env):
    reader = DeadLetters(stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    yield reader
    reader.close()


def new_book(client, ctx, **steps) -> Book:
    symbol = "P" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx, **steps)
    return Book(client, ctx, symbol)


def settle(book: Book) -> int:
    return wait_market_applied(book.ctx, book.ctx.resolve_market(book.symbol).id)


def status_of(ctx, order_id: int) -> tuple[str, str | None]:
    """Status and reason as the database has them (the API shows no reason)."""
    with ctx.uow() as uow:
        return tuple(uow.session.execute(select(Order.status, Order.status_reason).where(Order.id == order_id)).one())


def poison_count(worker) -> float:
    return sum(value for (name, _), value in scrape(worker.metrics_url).items()
               if name == "orders_worker_poison_records_total")


@pytest.fixture(autouse=True)
def reconciled(ctx):
    yield
    with ctx.uow() as uow:
        report = reconcile(uow.session)
    assert report.ok, report.render()


def test_unreadable_records_are_set_aside_to_the_dlq_and_matching_goes_on(stack_env, client, ctx, worker,
                                                                            dead_letters, make_user):
    book = new_book(client, ctx)
    tag = uuid.uuid4().hex[:8]
    poison = {
        f"{tag}-deep".encode(): b"[" * 100_000,
        f"{tag}-exponent".encode(): b'{"type": "order_placed", "version": 1, "seq": 1e9999999999999999999}',
        f"{tag}-garbage".encode(): bytes(range(256)),
        f"{tag}-list".encode(): b"[1, 2, 3]",
        f"{tag}-bool-version".encode(): forged_command(book.symbol, 1, 1, 1, "order_placed").replace(
            b'"version": 1', b'"version": true'),
    }
    counted_before = poison_count(worker)
    produce(stack_env["KAFKA_BOOTSTRAP_SERVERS"], list(poison.items()))
    seller, buyer = make_user("s", **{book.symbol: "1"}), make_user("b", USD="100")
    book.place(seller, order_type="sell", price="10", quantity="1")
    book.place(buyer, order_type="buy", price="10", quantity="0.5")

    found = dead_letters.wait_for(set(poison), worker)
    settle(book)
    assert [len(records) for records in found.values()] == [1] * len(poison)
    assert {key: reason_of(records[0]) for key, records in found.items()} == {
        f"{tag}-deep".encode(): "undecodable", f"{tag}-exponent".encode(): "undecodable",
        f"{tag}-garbage".encode(): "undecodable", f"{tag}-list".encode(): "invalid_field",
        f"{tag}-bool-version".encode(): "unsupported_version"}
    assert all(found[key][0].value == value for key, value in poison.items())
    assert len(book.trades()) == 1 and balances(buyer, book.symbol)[0] == "0.5"
    assert poison_count(worker) - counted_before == len(poison)
    assert worker.process.poll() is None


def _wait_applied_or_set_aside(ctx, market_id: int, seq: int, dead_letters: DeadLetters, key: bytes, worker):
    """Until the worker either applied `seq` (what it did before it checked records) or set the record aside."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with ctx.uow() as uow:
            if settlement.applied_seqs(uow.session).get(market_id, 0) >= seq:
                return
        if dead_letters.by_key({key})[key]:
            return
        assert worker.process.poll() is None, f"the worker exited; see {worker.log_path}"
        dead_letters.poll()
    raise AssertionError("the forged record was neither applied nor set aside")


@pytest.mark.parametrize("forgery", ["cancel_of_a_resting_order", "placement_of_another_markets_order"])
def test_a_record_that_differs_from_the_database_is_set_aside_and_the_databases_command_applies(
        forgery, stack_env, client, ctx, worker, dead_letters, make_user):
    book, other = new_book(client, ctx), new_book(client, ctx)
    maker = make_user("m", **{book.symbol: "1", other.symbol: "1"})
    resting = book.place(maker, order_type="sell", price="10", quantity="1")
    foreign = other.place(maker, order_type="sell", price="10", quantity="1")
    next_seq = settle(book) + 1
    settle(other)
    market_id = ctx.resolve_market(book.symbol).id
    key = f"forged-{uuid.uuid4().hex[:8]}".encode()
    record = (forged_command(book.symbol, market_id, next_seq, resting, "cancel_requested")
              if forgery == "cancel_of_a_resting_order"
              else forged_command(book.symbol, market_id, next_seq, foreign, "order_placed"))
    produce(stack_env["KAFKA_BOOTSTRAP_SERVERS"], [(key, record)])
    _wait_applied_or_set_aside(ctx, market_id, next_seq, dead_letters, key, worker)

    buyer = make_user("b", USD="100")
    genuine = book.place(buyer, order_type="buy", price="10", quantity="0.25")  # takes seq next_seq
    settle(book)
    assert book.order(buyer, genuine)["status"] == "completed"
    assert book.order(maker, resting)["status"] == "partially_filled"
    assert other.order(maker, foreign)["status"] == "pending"
    assert book.depth() == ([], [("10", "0.75")]) and other.depth() == ([], [("10", "1")])
    found = dead_letters.wait_for({key}, worker)
    assert len(found[key]) == 1 and reason_of(found[key][0]) == "differs_from_database"


def test_a_market_buy_by_quote_finer_than_the_markets_quote_unit_completes_and_releases_the_dust(
        client, ctx, worker, make_user):
    book = new_book(client, ctx, price_step=Decimal("0.01"))  # price x quantity steps: units of 1e-10
    seller, buyer = make_user("s", **{book.symbol: "1"}), make_user("b", USD="100")
    book.place(seller, order_type="sell", price="100", quantity="1")
    order = book.place(buyer, order_type="buy", type="market", quote_quantity="1.00000000000001")
    # not one unit of price step x quantity step: it could buy nothing, so the API refuses it at once
    dust = buyer.place(currency_symbol=book.symbol, order_type="buy", type="market",
                       quote_quantity="0.00000000000001")
    assert (dust.status_code, dust.json["error"]["field"]) == (400, "quote_quantity")
    later = book.place(buyer, order_type="buy", price="99", quantity="0.01")
    settle(book)
    assert (book.order(buyer, order)["status"], book.order(buyer, order)["filled_quantity"]) == ("completed", "0.01")
    assert book.order(buyer, later)["status"] == "pending"
    assert balances(buyer, "USD") == ("99", "98.01", "0.99")


def test_an_order_the_engine_cannot_take_is_rejected_with_its_hold_released_and_its_market_goes_on(
        client, ctx, worker, make_user):
    book = new_book(client, ctx)
    seller = make_user("s", **{book.symbol: "2"})
    # A price finer than the market's step, as a row edited by hand or a step changed under resting orders
    # would have: the API is made to accept it by a step it believes is finer.
    spec = ctx.resolve_market(book.symbol)
    ctx.markets = ctx.markets | {spec.name: dataclasses.replace(spec, price_step=Decimal("0.000000001"))}
    ctx._reloaded_at = time.monotonic() + 60
    try:
        off_step = book.place(seller, order_type="sell", price="10.000000001", quantity="1")
    finally:
        ctx.reload_markets(force=True)
    later = book.place(seller, order_type="sell", price="10", quantity="1")
    settle(book)
    assert status_of(ctx, off_step) == ("rejected", "unprocessable")
    assert book.order(seller, later)["status"] == "pending"
    assert balances(seller, book.symbol) == ("2", "1", "1")
