"""Model-based, end to end: a seeded random stream of commands through the real HTTP API (gunicorn) and a
real worker (`consumer.py`), every outcome compared with an independent reference exchange written from
the API contract (tests/support/reference_exchange.py), exactly.

Several users trade in two fresh markets (so no other test's orders are in their books), the second one
charging fees, with every order type: limit GTC / IOC / FOK / post-only, market sell by quantity, market buy
by quantity and by quote_quantity, self-trades, cancels of open and of final orders (409), deposits,
withdrawals (some insufficient), orders the user cannot pay for (400), markets halted and resumed (orders
409 meanwhile) and fee rates changed. Each command waits until the worker applied it, so its outcome is
deterministic. Every answer's status and code, each order's status, filled quantity and fee, and at the end
every balance (available and locked), the fees collected and the multiset of trades must equal the model's.
"""
from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from decimal import ROUND_DOWN, Decimal

import pytest
import requests

from orders_app import runtime_of
from orders_app.processes import ApiServer, Broker, WorkerProcess
from orders_app.services.markets import add_market
from tests.support.orders_api import amount, expected_answer, order_body
from tests.support.reconcile import reconcile_cli
from tests.support.reference_exchange import (
    FINAL_STATUSES,
    QUOTE,
    ReferenceExchange,
    RefOrder,
    Refused,
)
from tests.support.waits import wait_market_applied

pytestmark = pytest.mark.slow
COMMANDS = 1200
SEED = 20261126
USERS = 4
APPLY_TIMEOUT_S = 30
PAGE_ROWS_MAX = 1000
KIND_WEIGHTS = {"limit": 30, "ioc": 6, "fok": 6, "post_only": 6, "market_sell": 6, "market_buy_quantity": 6,
                "market_buy_quote": 6, "cancel_open": 12, "cancel_final": 4, "deposit": 5, "withdraw": 6,
                "unaffordable": 3, "halt_or_resume": 2, "fee_rates": 2}
FEE_RATES = [Decimal("0"), Decimal("0.0005"), Decimal("0.001"), Decimal("0.0025"), Decimal("0.1")]


def _price(rng: random.Random) -> Decimal:
    if rng.random() < 0.2:
        return Decimal(rng.randint(9_900_000, 10_100_000)) / 100_000  # off the round levels
    return Decimal(rng.randint(990, 1010)) / 10


def _quantity(rng: random.Random) -> Decimal:
    if rng.random() < 0.15:
        return Decimal(rng.randint(1, 3 * 10**8)) / 10**8  # down to the quantity step
    return Decimal(rng.randint(1, 300)) / 100


class Stream:
    """Drives the API and the model with the same seeded commands, comparing every outcome."""

    def __init__(self, api_url: str, admin_headers: dict, ctx, symbols: list[str], rng: random.Random):
        self.url, self.admin, self.ctx, self.symbols, self.rng = api_url, admin_headers, ctx, symbols, rng
        self.http = requests.Session()
        self.model = ReferenceExchange(ctx.settings.market_buy_collar_percent)
        self.market_ids = {symbol: ctx.resolve_market(symbol).id for symbol in symbols}
        self.users: dict[int, dict] = {}
        self.kinds = Counter()
        self.outcomes = Counter()

    # --- plumbing ------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, headers: dict, expected: int, code: str | None = None, **kwargs) -> dict:
        response = self.http.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
        body = response.json()
        assert response.status_code == expected, f"{method} {path} {kwargs}: {response.status_code} {body}"
        if code is not None:
            assert body["error"]["code"] == code, body
        self.outcomes[expected] += 1
        return body

    def wait_applied(self, symbol: str) -> None:
        wait_market_applied(self.ctx, self.market_ids[symbol], APPLY_TIMEOUT_S, poll_s=0.002)

    def check_order(self, order: RefOrder) -> None:
        seen = self.call("GET", f"/api/orders/{order.id}", self.users[order.user], 200)["order"]
        assert (seen["status"], Decimal(seen["filled_quantity"]), Decimal(seen["fee"])) == (
            order.status, order.filled, order.fee), (seen, order)

    # --- commands ------------------------------------------------------------------------------------------

    def add_user(self, deposits: dict[str, Decimal]) -> None:
        body = self.call("POST", "/api/admin/users", self.admin, 201, json={"name": f"model-{uuid.uuid4().hex[:8]}"})
        user = body["user"]["id"]
        self.users[user] = {"Authorization": f"Bearer {body['api_key']}"}
        for asset, value in deposits.items():
            self.deposit(user, asset, value)

    def deposit(self, user: int, asset: str, value: Decimal) -> None:
        self.call("POST", "/api/admin/deposits", self.admin, 201,
                  json={"userId": user, "currency_symbol": asset, "amount": amount(value)})
        self.model.deposit(user, asset, value)

    def withdraw(self, user: int, asset: str, value: Decimal) -> None:
        expected, code = expected_answer(lambda: self.model.withdraw(user, asset, value))
        self.call("POST", "/api/admin/withdrawals", self.admin, expected, code,
                  json={"userId": user, "currency_symbol": asset, "amount": amount(value)})

    def place(self, user: int, symbol: str, side: str, type_: str = "limit", tif: str = "GTC", post_only: bool = False,
              price: Decimal | None = None, quantity: Decimal | None = None,
              quote_quantity: Decimal | None = None) -> None:
        body = order_body(symbol, side, type_, tif, post_only, price, quantity, quote_quantity)
        try:
            hold = self.model.hold_for(user, symbol, side, type_, price, quantity, quote_quantity)
        except Refused as refused:
            self.call("POST", "/api/orders", self.users[user], refused.status, refused.code, json=body)
            return
        answer = self.call("POST", "/api/orders", self.users[user], 201, json=body)["order"]
        order = RefOrder(answer["id"], user, symbol, side, type_, "IOC" if type_ == "market" else tif, post_only,
                         price, quantity, quote_quantity, hold, quote=self.model.quote_of(symbol))
        trades_before = len(self.model.trades)
        self.model.accept(order)
        self.wait_applied(symbol)
        self.check_order(order)
        for trade in self.model.trades[trades_before:]:  # and every maker it traded with
            self.check_order(self.model.orders[trade[3] if trade[5] == "sell" else trade[4]])

    def cancel(self, order: RefOrder) -> None:
        try:
            self.model.cancel(order.id)
            expected, code = 202, None
        except Refused as refused:
            expected, code = refused.status, refused.code
        self.call("DELETE", f"/api/orders/{order.id}", self.users[order.user], expected, code)
        if expected == 202:
            self.wait_applied(order.symbol)
            self.check_order(order)

    def patch_market(self, symbol: str, **body) -> None:
        self.call("PATCH", f"/api/admin/markets/{symbol}-{QUOTE}", self.admin, 200, json=body)

    def halt_or_resume(self, symbol: str) -> None:
        """Resume a halted market, else halt this one (so halts stay short and trading goes on)."""
        halted = [s for s in self.symbols if self.model.markets[s].halted]
        target = halted[0] if halted else symbol
        self.patch_market(target, status="trading" if halted else "halted")
        self.model.set_halted(target, not halted)

    def change_fee_rates(self, symbol: str) -> None:
        maker, taker = self.rng.choice(FEE_RATES), self.rng.choice(FEE_RATES)
        self.patch_market(symbol, maker_fee_rate=str(maker), taker_fee_rate=str(taker))
        self.model.set_fee_rates(symbol, maker, taker)

    def random_command(self) -> None:
        rng, model = self.rng, self.model
        kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
        user, symbol, side = rng.choice(list(self.users)), rng.choice(self.symbols), rng.choice(["buy", "sell"])
        open_orders = [o for o in model.orders.values() if o.status not in FINAL_STATUSES]
        final_orders = [o for o in model.orders.values() if o.status in FINAL_STATUSES]
        if kind == "cancel_open" and not open_orders or kind == "cancel_final" and not final_orders:
            kind = "limit"
        self.kinds[kind] += 1
        if kind in ("limit", "ioc", "fok", "post_only"):
            tif = {"ioc": "IOC", "fok": "FOK"}.get(kind, "GTC")
            self.place(user, symbol, side, tif=tif, post_only=kind == "post_only", price=_price(rng),
                       quantity=_quantity(rng))
        elif kind == "unaffordable":
            self.place(user, symbol, side, price=_price(rng), quantity=Decimal(rng.randint(1000, 5000)))
        elif kind == "market_sell":
            self.place(user, symbol, "sell", "market", quantity=_quantity(rng))
        elif kind == "market_buy_quantity":
            self.place(user, symbol, "buy", "market", quantity=_quantity(rng))
        elif kind == "market_buy_quote":
            quote = (Decimal(rng.randint(1, 10**10)) / 10**8 if rng.random() < 0.3
                     else Decimal(rng.randint(100, 60000)) / 100)
            self.place(user, symbol, "buy", "market", quote_quantity=quote)
        elif kind == "cancel_open":
            self.cancel(rng.choice(open_orders))
        elif kind == "cancel_final":
            self.cancel(rng.choice(final_orders))
        elif kind == "halt_or_resume":
            self.halt_or_resume(symbol)
        elif kind == "fee_rates":
            self.change_fee_rates(symbol)
        elif kind == "deposit":
            asset = rng.choice([QUOTE, *self.symbols])
            value = Decimal(rng.randint(100, 5000)) if asset == QUOTE else Decimal(rng.randint(1, 50))
            self.deposit(user, asset, value)
        else:
            asset = rng.choice([QUOTE, *self.symbols])
            share = Decimal(rng.randint(1, 130)) / 100
            self.withdraw(user, asset, max((model.available(user, asset) * share).quantize(Decimal("0.01"), ROUND_DOWN),
                                           Decimal("0.01")))

    # --- the final comparison ------------------------------------------------------------------------------

    def _pages(self, path: str, headers: dict, key: str, **query) -> list[dict]:
        rows, before = [], None
        while True:
            params = query | {"limit": PAGE_ROWS_MAX} | ({"before_id": before} if before else {})
            page = self.call("GET", path, headers, 200, params=params)[key]
            rows += page
            if len(page) < PAGE_ROWS_MAX:
                return rows
            before = page[-1]["id"]

    def fees_collected(self) -> dict[str, Decimal]:
        return {fee["currency_symbol"]: Decimal(fee["amount"])
                for fee in self.call("GET", "/api/admin/fees", self.admin, 200)["fees"]}

    def assert_equal_to_model(self, fees_before: dict[str, Decimal]) -> None:
        model = self.model
        fees = self.fees_collected()
        for asset in {QUOTE, *self.symbols}:  # the fee account is shared: what this stream added to it
            assert fees.get(asset, 0) - fees_before.get(asset, 0) == model.fees[asset], asset
        for user, headers in self.users.items():
            seen = {o["id"]: (o["status"], Decimal(o["filled_quantity"]))
                    for o in self._pages("/api/orders", headers, "orders", userId=user)}
            assert seen == {o.id: (o.status, o.filled) for o in model.orders.values() if o.user == user}
            balances = {b["currency_symbol"]: (Decimal(b["available"]), Decimal(b["locked"]))
                        for b in self.call("GET", f"/api/balances/{user}", headers, 200)["balances"]}
            for asset in {QUOTE, *self.symbols} | set(balances):
                expected = tuple(model.balances[(user, asset)])
                assert balances.get(asset, (0, 0)) == expected, f"user {user} {asset}: {balances.get(asset)}"
        seen_trades = Counter()
        for symbol in self.symbols:
            for t in self._pages("/api/trades", {}, "trades", currency_symbol=symbol):
                seen_trades[(symbol, Decimal(t["price"]), Decimal(t["quantity"]), t["buy_order_id"],
                             t["sell_order_id"], t["taker_side"])] += 1
        assert seen_trades == Counter(model.trades)


def test_random_command_stream_through_the_api_matches_the_reference_model(app, admin_headers, stack_env):
    ctx = runtime_of(app).ctx
    symbols = ["M" + uuid.uuid4().hex[:9].upper() for _ in range(2)]
    add_market(symbols[0], ctx)
    fee_rates = {"maker_fee_rate": Decimal("0.001"), "taker_fee_rate": Decimal("0.002")}
    add_market(symbols[1], ctx, **fee_rates)
    # A broker of its own: a fresh consumer group joins in seconds, so Kafka (not the slower catch-up from
    # the database) delivers each command.
    broker = Broker("broker-model")
    api = ApiServer("api-model", workers=1, threads=4, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
    worker = WorkerProcess("worker-model", KAFKA_MAX_POLL_INTERVAL_MS="3000", KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
    stream = Stream(api.url, admin_headers, ctx, symbols, random.Random(SEED))
    try:
        worker.wait_logged('"partitions assigned"')
        started = time.monotonic()
        stream.model.set_fee_rates(symbols[1], fee_rates["maker_fee_rate"], fee_rates["taker_fee_rate"])
        fees_before = stream.fees_collected()
        for _ in range(USERS):
            stream.add_user({QUOTE: Decimal(5000), symbols[0]: Decimal(50), symbols[1]: Decimal(50)})
        for _ in range(COMMANDS):
            stream.random_command()
        stream.assert_equal_to_model(fees_before)
        elapsed_s = time.monotonic() - started
    finally:  # stop everything first: an assertion here would leak the rest and hide the test's failure
        stream.http.close()
        worker_exit = worker.stop()
        api.stop()
        broker.stop()
    assert worker_exit == 0, "the worker did not stop cleanly"
    model = stream.model
    statuses = Counter(o.status for o in model.orders.values())
    assert len(model.trades) > 100 and statuses["rejected"] and statuses["cancelled"] and statuses["completed"]
    assert stream.outcomes[409] and stream.outcomes[400], stream.outcomes
    assert stream.kinds["halt_or_resume"] and stream.kinds["fee_rates"] and any(model.fees.values())
    print(f"\nmodel-based: {COMMANDS} commands {dict(stream.kinds)} in {elapsed_s:.1f}s; answers "
          f"{dict(stream.outcomes)}; {len(model.orders)} orders {dict(statuses)}, {len(model.trades)} trades, "
          f"all equal to the reference model\n{reconcile_cli(stack_env['DATABASE_URL'])}")
