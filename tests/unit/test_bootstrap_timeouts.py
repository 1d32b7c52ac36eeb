"""Statement timeouts per role: a request path fails fast, an operator's whole-database check does not."""
from __future__ import annotations

from orders_app.bootstrap import OFFLINE_SOCKET_TIMEOUT_S, SOCKET_TIMEOUT_S, engine_options
from orders_app.config import Settings

SETTINGS = Settings.from_env({"DATABASE_URL": "mysql+mysqldb://u@127.0.0.1:3306/orders",
                              "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}, needs_admin_token=False)


def test_services_fail_a_statement_unanswered_for_30_s_but_the_cli_and_benchmarks_wait_for_long_checks():
    """A reconciliation reads every order and trade in one statement: on a million orders it takes longer
    than a request may wait, and the operator's check must not be cut off by the request path's timeout."""
    for role in ("api", "worker", "relay", "stream"):
        args = engine_options(SETTINGS, role)["connect_args"]
        assert (args["read_timeout"], args["write_timeout"]) == (SOCKET_TIMEOUT_S, SOCKET_TIMEOUT_S) == (30, 30)
    for role in ("cli", "bench"):
        args = engine_options(SETTINGS, role)["connect_args"]
        assert args["read_timeout"] == args["write_timeout"] == OFFLINE_SOCKET_TIMEOUT_S >= 3600

