"""Group commit: several requests' orders in one transaction, each accepted or refused on its own."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from orders_app.errors import InsufficientFunds, NotFound, ValidationFailed
from orders_app.messages import PlaceOrder
from orders_app.models import LedgerEntry, Order, OutboxEvent
from orders_app.services.group_commit import GroupCommitter
from orders_app.services.placing import PlacedOrder, PreparedOrder, check_order, place_batch, place_order


@pytest.fixture()
def ctx(app):
    return app.extensions["orders_service_context"]


def prepare(ctx, user_id: int, side: str = "buy", price: str = "10", quantity: str = "1", symbol: str = "BTC",
            client_order_id: str | None = None) -> PreparedOrder:
    command = PlaceOrder(user_id=user_id, side=side, symbol=symbol, price=Decimal(price),
                         quantity=Decimal(quantity), client_order_id=client_order_id)
    checked = check_order(command, ctx)
    hold = checked.price * checked.quantity if side == "buy" else checked.quantity
    return PreparedOrder(command, checked, hold)


def rows(ctx, order_ids):
    with ctx.uow() as uow:
        session = uow.session
        return (session.execute(select(Order.id, Order.market_id, Order.seq)
                                .where(Order.id.in_(order_ids)).order_by(Order.id)).all(),
                session.execute(select(OutboxEvent.market_id, OutboxEvent.seq, OutboxEvent.order_id)
                                .where(OutboxEvent.order_id.in_(order_ids))).all(),
                session.execute(select(LedgerEntry.user_id, LedgerEntry.delta_available, LedgerEntry.delta_locked)
                                .where(LedgerEntry.order_id.in_(order_ids))).all())


def test_each_order_of_a_batch_is_held_in_arrival_order_and_refused_alone(ctx, make_user):
    rich, poor = make_user("rich", USD="100", BTC="2"), make_user("poor", USD="15")
    batch = [prepare(ctx, poor.id, price="10"),              # fits: 15 -> 5 left
             prepare(ctx, rich.id, side="sell", quantity="2"),
             prepare(ctx, poor.id, price="10"),              # does not fit any more: refused
             prepare(ctx, rich.id, price="10", symbol="ETH"),
             prepare(ctx, poor.id, price="5")]               # fits the 5 left
    outcomes = place_batch(batch, ctx)

    assert [type(outcome) for outcome in outcomes] == [PlacedOrder, PlacedOrder, InsufficientFunds, PlacedOrder,
                                                       PlacedOrder]
    placed = [outcome.order for outcome in outcomes if isinstance(outcome, PlacedOrder)]
    assert all(order["status"] == "pending" for order in placed)
    assert (poor.balances()["USD"]["available"], poor.balances()["USD"]["locked"]) == ("0", "15")
    assert rich.balances()["USD"]["locked"] == "10" and rich.balances()["BTC"]["locked"] == "2"
    orders, events, ledger = rows(ctx, [order["id"] for order in placed])
    assert len(orders) == 4 and len(events) == 4 and len(ledger) == 4
    # The refused order took no sequence number: each market's numbers are consecutive, in arrival order.
    btc = sorted((order.seq, order.id) for order in orders if order.market_id == ctx.markets["BTC"].id)
    assert [seq for seq, _ in btc] == list(range(btc[0][0], btc[0][0] + 3))
    assert [order_id for _, order_id in btc] == sorted(order_id for _, order_id in btc)
    assert {(event.market_id, event.seq, event.order_id) for event in events} == {
        (order.market_id, order.seq, order.id) for order in orders}
    assert sorted((entry.delta_available, entry.delta_locked) for entry in ledger if entry.user_id == poor.id) == [
        (Decimal(-10), Decimal(10)), (Decimal(-5), Decimal(5))]


def test_an_unknown_user_in_a_batch_is_refused_with_404_and_the_rest_are_placed(ctx, make_user):
    user = make_user("known", USD="100")
    outcomes = place_batch([prepare(ctx, user.id), prepare(ctx, 10**12), prepare(ctx, user.id)], ctx)
    assert isinstance(outcomes[1], NotFound)
    assert isinstance(outcomes[0], PlacedOrder) and isinstance(outcomes[2], PlacedOrder)
    assert user.balances()["USD"]["locked"] == "20"


def test_a_client_order_id_repeated_within_one_batch_is_placed_once(ctx, make_user):
    user = make_user("repeat", USD="100")
    outcomes = place_batch([prepare(ctx, user.id, client_order_id="same-1"), prepare(ctx, user.id),
                            prepare(ctx, user.id, client_order_id="same-1")], ctx)
    first, other, repeat = outcomes
    assert first.created and other.created and not repeat.created
    assert repeat.order["id"] == first.order["id"]
    assert user.balances()["USD"]["locked"] == "20"


def test_concurrent_requests_share_transactions_and_each_gets_its_own_order(ctx, make_user):
    users = [make_user(f"group{i}", USD="1000") for i in range(4)]
    committer = GroupCommitter(ctx, batch_orders_max=64)
    batches = []
    real_commit = committer._commit

    def counting_commit(batch):
        batches.append(len(batch))
        real_commit(batch)
    committer._commit = counting_commit
    results, errors = [], []
    start = threading.Barrier(24)

    def place(index):
        user = users[index % len(users)]
        start.wait()
        try:
            placed = place_order(PlaceOrder(user_id=user.id, side="buy", symbol="BTC", price=Decimal("1"),
                                            quantity=Decimal(index + 1)), ctx, committer)
            results.append((user.id, index + 1, placed.order))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)
    threads = [threading.Thread(target=place, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    committer.stop()

    assert not errors
    assert sorted(batches, reverse=True)[0] > 1, f"no batch held more than one order: {batches}"
    assert sum(batches) == 24
    for user_id, quantity, order in results:
        assert (order["user_id"], order["quantity"]) == (user_id, Decimal(quantity))
    assert len({order["id"] for _, _, order in results}) == 24
    for index, user in enumerate(users):
        held = sum(i + 1 for i in range(24) if i % len(users) == index)
        assert Decimal(user.balances()["USD"]["locked"]) == held


def test_a_repeat_refused_for_funds_in_the_same_batch_answers_the_first_order(ctx, make_user):
    user = make_user("repeat", USD="10")  # funds for one of them only
    first, repeat = place_batch([prepare(ctx, user.id, client_order_id="same-1"),
                                 prepare(ctx, user.id, client_order_id="same-1")], ctx)

    assert isinstance(first, PlacedOrder) and first.created
    assert isinstance(repeat, PlacedOrder) and not repeat.created
    assert repeat.order == first.order
    assert (user.balances()["USD"]["available"], user.balances()["USD"]["locked"]) == ("0", "10")


def test_a_repeat_whose_first_committed_in_an_earlier_batch_answers_the_first_order(ctx, make_user):
    """The repeat passed the request thread's look-up before the first order committed (forced here by calling
    the batch directly): its batch then finds the funds gone, and must still answer the first order."""
    user = make_user("repeat", USD="10")
    [first] = place_batch([prepare(ctx, user.id, client_order_id="same-2")], ctx)
    [repeat] = place_batch([prepare(ctx, user.id, client_order_id="same-2")], ctx)

    assert isinstance(first, PlacedOrder) and first.created
    assert isinstance(repeat, PlacedOrder) and not repeat.created and repeat.order == first.order


def test_an_order_the_database_refuses_fails_alone_not_its_whole_batch(ctx, make_user):
    """A value that passed validation but not the database (here a client_order_id longer than its column,
    prepared directly) must not fail the other users' orders that share its transaction."""
    good, bad = make_user("good", USD="100"), make_user("bad", USD="100")
    outcomes = place_batch([prepare(ctx, good.id), prepare(ctx, bad.id, client_order_id="x" * 65),
                            prepare(ctx, good.id, price="20")], ctx)

    assert [type(outcome) for outcome in outcomes] == [PlacedOrder, ValidationFailed, PlacedOrder]
    assert good.balances()["USD"]["locked"] == "30"
    assert bad.balances()["USD"]["locked"] == "0"
