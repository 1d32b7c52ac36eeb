"""The soak's clients, and the journal of every answer they got.

`OrderFlow` is a paced load of many users through HTTP: every order type (each with a `client_order_id`),
repeats of earlier ids, cancels of resting orders, deposits and withdrawals (some refused for funds). A
placement that met a `503` or no answer is retried with the same id, as the API tells clients to do.
`FirstCreditRaces` runs rounds of the first-credit race: fresh users who never held the quote asset sell
to one taker while their first quote deposits land. `Journal` records every answer and every order.
"""
from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import requests

from tests.faults.load import LoadUser

REQUEST_TIMEOUT_S = 30
PLACE_RETRY_WINDOW_S = 60.0  # a client keeps retrying through a database restart for this long
PACE_SLACK_S = 1.0  # a thread further behind its schedule starts afresh instead of bursting
RECENT_ORDERS_MAX = 50  # per trader: what cancels and repeats pick from
ORDER_KINDS = {"limit GTC": 40, "limit IOC": 12, "limit FOK": 8, "post-only": 8, "market sell": 8,
               "market buy": 8, "market buy by quote": 6}
ACTIONS = {"place": 78, "cancel": 14, "repeat": 3, "deposit": 2.5, "withdrawal": 2.5}
RESTING_KINDS = {"limit GTC", "post-only"}
RACE_PRICE = Decimal(100)
RACE_TAKER_KINDS = ("limit IOC", "market buy", "market buy by quote")
# Answers each action may get; anything else (a 500, a 404, a validation error) fails the soak.
SERVICE_UNAVAILABLE = {"503 SERVICE_UNAVAILABLE"}
ALLOWED_ANSWERS = {
    "place": {"201", "200", "400 TOO_MANY_OPEN_ORDERS", "503 ORDER_STATUS_UNKNOWN"} | SERVICE_UNAVAILABLE,
    "repeat": {"200"} | SERVICE_UNAVAILABLE,
    "cancel": {"202", "409 ORDER_NOT_CANCELLABLE"} | SERVICE_UNAVAILABLE,
    "deposit": {"201"} | SERVICE_UNAVAILABLE,
    "withdrawal": {"201", "400 INSUFFICIENT_FUNDS"} | SERVICE_UNAVAILABLE,
    "create user": {"201"} | SERVICE_UNAVAILABLE,
}


@dataclass(frozen=True)
class Answer:
    at_s: float  # since the journal started
    action: str
    status: int | None  # None: no answer (connection refused or reset, timeout)
    code: str | None  # the error code of an error answer, or the exception of no answer
    retry_after: str | None

    @property
    def key(self) -> str:
        return " ".join(str(part) for part in (self.status, self.code) if part is not None)


@dataclass
class Placed:
    client_order_id: str
    user_id: int
    kind: str
    order_id: int | None = None  # known once answered 201 or 200
    status: int | None = None  # the last answer
    attempts: int = 0


@dataclass
class RaceSeller:
    user_id: int
    deposit: Decimal
    deposit_status: int | None = None


class Journal:
    """Every answer of the soak's clients, every order they placed, and what a client saw go wrong."""

    def __init__(self, api_url: str):
        self.api_url = api_url
        self.started = time.monotonic()
        self.answers: list[Answer] = []
        self.orders: dict[str, Placed] = {}
        self.race_sellers: list[RaceSeller] = []
        self.problems: list[str] = []
        self.no_answers: list[str] = []  # when and why a request got no answer
        self._lock = threading.Lock()

    def call(self, session: requests.Session, action: str, method: str, path: str, headers: dict,
             body: dict | None = None) -> tuple[Answer, dict | None]:
        payload = response = None
        try:
            response = session.request(method, self.api_url + path, headers=headers, json=body,
                                       timeout=REQUEST_TIMEOUT_S)
            try:
                payload = response.json()
            except ValueError:
                payload = None
            code = (payload or {}).get("error", {}).get("code", "not JSON") if response.status_code >= 400 else None
        except requests.RequestException as error:
            session.close()  # a reset connection: the next request opens a new one
            code, detail = type(error).__name__, str(error)[:300]
        answer = Answer(time.monotonic() - self.started, action, None if response is None else response.status_code,
                        code, None if response is None else response.headers.get("Retry-After"))
        with self._lock:
            self.answers.append(answer)
            if response is None:
                self.no_answers.append(f"{answer.at_s:.1f} s, {action}: {detail}")
        return answer, payload

    def place(self, session: requests.Session, user: LoadUser, kind: str, body: dict) -> Placed:
        """Place, retrying with the same `client_order_id` while the answer is a 503 or none at all."""
        placed = Placed(body["client_order_id"], user.id, kind)
        with self._lock:
            self.orders[placed.client_order_id] = placed
        give_up_at = time.monotonic() + PLACE_RETRY_WINDOW_S
        while True:
            answer, payload = self.call(session, "place", "POST", "/api/orders", user.headers, body)
            placed.attempts, placed.status = placed.attempts + 1, answer.status
            if answer.status in (200, 201):
                placed.order_id = payload["order"]["id"]
                return placed
            if answer.status not in (None, 503) or time.monotonic() > give_up_at:
                return placed
            time.sleep(float(answer.retry_after or 1))  # what the 503 asked for

    def add_race_seller(self, seller: RaceSeller) -> None:
        with self._lock:
            self.race_sellers.append(seller)

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)


class Trader:
    def __init__(self, user: LoadUser):
        self.user = user
        self.resting: deque[int] = deque(maxlen=RECENT_ORDERS_MAX)  # ids of GTC orders that may still rest
        self.recent: deque[tuple[int, dict]] = deque(maxlen=RECENT_ORDERS_MAX)  # (id, body) to repeat
        self.lock = threading.Lock()


def order_body(rng: random.Random, kind: str, symbol: str) -> dict:
    """A valid order of `kind`: buys priced 97-101 and sells 99-103, so about half of the limit orders cross."""
    side = {"market sell": "sell", "market buy": "buy", "market buy by quote": "buy"}.get(kind) or rng.choice(
        ["buy", "sell"])
    body = {"order_type": side, "currency_symbol": symbol}
    if kind.startswith("market"):
        body["type"] = "market"
    else:
        low = 97 if side == "buy" else 99
        body["price"] = f"{rng.randint(low * 100, (low + 4) * 100) / 100:.2f}"
    if kind == "market buy by quote":
        body["quote_quantity"] = f"{rng.randint(100, 10000) / 100:.2f}"
    else:
        body["quantity"] = f"{rng.randint(1, 100) / 100:.2f}"
    body.update({"limit IOC": {"time_in_force": "IOC"}, "limit FOK": {"time_in_force": "FOK"},
                 "post-only": {"post_only": True}}.get(kind, {}))
    return body


class _Clients:
    """Threads that run `step` until stopped; `stop()` joins them."""

    def __init__(self, threads: int, name: str, seed: int):
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n, random.Random(seed * 1000 + n)),
                                          name=f"{name}-{n}", daemon=True) for n in range(threads)]

    def start(self):
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PLACE_RETRY_WINDOW_S + 2 * REQUEST_TIMEOUT_S)
        assert not any(thread.is_alive() for thread in self._threads), "a soak client hangs"

    def _run(self, thread_no: int, rng: random.Random) -> None:
        raise NotImplementedError


class OrderFlow(_Clients):
    """`threads` clients sharing `rate_per_s` actions per second among `traders`."""

    def __init__(self, journal: Journal, admin_headers: dict, traders: list[LoadUser], symbols: list[str], *,
                 rate_per_s: float, tag: str, threads: int = 16, seed: int = 1):
        super().__init__(threads, "order-flow", seed)
        self.journal, self.admin_headers, self.symbols, self.tag = journal, admin_headers, symbols, tag
        self.traders = [Trader(user) for user in traders]
        self.interval_s = threads / rate_per_s
        self._numbers = itertools.count(1)

    def _run(self, thread_no: int, rng: random.Random) -> None:
        with requests.Session() as session:
            next_at = time.monotonic() + rng.uniform(0, self.interval_s)
            while not self._stop.is_set():
                now = time.monotonic()
                if now < next_at:
                    time.sleep(next_at - now)  # pacing: a steady rate, not a condition to wait for
                next_at = max(next_at, time.monotonic() - PACE_SLACK_S) + self.interval_s
                action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
                getattr(self, "_" + action)(session, rng, rng.choice(self.traders))

    def _place(self, session, rng, trader: Trader) -> None:
        kind = rng.choices(list(ORDER_KINDS), weights=list(ORDER_KINDS.values()))[0]
        body = order_body(rng, kind, rng.choice(self.symbols))
        body["client_order_id"] = f"{self.tag}-{next(self._numbers)}"
        placed = self.journal.place(session, trader.user, kind, body)
        if placed.order_id is not None:
            with trader.lock:
                trader.recent.append((placed.order_id, body))
                if kind in RESTING_KINDS:
                    trader.resting.append(placed.order_id)

    def _cancel(self, session, rng, trader: Trader) -> None:
        with trader.lock:
            if not trader.resting:
                return
            order_id = trader.resting[rng.randrange(len(trader.resting))]
            trader.resting.remove(order_id)
        self.journal.call(session, "cancel", "DELETE", f"/api/orders/{order_id}", trader.user.headers)

    def _repeat(self, session, rng, trader: Trader) -> None:
        with trader.lock:
            if not trader.recent:
                return
            order_id, body = trader.recent[rng.randrange(len(trader.recent))]
        answer, payload = self.journal.call(session, "repeat", "POST", "/api/orders", trader.user.headers, body)
        if answer.status == 200 and payload["order"]["id"] != order_id:
            self.journal.problem(f"repeat of {body['client_order_id']} answered order {payload['order']['id']}, "
                                 f"not {order_id}")

    def _deposit(self, session, rng, trader: Trader) -> None:
        asset, amount = rng.choice([("USD", "100"), (rng.choice(self.symbols), "1")])
        self.journal.call(session, "deposit", "POST", "/api/admin/deposits", self.admin_headers,
                          {"userId": trader.user.id, "currency_symbol": asset, "amount": amount})

    def _withdrawal(self, session, rng, trader: Trader) -> None:
        amount = "999999999999" if rng.random() < 0.2 else "50"  # a fifth ask for more than anyone holds
        self.journal.call(session, "withdrawal", "POST", "/api/admin/withdrawals", self.admin_headers,
                          {"userId": trader.user.id, "currency_symbol": "USD", "amount": amount})


class FirstCreditRaces(_Clients):
    """Every `interval_s`, `sellers` fresh users (holding only the race market's base asset) each sell one unit
    at 100. Once their asks rest, one taker buys them all (limit IOC, market by quantity, market by quote
    quantity in turn) while, at the same moment, the sellers' first quote deposits are sent from several
    threads: some land while the worker credits the sale proceeds to quote accounts that do not exist yet."""

    def __init__(self, journal: Journal, admin_headers: dict, symbol: str, taker: LoadUser, *, tag: str,
                 sellers: int = 30, interval_s: float = 5.0, threads: int = 8, seed: int = 1):
        super().__init__(1, "first-credit-races", seed)
        self.journal, self.admin_headers, self.symbol, self.taker = journal, admin_headers, symbol, taker
        self.tag, self.sellers, self.interval_s = tag, sellers, interval_s
        self.rounds = self.rounds_cut_short = 0
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="first-credit")
        self._local = threading.local()
        self._sessions: list[requests.Session] = []

    def stop(self) -> None:
        super().stop()
        self._pool.shutdown(wait=True)
        for session in self._sessions:
            session.close()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._sessions.append(self._local.session)
        return self._local.session

    def _run(self, thread_no: int, rng: random.Random) -> None:
        while not self._stop.wait(self.interval_s):
            for session in self._sessions:  # idle since the last round: the server may be closing them (keep-alive)
                session.close()
            self.rounds += 1
            if not self._round(self.rounds):
                self.rounds_cut_short += 1

    def _round(self, number: int) -> bool:
        """One race; False when a fault cut it short (a seller or the taker got no 201, the asks did not rest)."""
        sellers = [seller for seller in self._pool.map(self._seller, (f"{self.tag}-{number}-{n}"
                                                                      for n in range(self.sellers))) if seller]
        if not sellers:
            return False
        resting = self._wait_asks(len(sellers))
        kind = RACE_TAKER_KINDS[number % len(RACE_TAKER_KINDS)]
        body = {"order_type": "buy", "currency_symbol": self.symbol, "client_order_id": f"{self.tag}-{number}-taker"}
        body.update({"limit IOC": {"price": str(RACE_PRICE), "quantity": str(len(sellers)), "time_in_force": "IOC"},
                     "market buy": {"type": "market", "quantity": str(len(sellers))},
                     "market buy by quote": {"type": "market", "quote_quantity": str(RACE_PRICE * len(sellers))}}[kind])
        taken = self._pool.submit(lambda: self.journal.place(self._session(), self.taker, f"race taker ({kind})", body))
        for deposit in [self._pool.submit(self._first_deposit, seller) for seller in sellers]:
            deposit.result()
        return resting and len(sellers) == self.sellers and taken.result().status == 201

    def _wait_asks(self, quantity: int, timeout_s: float = 15.0) -> bool:
        """Until the book shows `quantity` units asked (the worker applied the sells), so that the taker's
        settlement is the one crediting the sellers."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                book = self._session().get(f"{self.journal.api_url}/api/orderbook/{self.symbol}",
                                           timeout=REQUEST_TIMEOUT_S).json()
                if sum(Decimal(level["quantity"]) for level in book.get("asks", [])) >= quantity:
                    return True
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.05)  # between two reads of the book; no book in time skips this race, it fails nothing
        return False

    def _seller(self, name: str) -> RaceSeller | None:
        session = self._session()
        answer, payload = self.journal.call(session, "create user", "POST", "/api/admin/users", self.admin_headers,
                                            {"name": name})
        if answer.status != 201:
            return None
        user = LoadUser(payload["user"]["id"], {"Authorization": f"Bearer {payload['api_key']}"})
        answer, _ = self.journal.call(session, "deposit", "POST", "/api/admin/deposits", self.admin_headers,
                                      {"userId": user.id, "currency_symbol": self.symbol, "amount": "1"})
        if answer.status != 201:
            return None
        sold = self.journal.place(session, user, "race sell", {
            "order_type": "sell", "currency_symbol": self.symbol, "price": str(RACE_PRICE), "quantity": "1",
            "client_order_id": f"{name}-sell"})
        if sold.order_id is None:
            return None
        return RaceSeller(user.id, Decimal(random.Random(name).randint(1, 5000)) / 100)

    def _first_deposit(self, seller: RaceSeller) -> None:
        answer, _ = self.journal.call(self._session(), "deposit", "POST", "/api/admin/deposits", self.admin_headers,
                                      {"userId": seller.user_id, "currency_symbol": "USD",
                                       "amount": str(seller.deposit)})
        seller.deposit_status = answer.status
        self.journal.add_race_seller(seller)
