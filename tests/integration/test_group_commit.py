"""Group commit: several requests' orders in one transaction, each accepted or refused on its own."""
from __future__ import annotations

import dataclasses
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from orders_app.errors import (
    InsufficientFunds,
    NotFound,
    OrderStatusUnknown,
    TooManyOpenOrders,
    ValidationFailed,
)
from orders_app.messages import PlaceOrder
from orders_app.models import LedgerEntry, Order, OutboxEvent
from orders_app.services import group_commit
from orders_app.services.group_commit import GroupCommitter
from orders_app.services.placing import (
    PlacedOrder,
    PreparedOrder,
    check_order,
    place_batch,
    place_order,
)
from orders_app.unit_of_work import UnitOfWork
from tests.support.waits import wait_until


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
    btc = sorted((order.seq, order.id) for order in orders if order.market_id == ctx.resolve_market("BTC").id)
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


def test_a_batch_that_outlives_the_wait_answers_status_unknown_and_a_retry_finds_the_order(
        ctx, make_user, monkeypatch):
    user = make_user("slow", USD="100")
    batch_may_finish = threading.Event()

    def slow_place_batch(batch, ctx_):
        batch_may_finish.wait(10)
        return place_batch(batch, ctx_)

    monkeypatch.setattr(group_commit, "place_batch", slow_place_batch)
    monkeypatch.setattr(group_commit, "WAIT_TIMEOUT_S", 0.2)
    committer = GroupCommitter(ctx, batch_orders_max=8)
    prepared = prepare(ctx, user.id, client_order_id="late-1")
    try:
        with pytest.raises(OrderStatusUnknown) as refused:
            committer.submit(prepared)
        assert (refused.value.status, refused.value.retry_after_s) == (503, 1)
    finally:
        batch_may_finish.set()
        committer.stop()
    retried = place_order(prepared.command, ctx)  # the safe retry: same client_order_id
    assert not retried.created and retried.order["client_order_id"] == "late-1"
    assert user.balances()["USD"]["locked"] == "10"


def test_a_connection_lost_during_commit_answers_status_unknown_and_the_retry_is_safe(
        app, client, ctx, make_user, monkeypatch):
    user = make_user("lost", USD="100")
    real_commit = UnitOfWork.commit
    killed = []

    def commit_on_a_killed_connection(uow):
        if not killed:
            connection_id = uow.session.execute(text("SELECT CONNECTION_ID()")).scalar()
            with ctx.uow() as other:
                other.session.execute(text(f"KILL CONNECTION {int(connection_id)}"))
            killed.append(connection_id)
        return real_commit(uow)

    monkeypatch.setattr(UnitOfWork, "commit", commit_on_a_killed_connection)
    body = {"order_type": "buy", "currency_symbol": "BTC", "price": "10", "quantity": "1",
            "client_order_id": "lost-commit-1"}
    response = user.place(**body)
    monkeypatch.undo()

    assert killed and response.status_code == 503, response.json
    assert response.json["error"]["code"] == "ORDER_STATUS_UNKNOWN" and response.headers["Retry-After"] == "1"
    retried = user.place(**body)
    assert retried.status_code in (200, 201), retried.json
    assert len([order for order in user.orders() if order["client_order_id"] == "lost-commit-1"]) == 1


def test_an_exhausted_connection_pool_answers_503_not_500(app, client, admin_headers, monkeypatch):
    from orders_app.extensions import db
    with app.app_context():
        pool = db.engine.pool
        monkeypatch.setattr(pool, "_timeout", 0.2)
        held = []
        try:
            while pool.checkedout() < pool.size() + pool._max_overflow:
                held.append(db.engine.connect())
            response = client.post("/api/admin/users", json={}, headers=admin_headers)
            assert response.status_code == 503 and response.json["error"]["code"] == "SERVICE_UNAVAILABLE"
        finally:
            for connection in held:
                connection.close()


def test_a_user_at_the_open_order_cap_is_refused_until_an_order_ends(ctx, make_user, monkeypatch):
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, max_open_orders_per_user=3))
    user, other = make_user("capped", USD="100"), make_user("other", USD="100")
    outcomes = place_batch([prepare(ctx, user.id, price="1") for _ in range(4)] + [prepare(ctx, other.id)], ctx)

    assert [type(outcome) for outcome in outcomes] == [PlacedOrder] * 3 + [TooManyOpenOrders, PlacedOrder]
    assert (outcomes[3].status, outcomes[3].code) == (400, "TOO_MANY_OPEN_ORDERS")
    [later] = place_batch([prepare(ctx, user.id, price="1")], ctx)  # a later batch counts the committed ones
    assert isinstance(later, TooManyOpenOrders)
    assert user.balances()["USD"]["locked"] == "3"


def test_concurrent_batches_never_place_more_than_the_cap_for_one_user(ctx, make_user, monkeypatch):
    """Buys hold USD and sells hold BTC: no account lock is shared, only the user's row."""
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, max_open_orders_per_user=5))
    user = make_user("capped", USD="1000", BTC="10")
    results: list = []

    def place(side: str) -> None:
        for _ in range(5):
            results.extend(place_batch([prepare(ctx, user.id, side=side, price="10" if side == "buy" else "20",
                                                quantity="0.1")], ctx))

    threads = [threading.Thread(target=place, args=(side,)) for side in ("buy", "sell")]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    assert sum(isinstance(outcome, PlacedOrder) for outcome in results) == 5
    assert len([order for order in user.orders() if order["status"] == "pending"]) == 5


def test_repeats_that_looked_up_their_id_before_either_was_inserted_answer_one_order(ctx, make_user):
    """Two batches with one client_order_id both look it up before either inserted it (READ COMMITTED locks no
    gap, so the look-up waits for nothing), then queue for the account's lock, held here by a third transaction.
    Whichever gets the lock first places the order; the other, finding the funds gone, must answer that order
    (200), not INSUFFICIENT_FUNDS. Found by the service state machine (a race of three repeats got a 400)."""
    user = make_user("repeat", USD="10")  # funds for one of them only
    outcomes = []
    with ctx.uow() as holder:
        holder.session.execute(text("SELECT available FROM accounts WHERE user_id = :user AND asset = 'USD' "
                                    "FOR UPDATE"), {"user": user.id})
        racers = [threading.Thread(target=lambda: outcomes.extend(
            place_batch([prepare(ctx, user.id, client_order_id="same-3")], ctx))) for _ in range(2)]
        for racer in racers:
            racer.start()
        wait_locking_accounts(ctx, 2)  # both looked the id up and now wait for the account
    for racer in racers:
        racer.join(timeout=30)

    assert [type(outcome) for outcome in outcomes] == [PlacedOrder, PlacedOrder], outcomes
    assert sorted(outcome.created for outcome in outcomes) == [False, True]
    assert outcomes[0].order == outcomes[1].order
    assert (user.balances()["USD"]["available"], user.balances()["USD"]["locked"]) == ("0", "10")


def wait_locking_accounts(ctx, count: int, timeout_s: float = 10) -> None:
    """Until `count` connections are inside the accounts' locking read (here: waiting for its lock)."""
    def waiting() -> int:
        with ctx.uow() as uow:
            return uow.session.execute(text(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                "AND INFO LIKE '%JOIN accounts a %FOR UPDATE'")).scalar()
    wait_until(lambda: waiting() >= count, timeout_s=timeout_s, poll_s=0.01,
               what=lambda: f"{count} connections waiting for the accounts' lock ({waiting()} now)")


def test_a_requests_orders_enter_one_transaction_together_in_order_even_past_the_batch_bound(ctx, make_user):
    user = make_user("grouped", USD="1000")
    committer = GroupCommitter(ctx, batch_orders_max=2)
    batches = []
    real_commit = committer._commit

    def counting_commit(batch):
        batches.append(len(batch))
        real_commit(batch)
    committer._commit = counting_commit
    try:
        outcomes = committer.submit_many([prepare(ctx, user.id, price=str(price)) for price in range(1, 6)])
    finally:
        committer.stop()
    assert batches == [5]
    assert [outcome.order["price"] for outcome in outcomes] == [Decimal(price) for price in range(1, 6)]
    ids = [outcome.order["id"] for outcome in outcomes]
    assert ids == sorted(ids) and user.balances()["USD"]["locked"] == "15"
