"""The local stack that `./dev run` and `./dev test` start keeps its secrets: its files are its owner's
alone, and its database user has a password and cannot hand its rights to anyone.

Checked on the stack this suite runs against (`./dev test` starts it fresh under .devstack/$DEVSTACK_NAME).
"""
from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from orders_app.processes import ROOT_DIR

STACK_DIR = ROOT_DIR / ".devstack" / os.environ.get("DEVSTACK_NAME", "test")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_stack_files_holding_secrets_are_readable_by_their_owner_only(stack_env):
    for path in (STACK_DIR / "env", STACK_DIR / "admin_token", STACK_DIR / "mariadb" / "password"):
        assert _mode(path) == 0o600, path
    # the folders too: the MariaDB socket (root, no password) lives in there
    assert _mode(STACK_DIR) == 0o700 and _mode(STACK_DIR / "mariadb") == 0o700
    assert stack_env["ADMIN_TOKEN"] in (STACK_DIR / "env").read_text()


def test_the_stack_database_user_has_a_password_and_no_grant_option(stack_env):
    url = make_url(stack_env["DATABASE_URL"])
    assert url.password and len(url.password) >= 24
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            grants = [row[0] for row in connection.execute(text("SHOW GRANTS FOR CURRENT_USER()"))]
    finally:
        engine.dispose()
    assert grants and not any("GRANT OPTION" in grant for grant in grants), grants
    global_grants = [grant for grant in grants if " ON *.* " in grant]
    # no server-wide right but PROCESS, with which the outbox relay lists running transactions
    assert all(grant.startswith(("GRANT USAGE ON *.*", "GRANT PROCESS ON *.*")) for grant in global_grants), grants


@pytest.mark.parametrize("username,password", [("orders", ""), ("orders", "wrong-password"), ("root", "")])
def test_the_stack_database_refuses_a_connection_without_the_password(stack_env, username, password):
    url = make_url(stack_env["DATABASE_URL"])
    engine = create_engine(url.set(username=username if username != "orders" else url.username, password=password))
    try:
        with pytest.raises(OperationalError, match="Access denied"):
            engine.connect()
    finally:
        engine.dispose()


def test_the_api_on_the_stack_talks_to_the_database_through_the_c_driver(app):
    from orders_app import runtime_of
    assert runtime_of(app).engine.dialect.driver == "mysqldb"
