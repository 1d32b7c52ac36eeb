"""Rate limiting of order placement per API key, through a real gunicorn with two worker processes.

With RATE_LIMIT_ORDERS_PER_SECOND=0.01 (one token per 100 s) and RATE_LIMIT_BURST=3, a user gets exactly
three orders in, whichever worker process answers: the buckets live in memory shared by the workers.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from orders_app.processes import TEST_LOG_DIR, ApiServer
from tests.support.names import unique_name

pytestmark = pytest.mark.slow
BURST = 3
SPREAD_TIMEOUT_S = 30  # until both gunicorn workers answered; extra attempts are cheap 429s


@pytest.fixture(scope="module")
def limited_api(stack_env):
    (TEST_LOG_DIR / "api-rate-limit.log").unlink(missing_ok=True)
    server = ApiServer("api-rate-limit", workers=2, threads=4, RATE_LIMIT_ORDERS_PER_SECOND="0.01",
                       RATE_LIMIT_BURST=str(BURST))
    yield server
    server.stop()


def _user(api, admin_headers, **deposits):
    created = requests.post(f"{api.url}/api/admin/users", json={"name": unique_name("rl")}, headers=admin_headers,
                            timeout=10)
    assert created.status_code == 201
    user_id = created.json()["user"]["id"]
    for asset, amount in deposits.items():
        assert requests.post(f"{api.url}/api/admin/deposits", headers=admin_headers, timeout=10, json={
            "userId": user_id, "currency_symbol": asset, "amount": amount}).status_code == 201
    return user_id, {"Authorization": f"Bearer {created.json()['api_key']}"}


def _balances(api, user_id, headers):
    response = requests.get(f"{api.url}/api/balances/{user_id}", headers=headers, timeout=10)
    return {b["currency_symbol"]: b for b in response.json()["balances"]}


def test_orders_over_the_limit_get_429_with_retry_after_and_create_nothing(limited_api, admin_headers):
    user_id, headers = _user(limited_api, admin_headers, USD="1000")
    body = {"order_type": "buy", "currency_symbol": "BTC", "price": "1", "quantity": "1"}
    for _ in range(BURST):
        assert requests.post(f"{limited_api.url}/api/orders", json=body, headers=headers, timeout=10).status_code == 201
    before = _balances(limited_api, user_id, headers)
    limited = requests.post(f"{limited_api.url}/api/orders", json={**body, "client_order_id": "over-the-limit"},
                            headers=headers, timeout=10)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED" and limited.json()["error"]["message"]
    assert limited.headers["Content-Type"].startswith("application/json")
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 100
    orders = requests.get(f"{limited_api.url}/api/orders", headers=headers, timeout=10).json()["orders"]
    assert len(orders) == BURST and all(order["client_order_id"] != "over-the-limit" for order in orders)
    assert _balances(limited_api, user_id, headers) == before
    # Other users and the admin token are not limited by this user's bucket.
    other_id, other = _user(limited_api, admin_headers, USD="1000")
    assert requests.post(f"{limited_api.url}/api/orders", json=body, headers=other, timeout=10).status_code == 201
    for _ in range(BURST + 2):
        assert requests.post(f"{limited_api.url}/api/orders", json={**body, "userId": user_id}, headers=admin_headers,
                             timeout=10).status_code == 201
    # Reading is not limited either.
    assert requests.get(f"{limited_api.url}/api/orders", headers=headers, timeout=10).status_code == 200


def test_the_limit_holds_across_gunicorn_worker_processes(limited_api, admin_headers):
    user_id, headers = _user(limited_api, admin_headers, USD="100000")
    body = {"order_type": "buy", "currency_symbol": "BTC", "price": "1", "quantity": "1"}
    statuses: list[int] = []
    lock = threading.Lock()
    tag = uuid.uuid4().hex

    def place(index: int) -> None:
        # a fresh connection each time (Connection: close), so the kernel spreads them over both workers
        response = requests.post(f"{limited_api.url}/api/orders", json=body, timeout=10,
                                 headers={**headers, "Connection": "close", "X-Request-ID": f"{tag}-{index}"})
        with lock:
            statuses.append(response.status_code)

    def pids_that_answered() -> set[int]:
        pids = set()
        for raw in (TEST_LOG_DIR / "api-rate-limit.log").read_text(errors="replace").splitlines():
            if tag in raw and '"msg": "request"' in raw:
                pids.add(int(raw.split('"pid": ')[1].split(",")[0]))
        return pids

    sent, deadline = 0, time.monotonic() + SPREAD_TIMEOUT_S
    with ThreadPoolExecutor(8) as pool:
        while time.monotonic() < deadline:  # a time limit, not a count: the kernel may favour one worker
            list(pool.map(place, range(sent, sent + 40)))
            sent += 40
            if len(pids_that_answered()) >= 2:
                break
    assert len(pids_that_answered()) == 2, "both gunicorn workers should have answered some of the requests"
    assert statuses.count(201) == BURST, statuses
    assert statuses.count(429) == len(statuses) - BURST
    orders = requests.get(f"{limited_api.url}/api/orders", headers=headers, timeout=10).json()["orders"]
    assert len(orders) == BURST


def test_a_batch_takes_a_token_per_order_and_refuses_alone_the_orders_beyond_the_limit(limited_api, admin_headers):
    user_id, headers = _user(limited_api, admin_headers, USD="1000")
    body = {"order_type": "buy", "currency_symbol": "BTC", "price": "1", "quantity": "1"}
    response = requests.post(f"{limited_api.url}/api/orders/batch", json={"orders": [body] * (BURST + 2)},
                             headers=headers, timeout=10)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == [201] * BURST + [429] * 2
    assert {result["error"]["code"] for result in results[BURST:]} == {"RATE_LIMITED"}
    empty = requests.post(f"{limited_api.url}/api/orders/batch", json={"orders": [body]}, headers=headers, timeout=10)
    assert empty.status_code == 429 and int(empty.headers["Retry-After"]) >= 1
    orders = requests.get(f"{limited_api.url}/api/orders", headers=headers, timeout=10).json()["orders"]
    assert len(orders) == BURST
