"""Concurrent requests against a real gunicorn (2 processes x 8 threads) and the real database."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from orders_app.processes import ApiServer
from tests.support.names import unique_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_api(stack_env):
    server = ApiServer("api-concurrency")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(live_api, admin_headers):
    class Http:
        url = live_api.url

        def user(self, **deposits):
            response = requests.post(f"{self.url}/api/admin/users", json={"name": unique_name()},
                                     headers=admin_headers, timeout=10)
            user_id, key = response.json()["user"]["id"], response.json()["api_key"]
            for asset, amount in deposits.items():
                response = requests.post(f"{self.url}/api/admin/deposits", headers=admin_headers, timeout=10,
                                         json={"userId": user_id, "currency_symbol": asset, "amount": amount})
                assert response.status_code == 201
            return user_id, {"Authorization": f"Bearer {key}"}

        def concurrently(self, headers, bodies, threads):
            def place(body):
                with requests.Session() as session:
                    return session.post(f"{self.url}/api/orders", json=body, headers=headers, timeout=30)
            with ThreadPoolExecutor(max_workers=threads) as pool:
                return list(pool.map(place, bodies))

        def balance(self, user_id, headers, asset):
            response = requests.get(f"{self.url}/api/balances/{user_id}", params={"symbol": asset},
                                    headers=headers, timeout=10)
            return response.json()["balances"][0]

        def orders(self, user_id, headers):
            return requests.get(f"{self.url}/api/orders", params={"userId": user_id, "limit": 1000},
                                headers=headers, timeout=10).json()["orders"]
    return Http()


def test_fifty_threads_never_over_commit_one_balance(http):
    user_id, headers = http.user(USD="1000")
    # 50 orders of 30 USD each: exactly 33 fit into 1000 (33 x 30 = 990).
    bodies = [{"order_type": "buy", "currency_symbol": "BTC", "price": "30", "quantity": "1"}] * 50
    responses = http.concurrently(headers, bodies, threads=50)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 400}
    assert statuses.count(201) == 33
    assert all(r.json()["error"]["code"] == "INSUFFICIENT_FUNDS" for r in responses if r.status_code == 400)
    balance = http.balance(user_id, headers, "USD")
    assert Decimal(balance["locked"]) == Decimal(30 * 33) and Decimal(balance["available"]) == Decimal(10)
    assert len(http.orders(user_id, headers)) == 33


def test_concurrent_repeats_of_one_client_order_id_create_one_order(http):
    user_id, headers = http.user(USD="1000")
    body = {"order_type": "buy", "currency_symbol": "ETH", "price": "10", "quantity": "1",
            "client_order_id": "same-key-1"}
    responses = http.concurrently(headers, [body] * 30, threads=30)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1 and statuses.count(200) == 29, statuses
    assert len({r.json()["order"]["id"] for r in responses}) == 1
    assert http.balance(user_id, headers, "USD")["locked"] == "10"
    assert len(http.orders(user_id, headers)) == 1


def test_twenty_concurrent_identical_buys_all_succeed(http):
    user_id, headers = http.user(USD="10000")
    body = {"userId": user_id, "order_type": "buy", "currency_symbol": "BTC", "price": "5.123456", "quantity": "2"}
    responses = http.concurrently(headers, [body] * 20, threads=20)
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses if r.status_code != 201]
    assert Decimal(http.balance(user_id, headers, "USD")["locked"]) == Decimal("10.246912") * 20
