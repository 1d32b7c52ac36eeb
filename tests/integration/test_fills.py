"""GET /api/fills over HTTP: only the caller's own, and read through an index of a user's trades.
(What fills hold after real matching: tests/integration/test_matching_e2e.py.)"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects import mysql

from orders_app.repositories.trades import fills_statement


def test_a_user_without_trades_has_no_fills(client, alice):
    response = client.get("/api/fills", headers=alice.headers)
    assert response.status_code == 200 and response.json == {"fills": []}


def test_fills_are_only_the_callers_own_and_admin_must_name_the_user(client, admin_headers, alice, bob):
    other = client.get("/api/fills", query_string={"userId": bob.id}, headers=alice.headers)
    assert other.status_code == 403 and other.json["error"]["code"] == "FORBIDDEN"
    unnamed = client.get("/api/fills", headers=admin_headers)
    assert unnamed.status_code == 400 and unnamed.json["error"]["field"] == "userId"
    assert client.get("/api/fills", query_string={"userId": bob.id}, headers=admin_headers).status_code == 200


def test_fills_queries_out_of_range_or_of_unknown_markets_are_400(client, alice):
    for query, field in (({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"before_id": 0}, "before_id"),
                         ({"order_id": "x"}, "order_id"), ({"currency_symbol": "NOPE"}, "currency_symbol")):
        response = client.get("/api/fills", query_string=query, headers=alice.headers)
        assert response.status_code == 400 and response.json["error"]["field"] == field, query


def _explain(ctx, **filters) -> list[dict]:
    statement = fills_statement(1, limit=100, **{"market_id": None, "order_id": None, "before_id": None, **filters})
    sql = str(statement.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))
    with ctx.uow() as uow:
        return [dict(row._mapping) for row in uow.session.execute(text("EXPLAIN " + sql))]


def test_a_users_fills_are_read_through_the_per_side_indexes_never_a_scan_of_all_trades(ctx):
    for filters, keys in (({}, ["ix_trades_buyer", "ix_trades_seller"]),
                          ({"market_id": 1}, ["ix_trades_buyer", "ix_trades_seller"]),
                          ({"before_id": 10**9}, ["ix_trades_buyer", "ix_trades_seller"]),
                          ({"order_id": 7}, ["ix_trades_buy_order_id", "ix_trades_sell_order_id"])):
        plan = _explain(ctx, **filters)
        trade_rows = [row for row in plan if row["table"] == "trades"]
        assert sorted(row["key"] for row in trade_rows) == keys, plan
        assert all(row["type"] in ("ref", "range") for row in trade_rows), plan
        if "order_id" not in filters:  # an order's few trades may be sorted; a user's many never are
            assert not any("filesort" in (row["Extra"] or "") for row in trade_rows), plan
