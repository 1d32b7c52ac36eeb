"""A hypothesis state machine that drives the real service: gunicorn (two processes) and `consumer.py`, over
HTTP, in two fresh markets per run, every outcome compared with the reference exchange
(tests/support/reference_exchange.py).

Its rules: new users, deposits, withdrawals (some insufficient), every order type (limit GTC / IOC / FOK /
post-only, market sell, market buy by quantity and by quote_quantity), orders the user cannot pay for,
self-trades, cancels of open orders and of final ones (409), repeats of a `client_order_id` one after the
other (the same body, another body, a body the funds could not cover: always 200 with the first order) and
at once from several threads (funds often covering one order only: exactly one 201, the rest 200 with that
order, never a 400), and worker restarts (SIGKILL, SIGTERM in turn) with orders, deposits and withdrawals
accepted while no worker runs.

Each command waits until the worker applied it, so the model is deterministic; an order accepted while no
worker runs is held by the model at once and matched, in acceptance order, once the new worker has caught
up. Every few steps and at the end of each run the state is checked whole: every order of the run's users
in the database, with the model's status and filled quantity (so every 201 is there and nothing else is);
every balance, available and locked; the multiset of trades; and the reconciliation of the whole database
— at the end of each run also as an operator runs it, `python -m orders_app.reconcile`.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from decimal import ROUND_DOWN, Decimal

import pytest
import requests
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from orders_app import runtime_of
from orders_app.models import Order, Trade
from orders_app.processes import ApiServer, Broker, WorkerProcess
from orders_app.reconcile import reconcile
from orders_app.services.markets import add_market
from tests.support.orders_api import amount, expected_answer, order_body
from tests.support.reconcile import reconcile_cli
from tests.support.reference_exchange import (
    FINAL_STATUSES,
    QUANTITY_STEP,
    QUOTE,
    ReferenceExchange,
    RefOrder,
    Refused,
)
from tests.support.waits import wait_market_applied, wait_until

pytestmark = pytest.mark.slow
# Bounded for CI on two busy cores, and the same runs every time (derandomize); no shrinking: each replay
# costs seconds of real processes, and a failure prints its whole program of steps anyway.
MACHINE_SETTINGS = settings(max_examples=5, stateful_step_count=30, deadline=None, derandomize=True, database=None,
                            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
CHECK_EVERY_STEPS = 6
PROPAGATION_MARGIN_S = 0.3
RESTARTS_PER_RUN_MAX = 2  # each costs seconds: a new Python process, its start-up checks, the catch-up
USERS_MAX = 5
RACE_THREADS_MAX = 6
REQUEST_TIMEOUT_S = 30
APPLY_TIMEOUT_S = 60
# A new worker joins the private broker's group within seconds; until then it applies from the database.
PROCESS_ENV = {"KAFKA_MAX_POLL_INTERVAL_MS": "3000", "KAFKA_SESSION_TIMEOUT_MS": "3000"}

USER_INDEXES = st.integers(0, USERS_MAX - 1)
MARKET_INDEXES = st.integers(0, 1)
PICKS = st.integers(0, 10**6)  # one of the candidates at the time, modulo their number
SIDES = st.sampled_from(["buy", "sell"])
PRICES = st.one_of(st.integers(990, 1010).map(lambda n: Decimal(n) / 10),
                   st.integers(9_900_000, 10_100_000).map(lambda n: Decimal(n) / 100_000))  # off the round levels
QUANTITIES = st.one_of(st.integers(1, 300).map(lambda n: Decimal(n) / 100),
                       st.integers(1, 3 * 10**8).map(lambda n: Decimal(n) / 10**8))  # down to the step
QUOTE_AMOUNTS = st.one_of(st.integers(100, 60000).map(lambda n: Decimal(n) / 100),
                          st.integers(1, 10**10).map(lambda n: Decimal(n) / 10**8))
LIMIT_KINDS = st.sampled_from(["GTC", "IOC", "FOK", "post_only"])
# What a client may do while no worker runs: whatever needs no matching to answer (a market buy by quantity
# is priced at the book, a cancel's outcome depends on the commands before it: both wait for the worker).
WHILE_DOWN = st.one_of(
    st.tuples(st.just("place_limit"), USER_INDEXES, MARKET_INDEXES, SIDES, LIMIT_KINDS, PRICES, QUANTITIES,
              st.booleans()),
    st.tuples(st.just("market_sell"), USER_INDEXES, MARKET_INDEXES, QUANTITIES, st.booleans()),
    st.tuples(st.just("market_buy_by_quote"), USER_INDEXES, MARKET_INDEXES, QUOTE_AMOUNTS, st.booleans()),
    st.tuples(st.just("withdraw_a_share_of_available"), USER_INDEXES, st.integers(0, 2), st.integers(1, 130)),
    st.tuples(st.just("deposit_some"), USER_INDEXES, st.integers(0, 2), st.integers(1, 500_000)))


def numbers(body: dict, *names: str) -> list[Decimal | None]:
    return [Decimal(body[name]) if name in body else None for name in names]


class Service:
    """gunicorn and one worker at a time, on a broker of their own; started once for the module."""

    def __init__(self):
        self.broker = Broker("broker-machine")
        self.env = {"KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap, **PROCESS_ENV}
        self.api = self.worker = None
        self.restarts = Counter()
        try:
            self.api = ApiServer("api-machine", workers=2, threads=4, **self.env)
            self.start_worker()
        except BaseException:
            self.close()
            raise

    @property
    def worker_running(self) -> bool:
        return self.worker is not None

    def start_worker(self) -> None:
        self.worker = WorkerProcess("worker-machine", **self.env)
        self.worker.wait_logged('"worker started"')

    def stop_worker(self, graceful: bool) -> None:
        worker, self.worker = self.worker, None
        if graceful:
            assert worker.stop() == 0, "the worker did not stop cleanly on SIGTERM"
        else:
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=30)
        self.restarts["SIGTERM" if graceful else "SIGKILL"] += 1

    def close(self) -> None:
        try:
            if self.worker is not None:
                self.stop_worker(graceful=True)
        finally:
            try:
                if self.api is not None:
                    self.api.stop()
            finally:
                self.broker.stop()


class ServiceMachine(RuleBasedStateMachine):
    """One run: fresh markets and users, the service as it is (its worker may have been restarted)."""

    service: Service
    ctx = None
    admin: dict
    database_url: str
    figures: Counter

    def __init__(self):
        super().__init__()
        self.symbols = ["S" + uuid.uuid4().hex[:9].upper() for _ in range(2)]
        self.market_ids = {symbol: add_market(symbol, self.ctx) for symbol in self.symbols}
        self.markets_added_at = time.monotonic()
        self.model = ReferenceExchange(self.ctx.settings.market_buy_collar_percent)
        self.http = requests.Session()
        self._wait_until_the_api_knows(self.symbols)
        self.users: dict[int, dict] = {}
        self.unapplied: list[RefOrder] = []  # accepted while no worker ran, in acceptance order
        self.with_client_id: dict[str, tuple[RefOrder, dict]] = {}  # client_order_id -> order, body
        self.steps = 0
        self.restarts = 0

    # --- plumbing ------------------------------------------------------------------------------------------

    def _wait_until_the_api_knows(self, symbols: list[str], timeout_s: float = 10) -> None:
        """API processes pick a new market and its assets up within about a second (the documented bound):
        until then a deposit of its base asset is rightly an unknown asset. Wait until the API lists them and
        that bound has passed, so every gunicorn process, not only the one answering here, knows them."""
        propagated_at = self.markets_added_at + self.ctx.MARKETS_RELOAD_INTERVAL_S + PROPAGATION_MARGIN_S

        def known() -> bool:
            url = f"{self.service.api.url}/api/assets"
            assets = {asset["symbol"] for asset in self.http.get(url, timeout=10).json()["assets"]}
            return set(symbols) <= assets and time.monotonic() >= propagated_at
        wait_until(known, timeout_s=timeout_s, what=f"the API knowing {symbols}", poll_s=0.05)

    def call(self, method: str, path: str, headers: dict, expected: int, code: str | None = None, **kwargs) -> dict:
        response = self.http.request(method, f"{self.service.api.url}{path}", headers=headers,
                                     timeout=REQUEST_TIMEOUT_S, **kwargs)
        body = response.json()
        assert response.status_code == expected, f"{method} {path} {kwargs}: {response.status_code} {body}"
        if code is not None:
            assert body["error"]["code"] == code, body
        self.figures[f"{method} {expected}"] += 1
        return body

    def user(self, index: int) -> int:
        return sorted(self.users)[index % len(self.users)]

    def symbol(self, index: int) -> str:
        return self.symbols[index]

    def wait_applied(self, symbols) -> None:
        for symbol in symbols:
            wait_market_applied(self.ctx, self.market_ids[symbol], APPLY_TIMEOUT_S, poll_s=0.005)

    def database_orders(self, ids) -> dict[int, tuple[str, Decimal]]:
        with self.ctx.uow() as uow:
            rows = uow.session.execute(select(Order.id, Order.status, Order.filled_quantity)
                                       .where(Order.id.in_(sorted(ids)))).all()
        return {row.id: (row.status, row.filled_quantity) for row in rows}

    def check_orders(self, orders) -> None:
        expected = {order.id: (order.status, order.filled) for order in orders}
        assert self.database_orders(expected) == expected

    def open_orders(self) -> list[RefOrder]:
        return [o for o in self.model.orders.values() if o.status not in FINAL_STATUSES]

    def final_orders(self) -> list[RefOrder]:
        return [o for o in self.model.orders.values() if o.status in FINAL_STATUSES]

    def resting_orders(self) -> list[RefOrder]:
        return [o for symbol in self.symbols for o in self.model.resting[symbol]]

    # --- placing -------------------------------------------------------------------------------------------

    def expected_hold(self, user: int, body: dict) -> Decimal | Refused:
        try:
            return self.model.hold_for(user, body["currency_symbol"], body["order_type"], body["type"],
                                       *numbers(body, "price", "quantity", "quote_quantity"))
        except Refused as refused:
            return refused

    def accepted(self, user: int, body: dict, answer: dict, hold: Decimal) -> RefOrder:
        """A 201: the model holds (and, with a worker running, matches) the order as the service does."""
        type_ = body["type"]
        order = RefOrder(answer["id"], user, body["currency_symbol"], body["order_type"], type_,
                         "IOC" if type_ == "market" else body["time_in_force"], body.get("post_only", False),
                         *numbers(body, "price", "quantity", "quote_quantity"), hold)
        if "client_order_id" in body:
            self.with_client_id[body["client_order_id"]] = (order, body)
        if not self.service.worker_running:
            self.model.hold(order)
            self.unapplied.append(order)
            return order
        trades_before = len(self.model.trades)
        self.model.accept(order)
        self.wait_applied([order.symbol])
        makers = [self.model.orders[t[3] if t[5] == "sell" else t[4]] for t in self.model.trades[trades_before:]]
        self.check_orders([order, *makers])
        return order

    def place(self, user: int, body: dict) -> None:
        self.figures[order_kind(body)] += 1
        hold = self.expected_hold(user, body)
        if isinstance(hold, Refused):
            self.call("POST", "/api/orders", self.users[user], hold.status, hold.code, json=body)
            return
        answer = self.call("POST", "/api/orders", self.users[user], 201, json=body)["order"]
        self.accepted(user, body, answer, hold)

    def client_order_id(self, wanted: bool) -> str | None:
        return f"c-{uuid.uuid4().hex[:12]}" if wanted else None

    # --- rules ---------------------------------------------------------------------------------------------

    @initialize()
    def three_funded_users(self):
        for _ in range(3):
            self.add_user(Decimal(5000), Decimal(50))

    @precondition(lambda self: len(self.users) < USERS_MAX)
    @rule(quote=st.integers(0, 5000).map(Decimal), base=st.integers(0, 50).map(Decimal))
    def add_user(self, quote, base):
        body = self.call("POST", "/api/admin/users", self.admin, 201, json={"name": f"machine-{uuid.uuid4().hex[:8]}"})
        user = body["user"]["id"]
        self.users[user] = {"Authorization": f"Bearer {body['api_key']}"}
        for asset, value in ((QUOTE, quote), *((symbol, base) for symbol in self.symbols)):
            if value:
                self.deposit(user, asset, value)

    def deposit(self, user: int, asset: str, value: Decimal) -> None:
        self.call("POST", "/api/admin/deposits", self.admin, 201,
                  json={"userId": user, "currency_symbol": asset, "amount": amount(value)})
        self.model.deposit(user, asset, value)

    @rule(user=USER_INDEXES, asset=st.integers(0, 2), cents=st.integers(1, 500_000))
    def deposit_some(self, user, asset, cents):
        self.deposit(self.user(user), [QUOTE, *self.symbols][asset], Decimal(cents) / 100)

    @rule(user=USER_INDEXES, asset=st.integers(0, 2), percent=st.integers(1, 130))
    def withdraw_a_share_of_available(self, user, asset, percent):
        """Above 100 % (or of nothing) it is refused: 400 INSUFFICIENT_FUNDS, nothing changes."""
        user, asset = self.user(user), [QUOTE, *self.symbols][asset]
        value = max((self.model.available(user, asset) * percent / 100).quantize(Decimal("0.01"), ROUND_DOWN),
                    Decimal("0.01"))
        expected, code = expected_answer(lambda: self.model.withdraw(user, asset, value))
        self.call("POST", "/api/admin/withdrawals", self.admin, expected, code,
                  json={"userId": user, "currency_symbol": asset, "amount": amount(value)})

    # one rule per kind of limit order: hypothesis picks among rules evenly, less so among a rule's values
    @rule(user=USER_INDEXES, market=MARKET_INDEXES, side=SIDES, price=PRICES, quantity=QUANTITIES,
          client_id=st.booleans())
    def place_limit_gtc(self, user, market, side, price, quantity, client_id):
        self.place_limit(user, market, side, "GTC", price, quantity, client_id)

    @rule(user=USER_INDEXES, market=MARKET_INDEXES, side=SIDES, tif=st.sampled_from(["IOC", "FOK"]), price=PRICES,
          quantity=QUANTITIES, client_id=st.booleans())
    def place_limit_ioc_or_fok(self, user, market, side, tif, price, quantity, client_id):
        self.place_limit(user, market, side, tif, price, quantity, client_id)

    @rule(user=USER_INDEXES, market=MARKET_INDEXES, side=SIDES, price=PRICES, quantity=QUANTITIES,
          client_id=st.booleans())
    def place_post_only(self, user, market, side, price, quantity, client_id):
        self.place_limit(user, market, side, "post_only", price, quantity, client_id)

    def place_limit(self, user, market, side, kind, price, quantity, client_id):
        self.place(self.user(user), order_body(
            self.symbol(market), side, tif="GTC" if kind == "post_only" else kind, post_only=kind == "post_only",
            price=price, quantity=quantity, client_order_id=self.client_order_id(client_id)))

    @rule(user=USER_INDEXES, market=MARKET_INDEXES, side=SIDES, price=PRICES, quantity=st.integers(1000, 5000))
    def place_unaffordable(self, user, market, side, price, quantity):
        self.place(self.user(user), order_body(self.symbol(market), side, price=price, quantity=Decimal(quantity)))

    @rule(user=USER_INDEXES, market=MARKET_INDEXES, quantity=QUANTITIES, client_id=st.booleans())
    def market_sell(self, user, market, quantity, client_id):
        self.place(self.user(user), order_body(self.symbol(market), "sell", "market", quantity=quantity,
                                                    client_order_id=self.client_order_id(client_id)))

    @rule(user=USER_INDEXES, market=MARKET_INDEXES, quantity=QUANTITIES)
    def market_buy_by_quantity(self, user, market, quantity):
        self.place(self.user(user), order_body(self.symbol(market), "buy", "market", quantity=quantity))

    @rule(user=USER_INDEXES, market=MARKET_INDEXES, quote=QUOTE_AMOUNTS, client_id=st.booleans())
    def market_buy_by_quote(self, user, market, quote, client_id):
        self.place(self.user(user), order_body(self.symbol(market), "buy", "market", quote_quantity=quote,
                                                    client_order_id=self.client_order_id(client_id)))

    @precondition(lambda self: self.resting_orders())
    @rule(pick=PICKS, quantity=QUANTITIES, kind=st.sampled_from(["GTC", "IOC", "FOK"]))
    def trade_with_own_resting_order(self, pick, quantity, kind):
        resting = self.resting_orders()
        own = resting[pick % len(resting)]
        self.figures["self-trade"] += 1
        self.place(own.user, order_body(own.symbol, "sell" if own.side == "buy" else "buy", tif=kind,
                                             price=own.price, quantity=quantity))

    @precondition(lambda self: self.open_orders())
    @rule(pick=PICKS)
    def cancel_open_order(self, pick):
        orders = self.open_orders()
        order = orders[pick % len(orders)]
        self.call("DELETE", f"/api/orders/{order.id}", self.users[order.user], 202)
        self.model.cancel(order.id)
        self.wait_applied([order.symbol])
        self.check_orders([order])

    @precondition(lambda self: self.final_orders())
    @rule(pick=PICKS)
    def cancel_final_order_is_409(self, pick):
        orders = self.final_orders()
        order = orders[pick % len(orders)]
        self.call("DELETE", f"/api/orders/{order.id}", self.users[order.user], 409, "ORDER_NOT_CANCELLABLE")

    @precondition(lambda self: self.with_client_id)
    @rule(pick=PICKS, variant=st.sampled_from(["same body", "another body", "unaffordable body"]))
    def repeat_client_order_id(self, pick, variant):
        """A repeat answers 200 with the first order, whatever its body, and changes nothing."""
        order, body = list(self.with_client_id.values())[pick % len(self.with_client_id)]
        if variant == "another body":
            body = order_body(self.symbols[1 - self.symbols.index(order.symbol)], "buy", price=Decimal("1"),
                                   quantity=Decimal("0.5"), client_order_id=body["client_order_id"])
        elif variant == "unaffordable body":
            body = order_body(order.symbol, order.side, price=Decimal("1000"), quantity=Decimal("100000"),
                                   client_order_id=body["client_order_id"])
        seen = self.call("POST", "/api/orders", self.users[order.user], 200, json=body)["order"]
        assert seen["id"] == order.id, (seen, order)
        assert (seen["status"], Decimal(seen["filled_quantity"])) == (order.status, order.filled), (seen, order)

    @rule(user=USER_INDEXES, market=MARKET_INDEXES, threads=st.integers(2, RACE_THREADS_MAX),
          percent=st.integers(55, 140), price=PRICES)
    def concurrent_repeats_of_one_client_order_id(self, user, market, threads, percent, price):
        """Several threads send one order at once, its hold a share of what the user has: above half, the
        funds cover one only. Exactly one 201 and the rest 200 with that order; or all refused alike."""
        user, symbol = self.user(user), self.symbol(market)
        quantity = max((self.model.available(user, QUOTE) * percent / 100 / price).quantize(QUANTITY_STEP, ROUND_DOWN),
                       QUANTITY_STEP)
        body = order_body(symbol, "buy", price=price, quantity=quantity, client_order_id=self.client_order_id(True))
        hold = self.expected_hold(user, body)
        answers = race(f"{self.service.api.url}/api/orders", self.users[user], body, threads)
        statuses = Counter(status for status, _ in answers)
        self.figures[f"race of {threads}: {dict(sorted(statuses.items()))}"] += 1
        if isinstance(hold, Refused):
            assert statuses == {hold.status: threads}, answers
            assert {answer["error"]["code"] for _, answer in answers} == {hold.code}, answers
            return
        assert statuses == {201: 1, 200: threads - 1}, answers
        assert len({answer["order"]["id"] for _, answer in answers}) == 1, answers
        self.accepted(user, body, next(answer["order"] for status, answer in answers if status == 201), hold)

    @precondition(lambda self: self.restarts < RESTARTS_PER_RUN_MAX)
    @rule(while_down=st.lists(WHILE_DOWN, max_size=4))
    def restart_the_worker(self, while_down):
        """SIGKILL and SIGTERM in turn (SIGTERM: it must exit 0); orders accepted meanwhile are held, not
        matched. The new worker catches up: it matches them in acceptance order, as the model does."""
        started = time.monotonic()
        self.restarts += 1
        self.service.stop_worker(graceful=sum(self.service.restarts.values()) % 2 == 1)
        for command, *arguments in while_down:
            getattr(self, command)(*arguments)
        self.service.start_worker()
        self.apply_what_the_new_worker_caught_up()
        self.figures["seconds restarting"] += time.monotonic() - started

    def apply_what_the_new_worker_caught_up(self) -> None:
        self.wait_applied(self.symbols)
        unapplied, self.unapplied = self.unapplied, []
        for order in unapplied:
            self.model.apply(order)
        self.check_orders(self.model.orders.values())

    # --- the whole state -----------------------------------------------------------------------------------

    @invariant()
    def every_few_steps_the_whole_state_equals_the_model_and_reconciles(self):
        self.steps += 1
        self.figures["steps"] += 1
        if self.steps % CHECK_EVERY_STEPS == 0:
            self.check_everything()

    def teardown(self):
        try:
            if not self.service.worker_running:  # a restart failed
                self.service.start_worker()
            elif sys.exc_info()[0] is None:  # after a failed step, report that, not what follows from it
                self.check_everything()
                reconcile_cli(self.database_url)  # as an operator runs it, once a run
        finally:
            self.http.close()

    def check_everything(self) -> None:
        started = time.monotonic()
        self.wait_applied(self.symbols)
        with self.ctx.uow() as uow:
            orders = dict(uow.session.execute(select(Order.id, Order.status).where(
                Order.user_id.in_(sorted(self.users)))).all())
            trades = Counter(tuple(row) for row in uow.session.execute(
                select(Trade.market_id, Trade.price, Trade.quantity, Trade.buy_order_id, Trade.sell_order_id,
                       Trade.taker_side).where(Trade.market_id.in_(sorted(self.market_ids.values())))))
        assert set(orders) == set(self.model.orders), "the database's orders are not the 201 answers"
        self.check_orders(self.model.orders.values())
        assert trades == Counter((self.market_ids[t[0]], *t[1:]) for t in self.model.trades)
        for user, headers in self.users.items():
            balances = {b["currency_symbol"]: (Decimal(b["available"]), Decimal(b["locked"]))
                        for b in self.call("GET", f"/api/balances/{user}", headers, 200)["balances"]}
            for asset in {QUOTE, *self.symbols} | set(balances):
                expected = tuple(self.model.balances[(user, asset)])
                assert balances.get(asset, (0, 0)) == expected, f"user {user} {asset}: {balances.get(asset)}"
        with self.ctx.uow() as uow:
            report = reconcile(uow.session)
        assert report.ok, report.render()
        self.figures["whole-state checks"] += 1
        self.figures["seconds checking"] += time.monotonic() - started


def order_kind(body: dict) -> str:
    if body["type"] == "limit":
        return f"limit {'post-only' if body['post_only'] else body['time_in_force']}"
    return f"market {body['order_type']}" + (" by quote" if "quote_quantity" in body else "")


def race(url: str, headers: dict, body: dict, threads: int) -> list[tuple[int, dict]]:
    """`threads` identical POSTs released at once, each on a connection of its own."""
    barrier = threading.Barrier(threads)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def send():
        with requests.Session() as session:
            session.get(url.rsplit("/api/", 1)[0] + "/health", timeout=REQUEST_TIMEOUT_S)  # connected before the start
            barrier.wait(timeout=REQUEST_TIMEOUT_S)
            response = session.post(url, headers=headers, json=body, timeout=REQUEST_TIMEOUT_S)
        with lock:
            answers.append((response.status_code, response.json()))

    workers = [threading.Thread(target=send, name=f"race-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=REQUEST_TIMEOUT_S * 2)
    assert len(answers) == threads, f"{threads - len(answers)} racing requests got no answer"
    return answers


@pytest.fixture(scope="module")
def service(stack_env):
    running = Service()
    yield running
    running.close()


def test_the_service_driven_by_a_state_machine_always_equals_the_model_and_reconciles(service, app, admin_headers,
                                                                                       stack_env):
    figures = Counter()
    machine = type("Machine", (ServiceMachine,), {
        "service": service, "ctx": runtime_of(app).ctx, "admin": admin_headers,
        "database_url": stack_env["DATABASE_URL"], "figures": figures})
    started = time.monotonic()
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    print(f"\nstate machine: {time.monotonic() - started:.1f}s, worker stops {dict(service.restarts)}, "
          f"{ {name: round(value, 1) for name, value in sorted(figures.items())} }")
    assert figures["whole-state checks"] >= MACHINE_SETTINGS.max_examples
    assert service.restarts["SIGKILL"] and service.restarts["SIGTERM"], "no worker was restarted"
    # the fixed seed's runs cover what this test is for (a change of rules or settings could lose some)
    kinds = {"limit GTC", "limit IOC", "limit FOK", "limit post-only", "market sell", "market buy",
             "market buy by quote"}
    assert kinds <= set(figures), f"order kinds never placed: {kinds - set(figures)}"
    assert figures["self-trade"] and figures["DELETE 202"] and figures["DELETE 409"] and figures["POST 200"], figures
    assert any(name.startswith("race of") and "201" in name for name in figures), figures
