"""Operator commands against the real database, through Flask's CLI runner and as `python -m orders_app.cli`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from orders_app import runtime_of
from orders_app.processes import ROOT_DIR
from tests.support.names import unique_name


@pytest.fixture()
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args))
    return invoke


def created_user(cli) -> tuple[int, str]:
    result = cli("create-user", "--name", unique_name("cli"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return data["user"]["id"], data["api_key"]


def test_create_user_prints_a_working_api_key_once(cli, client):
    user_id, api_key = created_user(cli)
    response = client.get(f"/api/balances/{user_id}", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200 and response.json["balances"] == []
    result = cli("create-user")  # the name is optional
    assert result.exit_code == 0 and json.loads(result.stdout)["api_key"].startswith("ok_")
    assert "shown once" in result.stderr


def test_deposit_and_withdraw_move_exact_decimals(cli, client):
    user_id, api_key = created_user(cli)
    result = cli("deposit", str(user_id), "USD", "1000.00000000000001")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["balance"] == {"user_id": user_id, "currency_symbol": "USD",
                                                     "balance": "1000.00000000000001",
                                                     "available": "1000.00000000000001", "locked": "0"}
    result = cli("withdraw", str(user_id), "USD", "0.00000000000001")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["balance"]["available"] == "1000"
    balances = client.get(f"/api/balances/{user_id}", headers={"Authorization": f"Bearer {api_key}"}).json
    assert balances["balances"][0]["available"] == "1000"


@pytest.mark.parametrize("args,code", [
    (["withdraw", "{user}", "USD", "1000.5"], "INSUFFICIENT_FUNDS"),
    (["deposit", "{user}", "USD", "1e3"], "VALIDATION_ERROR"),
    (["deposit", "{user}", "USD", "--", "-5"], "VALIDATION_ERROR"),
    (["deposit", "{user}", "USD", "0.000000000000001"], "VALIDATION_ERROR"),
    (["deposit", "{user}", "BTC", "0.000000001"], "VALIDATION_ERROR"),
    (["deposit", "{user}", "XYZ", "1"], "UNKNOWN_SYMBOL"),
    (["deposit", "2000000000", "USD", "1"], "NOT_FOUND"),
    (["deposit", "{user}", "USD", "10000000000000"], "VALIDATION_ERROR"),
    (["rotate-key", "2000000000"], "NOT_FOUND"),
    (["add-market", "btc"], "VALIDATION_ERROR"),
    (["add-market", "BTC"], "ALREADY_EXISTS"),
    (["add-market", "QQ" + "1", "--quantity-step", "0.000000001"], "VALIDATION_ERROR"),
    (["add-market", "QQ3", "--price-step", "0.000001", "--quantity-step", "0.0000000001"], "VALIDATION_ERROR"),
    (["add-market", "QQ4", "--price-step", "0.0000001", "--quantity-step", "0.00000001"], "VALIDATION_ERROR"),
])
def test_bad_input_exits_non_zero_with_a_clear_error_and_changes_nothing(cli, client, args, code):
    user_id, api_key = created_user(cli)
    assert cli("deposit", str(user_id), "USD", "1000").exit_code == 0
    markets_before = json.loads(cli("list-markets").stdout)
    result = cli(*[arg.replace("{user}", str(user_id)) for arg in args])
    assert result.exit_code == 1, result.output
    assert code in result.stderr and "Traceback" not in result.output
    balances = client.get(f"/api/balances/{user_id}", headers={"Authorization": f"Bearer {api_key}"}).json
    assert [(b["currency_symbol"], b["available"]) for b in balances["balances"]] == [("USD", "1000")]
    assert json.loads(cli("list-markets").stdout) == markets_before


@pytest.mark.parametrize("args", [["deposit", "abc", "USD", "1"], ["deposit", "0", "USD", "1"],
                                  ["add-market", "QQ2", "--price-step", "zero"], ["deposit"]])
def test_malformed_arguments_are_usage_errors(cli, args):
    result = cli(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_add_market_refuses_a_quantity_step_finer_than_its_existing_base_assets_scale(cli, app):
    """A base asset that already exists keeps its scale: trades of 0.00001 would give balances it cannot hold."""
    from sqlalchemy import insert

    from orders_app.models import Asset
    symbol = "A" + uuid.uuid4().hex[:8].upper()
    ctx = runtime_of(app).ctx
    with ctx.uow() as uow:
        uow.session.execute(insert(Asset).values(symbol=symbol, scale=4))
        uow.commit()
    refused = cli("add-market", symbol, "--quantity-step", "0.00001", "--min-quantity", "0.00001")
    assert refused.exit_code == 1 and "quantity_step" in refused.stderr, refused.output
    assert symbol not in {m["symbol"] for m in json.loads(cli("list-markets").stdout)["markets"]}
    accepted = cli("add-market", symbol, "--quantity-step", "0.0001", "--min-quantity", "0.0001")
    assert accepted.exit_code == 0, accepted.output


def test_add_market_then_list_markets_shows_it_and_orders_are_accepted(cli, make_user):
    symbol = "C" + uuid.uuid4().hex[:8].upper()
    result = cli("add-market", symbol, "--price-step", "0.01", "--quantity-step", "0.001", "--min-quantity", "0.01")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["market"]["symbol"] == symbol
    listed = {m["symbol"]: m for m in json.loads(cli("list-markets").stdout)["markets"]}
    assert listed[symbol] == {**listed[symbol], "quote_asset": "USD", "price_step": "0.01", "quantity_step": "0.001",
                              "min_quantity": "0.01", "max_price": "1000000000", "max_quantity": "1000000000"}
    assert {"BTC", "ETH"} <= set(listed)
    user = make_user("cli-market", USD="100")
    assert user.place(order_type="buy", currency_symbol=symbol, price="1.01", quantity="0.5").status_code == 201
    assert user.place(order_type="buy", currency_symbol=symbol, price="1.001",
                      quantity="0.5").json["error"]["code"] == "VALIDATION_ERROR"


def test_rotate_key_revokes_the_old_key(cli, app):
    user_id, old_key = created_user(cli)
    result = cli("rotate-key", str(user_id))
    assert result.exit_code == 0, result.output
    new_key = json.loads(result.stdout)["api_key"]
    assert new_key != old_key
    fresh = app.test_client()  # the old key may sit in this process's cache; ask the database via a fresh lookup
    from orders_app.services.funding import hash_api_key
    from orders_app.services.queries import principal_for_api_key
    ctx = runtime_of(app).ctx
    assert principal_for_api_key(hash_api_key(old_key), ctx) is None
    assert principal_for_api_key(hash_api_key(new_key), ctx).user_id == user_id
    assert fresh.get(f"/api/balances/{user_id}", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200


def test_reconcile_reports_ok(cli):
    result = cli("reconcile")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("reconciliation: OK")


def test_the_module_entry_point_runs_without_an_admin_token(stack_env):
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_TOKEN", "ADMIN_TOKEN_GENERATED")}
    result = subprocess.run([sys.executable, "-m", "orders_app.cli", "list-markets"], cwd=ROOT_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "BTC" in {m["symbol"] for m in json.loads(result.stdout)["markets"]}
    flask = subprocess.run([sys.executable, "-m", "flask", "--app", "orders_app.cli", "reconcile"], cwd=ROOT_DIR,
                           env=env, capture_output=True, text=True, timeout=60)
    assert flask.returncode == 0 and "reconciliation: OK" in flask.stdout, flask.stderr
    broken = subprocess.run([sys.executable, "-m", "orders_app.cli", "list-markets"], cwd=ROOT_DIR,
                            env=dict(env, DATABASE_URL="sqlite:///x"), capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0 and "DATABASE_URL" in broken.stderr and "Traceback" not in broken.stderr


def test_prune_outbox_deletes_published_applied_rows_and_keeps_the_rest(cli, app, make_user, monkeypatch):
    """Kept: a command the worker has not applied (it is the command log gaps are read from), a row not
    published, a row published inside the window. Deleted: the rest, in chunks (1 row each here)."""
    from sqlalchemy import text

    from orders_app.services import retention
    from orders_app.services.markets import add_market
    monkeypatch.setattr(retention, "PRUNE_CHUNK_ROWS", 1)
    ctx = runtime_of(app).ctx
    symbol = "P" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    buyer = make_user("prune", USD="10")
    for _ in range(3):
        assert buyer.place(order_type="buy", currency_symbol=symbol, price="1", quantity="1").status_code == 201
    topic = "prune-test-" + uuid.uuid4().hex[:8]
    extra = {"old trade": "NOW(3) - INTERVAL 10 DAY", "recent trade": "NOW(3) - INTERVAL 1 HOUR", "unpublished": "NULL"}
    with ctx.uow() as uow:
        session = uow.session
        # The worker applied commands 1 and 2 of the market, not 3; all three were published 10 days ago.
        session.execute(text("UPDATE outbox SET published_at = NOW(3) - INTERVAL 10 DAY WHERE market_id = :m"),
                        {"m": market_id})
        session.execute(text("INSERT INTO market_state (market_id, last_seq) VALUES (:m, 2)"
                             " ON DUPLICATE KEY UPDATE last_seq = 2"), {"m": market_id})
        for name, published_at in extra.items():
            session.execute(text(
                "INSERT INTO outbox (topic, message_key, event_type, payload, created_at, published_at) "
                f"VALUES (:topic, :key, 'trade', '{{}}', NOW(3) - INTERVAL 10 DAY, {published_at})"),
                {"topic": topic, "key": name})
        uow.commit()

    def remaining():
        with ctx.uow() as uow:
            return (sorted(uow.session.execute(text("SELECT seq FROM outbox WHERE market_id = :m"),
                                               {"m": market_id}).scalars()),
                    sorted(uow.session.execute(text("SELECT message_key FROM outbox WHERE topic = :t"),
                                               {"t": topic}).scalars()))
    assert remaining() == ([1, 2, 3], ["old trade", "recent trade", "unpublished"])
    try:
        result = cli("prune-outbox", "--older-than-hours", "24")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["deleted_rows"] >= 3
        assert remaining() == ([3], ["recent trade", "unpublished"])
        assert cli("prune-outbox", "--older-than-hours", "0").exit_code != 0  # a usage error, nothing deleted
        assert remaining() == ([3], ["recent trade", "unpublished"])
    finally:
        with ctx.uow() as uow:  # leave no unpublished row of an unknown topic behind for other tests
            uow.session.execute(text("DELETE FROM outbox WHERE topic = :t"), {"t": topic})
            uow.commit()


def test_prune_outbox_takes_a_cut_off_in_minutes_for_an_outbox_pruned_often(cli, app):
    """A busy system pruned every few minutes needs a cut-off finer than hours: a row published 10 minutes
    ago goes with --older-than-minutes 5 and stays with 15; hours and minutes together are a usage error."""
    from sqlalchemy import text
    ctx = runtime_of(app).ctx
    topic = "prune-minutes-" + uuid.uuid4().hex[:8]
    with ctx.uow() as uow:
        uow.session.execute(text(
            "INSERT INTO outbox (topic, message_key, event_type, payload, created_at, published_at) "
            "VALUES (:topic, 'trade', 'trade', '{}', NOW(3) - INTERVAL 10 MINUTE, NOW(3) - INTERVAL 10 MINUTE)"),
            {"topic": topic})
        uow.commit()

    def kept() -> int:
        with ctx.uow() as uow:
            return uow.session.execute(text("SELECT COUNT(*) FROM outbox WHERE topic = :t"), {"t": topic}).scalar_one()
    try:
        result = cli("prune-outbox", "--older-than-minutes", "15")
        assert result.exit_code == 0, result.output
        assert kept() == 1
        assert cli("prune-outbox", "--older-than-minutes", "5", "--older-than-hours", "1").exit_code == 2
        assert kept() == 1
        result = cli("prune-outbox", "--older-than-minutes", "5")
        assert result.exit_code == 0, result.output
        assert kept() == 0
    finally:
        with ctx.uow() as uow:
            uow.session.execute(text("DELETE FROM outbox WHERE topic = :t"), {"t": topic})
            uow.commit()
