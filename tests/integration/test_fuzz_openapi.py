"""Fuzzing the HTTP API from its own OpenAPI document (schemathesis: valid and invalid inputs).

Every documented operation gets generated requests against a real gunicorn; three in four are steered to a
funded user's key (the admin token on admin endpoints), its own user id and a real market. Checks: no
response is a 5xx; every status is documented; every response body and content type matches the
documented schema. Afterwards the matching worker settles whatever was
accepted and the database reconciles. It runs on a database and broker of its own, so the random
deposits, withdrawals and orders it makes never reach another test's users or books.
Deterministic: hypothesis is derandomized and each operation gets a fixed number of examples.
"""
from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders_app.processes import ApiServer, Broker, PrivateDatabase, WorkerProcess
from tests.faults.load import engine_for, make_users
from tests.support.reconcile import reconcile_cli
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 60
MARKETS = ["BTC", "ETH"]
FUZZ_USER_FUNDS = {"USD": "1000000000000", "BTC": "1000000000", "ETH": "1000000000"}  # large: amounts are random
STEERED_THREE_IN_FOUR = [True, True, True, False]  # the rest keep their generated (mostly bad) key: 401s
PLACING_EXAMPLES_FACTOR = 4  # the richest operation: order types x fields x amounts
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
answered = {"requests": 0, "statuses": {}}


@pytest.fixture(scope="module")
def fuzz_stack(stack_env, admin_headers):
    db, broker = PrivateDatabase("fuzz-db"), Broker("broker-fuzz")
    api = worker = None
    try:
        api = ApiServer("api-fuzz", workers=1, threads=4, DATABASE_URL=db.url, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
        worker = WorkerProcess("worker-fuzz", DATABASE_URL=db.url, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
                               KAFKA_MAX_POLL_INTERVAL_MS="3000")
        user = make_users(api.url, admin_headers, 1, FUZZ_USER_FUNDS, "fuzz")[0]
        started = time.monotonic()
        yield api, user
        engine = engine_for(db.url)
        drain_s = wait_settled(engine, timeout_s=120)
        engine.dispose()
        report = reconcile_cli(db.url)
        print(f"\nOpenAPI fuzzing: {answered['requests']} requests in {time.monotonic() - started:.1f}s, "
              f"statuses {dict(sorted(answered['statuses'].items()))}; settled {drain_s:.1f}s later\n{report}")
    finally:  # stop everything first: an assertion here would leak the rest and hide the test's failure
        worker_exit = worker.stop() if worker is not None else 0
        if api is not None:
            api.stop()
        broker.stop()
        db.remove()
    assert worker_exit == 0, "the worker did not stop cleanly"


def _steer(case, headers: dict, user_id: int, symbol: str) -> None:
    """Point a generated request at a market that exists, at the caller's own user, with a valid key and
    (orders) without the fields its type forbids, so that fuzzing also reaches accepted orders, deposits
    and withdrawals, and the worker settles odd amounts — not only 400/401/403/404. A batch's orders are
    steered one by one."""
    case.headers = {**(case.headers or {}), **headers}
    body = case.body
    orders = [body] if case.path == "/api/orders" and isinstance(body, dict) else []
    if case.path == "/api/orders/batch" and isinstance(body, dict) and isinstance(body.get("orders"), list):
        orders = [order for order in body["orders"] if isinstance(order, dict)]
    for order in orders:
        _steer_order(order)
    for part in (body, case.query, case.path_parameters, *orders):
        if isinstance(part, dict):
            for key in ("currency_symbol", "symbol", "market"):
                if key in part:
                    part[key] = symbol
            for key in ("userId", "user_id"):
                if key in part:
                    part[key] = user_id


def _steer_order(body: dict) -> None:
    if body.get("type") == "market":
        body.pop("price", None)
        body.pop("post_only", None)
        body.pop("time_in_force", None)
        if body.get("order_type") == "buy" and "quantity" in body:
            body.pop("quote_quantity", None)
    else:
        body.pop("quote_quantity", None)
        if body.get("time_in_force", "GTC") != "GTC":
            body.pop("post_only", None)


def _fuzz(operation, mode: GenerationMode, headers: dict, user_id: int) -> None:
    examples = EXAMPLES_PER_OPERATION * (PLACING_EXAMPLES_FACTOR if operation.path == "/api/orders" else 1)

    @given(case=operation.as_strategy(generation_mode=mode), steer=st.sampled_from(STEERED_THREE_IN_FOUR),
           symbol=st.sampled_from(MARKETS))
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case, steer, symbol):
        if steer:
            _steer(case, headers, user_id, symbol)
        response = case.call(timeout=30)  # the generated headers: a random key is a 401 to check too
        answered["requests"] += 1
        answered["statuses"][response.status_code] = answered["statuses"].get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)
    fuzz()


def test_every_operation_answers_as_documented_and_never_5xx(fuzz_stack, admin_headers):
    """Valid and invalid requests for every operation of /openapi.json (schemathesis' generators driven
    by hypothesis directly: its pytest plugin reads a private attribute pytest 9 removed)."""
    api, user = fuzz_stack
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        headers = admin_headers if operation.path.startswith("/api/admin/") else user.headers
        has_inputs = bool(operation.path_parameters or operation.query or operation.body)
        for mode in GenerationMode if has_inputs else [GenerationMode.POSITIVE]:  # nothing to make invalid
            try:
                _fuzz(operation, mode, headers, user.id)
            except Exception as error:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {error}")
    assert operations >= 17, f"the document lists only {operations} operations"
    assert not failures, "\n\n".join(failures)


def test_the_fuzzed_api_still_answers(fuzz_stack):
    api, user = fuzz_stack
    assert requests.get(f"{api.url}/ready", timeout=10).status_code == 200
    assert requests.get(f"{api.url}/api/balances/{user.id}", headers=user.headers, timeout=10).status_code == 200
