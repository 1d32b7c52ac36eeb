"""Shared fixtures. Integration tests need the stack that `./dev test` starts (real MariaDB and broker).

Tests never truncate: each creates uniquely named users through the admin API (`make_user`).
"""
from __future__ import annotations

import os

import pytest

from tests.support.databases import scratch_database
from tests.support.names import unique_name

REQUIRED_ENV = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ADMIN_TOKEN")


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    missing = [key for key in REQUIRED_ENV if not os.environ.get(key)]
    if missing:
        pytest.exit(f"integration tests need {', '.join(missing)}: run them with ./dev test", returncode=2)
    return {key: os.environ[key] for key in REQUIRED_ENV}


@pytest.fixture()
def empty_database_url(stack_env):
    """A database on the same server that `alembic upgrade head` never ran on."""
    with scratch_database(stack_env["DATABASE_URL"], "orders_empty") as url:
        yield url


@pytest.fixture(scope="session")
def app(stack_env):
    from orders_app import create_app, runtime_of
    application = create_app({"LOG_LEVEL": "WARNING"})
    yield application
    runtime_of(application).close()


@pytest.fixture()
def ctx(app):
    """The service context of the test app: call services directly, with the API's object graph."""
    from orders_app import runtime_of
    return runtime_of(app).ctx


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def admin_headers(stack_env) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}


class UserHandle:
    """A user created through the API, with its key; `headers` authenticate as it."""

    def __init__(self, client, admin_headers, name: str):
        response = client.post("/api/admin/users", json={"name": name}, headers=admin_headers)
        assert response.status_code == 201, response.json
        self.id = response.json["user"]["id"]
        self.api_key = response.json["api_key"]
        self.headers = {"Authorization": f"Bearer {self.api_key}"}
        self._client, self._admin_headers = client, admin_headers

    def deposit(self, asset: str, amount: str) -> dict:
        response = self._client.post("/api/admin/deposits", headers=self._admin_headers,
                                     json={"userId": self.id, "currency_symbol": asset, "amount": amount})
        assert response.status_code == 201, response.json
        return response.json["balance"]

    def balances(self) -> dict[str, dict]:
        response = self._client.get(f"/api/balances/{self.id}", headers=self.headers)
        assert response.status_code == 200, response.json
        return {b["currency_symbol"]: b for b in response.json["balances"]}

    def place(self, **body):
        return self._client.post("/api/orders", json=body, headers=self.headers)

    def orders(self, **query):
        response = self._client.get("/api/orders", query_string=query, headers=self.headers)
        assert response.status_code == 200, response.json
        return response.json["orders"]


@pytest.fixture()
def make_user(client, admin_headers):
    def make(prefix: str = "user", **deposits) -> UserHandle:
        user = UserHandle(client, admin_headers, unique_name(prefix))
        for asset, amount in deposits.items():
            user.deposit(asset, amount)
        return user
    return make


@pytest.fixture()
def alice(make_user) -> UserHandle:
    return make_user("alice", USD="100000", BTC="10", ETH="100")


@pytest.fixture()
def bob(make_user) -> UserHandle:
    return make_user("bob", USD="100000", BTC="10", ETH="100")
