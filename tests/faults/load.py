"""A bounded concurrent order load through the real HTTP API, and the checks every fault test ends with.

`OrderLoad` runs a few client threads that place limit orders (each with a unique `client_order_id`, so a
request whose answer was lost can still be looked up) until it is stopped or has sent `orders_max`.
`account_for` proves, against the database, that every order answered `201` is there, applied by the
worker (matched or resting) and published, and that an order whose request failed is wholly there or
wholly absent.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from orders_app.models import MarketState, Order, OutboxEvent
from orders_app.processes import ApiServer, WorkerProcess
from orders_app.repositories import outbox
from tests.support.waits import wait_until

REQUEST_TIMEOUT_S = 30
# Quick recovery for fault tests: Kafka calls give up after 1 s, unpublished outbox rows are republished
# by the worker's relay after 3 s (the smallest grace the config allows for that timeout), and a consumer
# group join takes 3 s on the memory broker.
FAST_RECOVERY = {"KAFKA_REQUEST_TIMEOUT_MS": "1000", "OUTBOX_SWEEP_GRACE_MS": "3000",
                 "KAFKA_MAX_POLL_INTERVAL_MS": "3000"}
PRICES = [f"{whole}.{tenth}" for whole in range(98, 103) for tenth in range(10)]


@dataclass
class Outcome:
    client_order_id: str
    user_id: int
    status: int | None  # None: the connection failed (reset, refused) before an answer
    body: dict | None = None
    retry_after: str | None = None
    error: str | None = None


@dataclass
class LoadUser:
    id: int
    headers: dict


def make_users(api_url: str, admin_headers: dict, count: int, deposits: dict[str, str], tag: str) -> list[LoadUser]:
    users = []
    for n in range(count):
        response = requests.post(f"{api_url}/api/admin/users", json={"name": f"{tag}-{n}"},
                                 headers=admin_headers, timeout=REQUEST_TIMEOUT_S)
        assert response.status_code == 201, response.text
        user = LoadUser(response.json()["user"]["id"], {"Authorization": f"Bearer {response.json()['api_key']}"})
        for asset, amount in deposits.items():
            funded = requests.post(f"{api_url}/api/admin/deposits", headers=admin_headers, timeout=REQUEST_TIMEOUT_S,
                                   json={"userId": user.id, "currency_symbol": asset, "amount": amount})
            assert funded.status_code == 201, funded.text
        users.append(user)
    return users


class OrderLoad:
    """`threads` clients placing orders in `symbol` as fast as the API answers, `orders_max` at most."""

    def __init__(self, api_url: str, users: list[LoadUser], symbol: str, *, tag: str, threads: int = 6,
                 orders_max: int = 5000, seed: int = 1):
        self.api_url, self.users, self.symbol, self.tag = api_url, users, symbol, tag
        self.orders_max = orders_max
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self._threads = [threading.Thread(target=self._run, args=(n, random.Random(seed * 1000 + n)),
                                          name=f"load-{n}", daemon=True) for n in range(threads)]

    def start(self) -> "OrderLoad":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a load thread hangs"

    def _next_number(self) -> int | None:
        with self._lock:
            if self._sent >= self.orders_max:
                return None
            self._sent += 1
            return self._sent

    def _run(self, thread_no: int, rng: random.Random) -> None:
        with requests.Session() as session:
            self._send_until_stopped(session, rng)

    def _send_until_stopped(self, session: requests.Session, rng: random.Random) -> None:
        while not self._stop.is_set():
            number = self._next_number()
            if number is None:
                return
            user = rng.choice(self.users)
            outcome = Outcome(f"{self.tag}-{number}", user.id, None)
            try:
                response = session.post(f"{self.api_url}/api/orders", headers=user.headers, timeout=REQUEST_TIMEOUT_S,
                                        json={"order_type": rng.choice(["buy", "sell"]), "currency_symbol": self.symbol,
                                              "price": rng.choice(PRICES),
                                              "quantity": f"{rng.randint(1, 100) / 100:.2f}",
                                              "client_order_id": outcome.client_order_id})
                outcome.status = response.status_code
                outcome.retry_after = response.headers.get("Retry-After")
                try:
                    outcome.body = response.json()
                except ValueError:
                    outcome.error = f"not JSON: {response.text[:200]!r}"
            except requests.RequestException as error:
                outcome.error = type(error).__name__
                session.close()  # a reset connection: the next request opens a new one
                time.sleep(0.05)  # a client backing off from a failed request, not a busy loop
            with self._lock:
                self.outcomes.append(outcome)
            if outcome.status == 503:
                time.sleep(0.05)  # a client honouring the outage, not a busy loop

    # --- figures -------------------------------------------------------------------------------------

    def by_status(self) -> Counter:
        return Counter("no answer" if o.status is None else o.status for o in self.outcomes)

    def accepted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 201]

    def accepted_count(self) -> int:
        with self._lock:
            return sum(1 for o in self.outcomes if o.status == 201)


def assert_no_server_errors_but_503(load: OrderLoad) -> None:
    """Every answer is a 201, or a 503 in the error shape with Retry-After — SERVICE_UNAVAILABLE (nothing
    recorded) or ORDER_STATUS_UNKNOWN (the database went away during the commit: recorded or not, which
    `account_for` checks is whole either way); never a 500 or a bare page."""
    for outcome in load.outcomes:
        if outcome.status is None or outcome.status == 201:
            continue
        assert outcome.status == 503, f"{outcome.client_order_id}: {outcome.status} {outcome.body or outcome.error}"
        assert outcome.body and outcome.body["error"]["code"] in ("SERVICE_UNAVAILABLE", "ORDER_STATUS_UNKNOWN"), \
            outcome
        assert outcome.body["error"]["message"], outcome
        assert outcome.retry_after and outcome.retry_after.isdigit(), outcome


def wait_published(engine, order_ids: set[int], timeout_s: float) -> float:
    """Until the `order_placed` event of each order is published (stamped by the API's publisher, or below
    the relay's saved position); returns the seconds it took."""
    started = time.monotonic()
    while True:
        with Session(engine) as session:
            through = outbox.published_through(session)
            unpublished = {order_id for (order_id,) in session.execute(
                select(OutboxEvent.order_id).where(OutboxEvent.event_type == "order_placed",
                                                   OutboxEvent.published_at.is_(None),
                                                   OutboxEvent.id > through))} & order_ids
        if not unpublished:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{len(unpublished)} orders never published, e.g. {sorted(unpublished)[:10]}")
        time.sleep(0.2)  # between two reads of the outbox


@dataclass
class Accounting:
    accepted: int = 0
    failed_present: int = 0
    failed_absent: int = 0
    statuses: Counter = field(default_factory=Counter)


def account_for(engine, load: OrderLoad) -> Accounting:
    """Every 201-answered order is in the database as answered and applied by the worker (matched, or
    resting in the book); an order whose request failed (no answer, 503) is present or absent, not half."""
    figures = Accounting()
    with Session(engine) as session:
        user_ids = sorted({u.id for u in load.users})
        rows = {row.client_order_id: row for row in session.execute(
            select(Order).where(Order.user_id.in_(user_ids), Order.client_order_id.like(f"{load.tag}-%"))).scalars()}
        applied = dict(session.execute(select(MarketState.market_id, MarketState.last_seq)).all())
        commands = Counter(order_id for (order_id,) in session.execute(
            select(OutboxEvent.order_id).where(OutboxEvent.event_type == "order_placed",
                                               OutboxEvent.order_id.in_([r.id for r in rows.values()] or [0]))))
    for outcome in load.outcomes:
        row = rows.get(outcome.client_order_id)
        if outcome.status == 201:
            assert row is not None, f"order {outcome.client_order_id} answered 201 is not in the database"
            assert row.id == outcome.body["order"]["id"] and row.user_id == outcome.user_id
            figures.accepted += 1
        elif row is None:
            figures.failed_absent += 1
            continue
        else:
            figures.failed_present += 1
        assert commands[row.id] == 1, f"order {row.id} has {commands[row.id]} placement commands"
        assert row.seq <= applied[row.market_id], f"order {row.id} (seq {row.seq}) never reached the worker"
        figures.statuses[row.status] += 1
    assert len(rows) == figures.accepted + figures.failed_present, "orders in the database nobody sent"
    return figures


def engine_for(database_url: str):
    return create_engine(database_url, pool_pre_ping=True, isolation_level="READ COMMITTED")


class System:
    """A real gunicorn API and a real `consumer.py` on the given database/broker, users funded through the
    API, and an order load ready to start; `close()` stops all of it (asserting the worker stops cleanly)."""

    def __init__(self, name: str, admin_headers: dict, symbol: str, deposits: dict[str, str], *, threads: int = 6,
                 seed: int = 1, **env: str):
        self.api = self.worker = self.load = None
        try:
            self.api = ApiServer(f"api-{name}", **{**FAST_RECOVERY, **env})  # a test's own env wins
            self.worker = WorkerProcess(f"worker-{name}", **{**FAST_RECOVERY, **env})
            self.worker.wait_logged('"worker started"')  # it passed its start-up checks: faults may begin
            users = make_users(self.api.url, admin_headers, 4, deposits, name)
        except BaseException:
            self.close()
            raise
        self.load = OrderLoad(self.api.url, users, symbol, tag=f"{name}-{uuid.uuid4().hex[:8]}", threads=threads,
                              seed=seed)

    def wait_accepted(self, count: int, timeout_s: float = 90) -> None:
        wait_until(lambda: self.load.accepted_count() >= count, timeout_s=timeout_s, poll_s=0.05,
                   what=lambda: f"{count} orders accepted (got {self.load.accepted_count()})")

    def close(self) -> None:
        """Stop the load, the worker and the API — all of them, whatever fails — then report a failure."""
        worker_exit = 0
        try:
            if self.load is not None:
                self.load.stop()
        finally:
            try:
                if self.worker is not None:
                    worker_exit = self.worker.stop()
            finally:
                if self.api is not None:
                    self.api.stop()
        assert worker_exit == 0, "the worker did not stop cleanly"
