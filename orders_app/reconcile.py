"""Reconciliation: prove, against the live database, that no money appeared, vanished or hid.

    python -m orders_app.reconcile        # exit 0 and a report, or exit 1 listing every breach

Checks (one consistent snapshot: a REPEATABLE READ, read-only transaction):
- per asset, the sum over users of available + locked, plus the fee account's (a user's accounts too), equals
  deposits minus withdrawals;
- the fees credited to the fee account (its `fee` ledger rows) equal the fees the trades recorded;
- no balance is negative;
- each account's available and locked equal the sums of its ledger entries;
- each account's locked equals the holds of its open orders;
- each order's filled_quantity equals the sum of its trades, and its status agrees with it;
- no trade has the same user on both sides.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

BREACHES_SHOWN_MAX = 20

CHECKS = {
    "conservation": """
        SELECT b.asset, b.total, COALESCE(f.funded, 0) AS funded FROM
          (SELECT asset, SUM(available + locked) AS total FROM accounts GROUP BY asset) b
          LEFT JOIN (SELECT asset, SUM(delta_available + delta_locked) AS funded FROM ledger_entries
                     WHERE reason IN ('deposit', 'withdrawal') GROUP BY asset) f ON f.asset = b.asset
        WHERE b.total <> COALESCE(f.funded, 0)""",
    "fees credited differ from the trades' fees": """
        SELECT asset, SUM(credited) AS credited_minus_charged FROM
          (SELECT e.asset, e.delta_available AS credited FROM ledger_entries e
             JOIN fee_account f ON f.id = 1 AND e.user_id = f.user_id WHERE e.reason = 'fee'
           UNION ALL SELECT m.symbol, -t.buyer_fee FROM trades t JOIN markets m ON m.id = t.market_id
           UNION ALL SELECT m.quote_asset, -t.seller_fee FROM trades t JOIN markets m ON m.id = t.market_id) x
        GROUP BY asset HAVING SUM(credited) <> 0""",
    "negative balance": """
        SELECT user_id, asset, available, locked FROM accounts WHERE available < 0 OR locked < 0""",
    "account differs from its ledger": """
        SELECT a.user_id, a.asset, a.available, a.locked, l.available AS ledger_available,
               l.locked AS ledger_locked
        FROM accounts a LEFT JOIN
          (SELECT user_id, asset, SUM(delta_available) AS available, SUM(delta_locked) AS locked
           FROM ledger_entries GROUP BY user_id, asset) l ON l.user_id = a.user_id AND l.asset = a.asset
        WHERE a.available <> COALESCE(l.available, 0) OR a.locked <> COALESCE(l.locked, 0)""",
    "locked differs from open orders' holds": """
        SELECT a.user_id, a.asset, a.locked, COALESCE(h.held, 0) AS held FROM accounts a LEFT JOIN
          (SELECT o.user_id, CASE WHEN o.side = 'buy' THEN m.quote_asset ELSE m.symbol END AS asset,
                  SUM(o.locked_amount) AS held
           FROM orders o JOIN markets m ON m.id = o.market_id
           WHERE o.locked_amount <> 0 GROUP BY 1, 2) h ON h.user_id = a.user_id AND h.asset = a.asset
        WHERE a.locked <> COALESCE(h.held, 0)""",
    "final order still holds funds": """
        SELECT id, status, locked_amount FROM orders
        WHERE status IN ('completed', 'cancelled', 'rejected') AND locked_amount <> 0""",
    "filled differs from trades": """
        SELECT o.id, o.filled_quantity, COALESCE(t.traded, 0) AS traded FROM orders o LEFT JOIN
          (SELECT order_id, SUM(quantity) AS traded FROM
             (SELECT buy_order_id AS order_id, quantity FROM trades
              UNION ALL SELECT sell_order_id, quantity FROM trades) x GROUP BY order_id) t ON t.order_id = o.id
        WHERE o.filled_quantity <> COALESCE(t.traded, 0)""",
    "status disagrees with fills": """
        SELECT id, status, quantity, filled_quantity FROM orders
        WHERE (status = 'pending' AND filled_quantity <> 0)
           OR (status = 'partially_filled' AND (filled_quantity = 0 OR filled_quantity >= quantity))
           OR (status = 'completed' AND quantity IS NOT NULL AND filled_quantity <> quantity)
           OR (quantity IS NOT NULL AND filled_quantity > quantity)""",
    "self-trade": """
        SELECT id, buyer_user_id FROM trades WHERE buyer_user_id = seller_user_id""",
}


@dataclass
class Report:
    breaches: dict[str, list[dict]] = field(default_factory=dict)
    totals: dict[str, str] = field(default_factory=dict)
    fees: dict[str, str] = field(default_factory=dict)  # of which the fee account holds
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.breaches

    def render(self) -> str:
        lines = [f"reconciliation: {'OK' if self.ok else 'BREACHES FOUND'}"]
        lines += [f"  {name}: {count}" for name, count in self.counts.items()]
        for asset, total in sorted(self.totals.items()):
            fees = f" (fee account {self.fees[asset]})" if asset in self.fees else ""
            lines.append(f"  {asset}: users hold {total}{fees}")
        for check, rows in self.breaches.items():
            lines.append(f"BREACH {check}: {len(rows)} row(s)")
            lines += [f"    {row}" for row in rows[:BREACHES_SHOWN_MAX]]
        return "\n".join(lines)


def reconcile(session: Session) -> Report:
    """Run every check in one REPEATABLE READ snapshot (the session must not have started a transaction)."""
    report = Report()
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    session.execute(text("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"))
    try:
        for name, sql in CHECKS.items():
            rows = [dict(row._mapping) for row in session.execute(text(sql))]
            if rows:
                report.breaches[name] = rows
        for asset, total in session.execute(text(
                "SELECT asset, SUM(available + locked) FROM accounts GROUP BY asset")).all():
            report.totals[asset] = format(total.normalize(), "f") if total else "0"
        for asset, held in session.execute(text(
                "SELECT a.asset, a.available + a.locked FROM accounts a JOIN fee_account f "
                "ON f.id = 1 AND a.user_id = f.user_id")).all():
            report.fees[asset] = format(held.normalize(), "f") if held else "0"
        for table in ("users", "orders", "trades", "ledger_entries"):
            report.counts[table] = int(session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        session.execute(text("COMMIT"))
    return report


def main() -> int:
    from sqlalchemy import create_engine

    from orders_app.config import ConfigError, Settings
    try:
        settings = Settings.from_env(needs_admin_token=False)
    except ConfigError as error:
        print(f"reconcile: {error}", file=sys.stderr)
        return 2
    engine = create_engine(settings.database_url)
    try:
        with Session(engine) as session:
            report = reconcile(session)
    finally:
        engine.dispose()
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
