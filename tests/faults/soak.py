"""The soak: minutes of mixed load on a whole system of its own, one worker killed, the database killed.

    python -m tests.faults.soak --minutes 10      # exit 0 when every check passed, 1 otherwise

It starts its own `mariadbd` (so it may kill it), broker, gunicorn and two `python consumer.py` workers, runs
the clients of `tests/faults/soak_traffic.py` at a steady rate, kills one worker with SIGKILL (and starts it
again) at 30 % of the run and the database at 60 % (down for a few seconds, then restarted on the same data).
When the load stops it waits until every market's accepted sequence is applied and checks: every answer was
one its request may get (never a 500); every order answered 201 or 200 is in the database as answered; no
IOC, FOK, market or cancel-requested order is still open; every first-credit race seller holds exactly their
deposit plus their sales; every placement is published; `python -m orders_app.reconcile` passes; both
workers survived the database outage and stop cleanly. It prints its figures and writes them as JSON
(`bench-results/soak.json` by default; `python -m tests.faults.soak_report` renders them into the docs).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from orders_app.processes import (
    ApiServer,
    Broker,
    PrivateDatabase,
    WorkerProcess,
    child_pids,
)
from tests.faults.load import (
    FAST_RECOVERY,
    engine_for,
    make_users,
    wait_published,
)
from tests.faults.soak_traffic import (
    ALLOWED_ANSWERS,
    FirstCreditRaces,
    Journal,
    OrderFlow,
)
from tests.support.reconcile import reconcile_cli
from tests.support.waits import wait_settled

ROOT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_JSON = ROOT_DIR / "bench-results" / "soak.json"
DEFAULT_RATE_PER_S = 75  # client actions (about 60 orders) per second: a moderate share of two shared cores
TRADERS = 40
TRADER_FUNDS = {"USD": "10000000", "BTC": "100000", "ETH": "100000"}
SYMBOLS = ["BTC", "ETH"]
RACE_SYMBOL = "RACE"
WORKER_KILL_AT, DATABASE_KILL_AT = 0.3, 0.6  # fractions of the run
DATABASE_DOWN_S = 5.0
DRAIN_TIMEOUT_S, PUBLISH_TIMEOUT_S = 300, 120
PROBLEMS_KEPT = 50


def _tree_pids(pid: int) -> list[int]:
    return [pid, *child_pids(pid)]


def _rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return round(total_kib / 1024, 1)


def _cpu_s(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return round(ticks / os.sysconf("SC_CLK_TCK"), 1)


class Stack:
    """The soak's own processes: a mariadbd it may kill, a broker, gunicorn, two workers."""

    def __init__(self):
        self.env = {"ADMIN_TOKEN": secrets.token_urlsafe(32)}
        self.db = self.broker = self.api = None
        self.workers: list[WorkerProcess] = []
        try:
            self.db, self.broker = PrivateDatabase("soak-db"), Broker("soak-broker")
            self.env.update(DATABASE_URL=self.db.url, KAFKA_BOOTSTRAP_SERVERS=self.broker.bootstrap)
            subprocess.run([sys.executable, "-m", "orders_app.cli", "add-market", RACE_SYMBOL], cwd=ROOT_DIR,
                           env=dict(os.environ, **self.env), check=True, capture_output=True, timeout=60)
            self.api = ApiServer("soak-api", **FAST_RECOVERY, **self.env, LOG_LEVEL="WARNING")
            self.workers = [self._worker(number) for number in (1, 2)]
        except BaseException:
            self.close()
            raise

    def _worker(self, number: int) -> WorkerProcess:
        worker = WorkerProcess(f"soak-worker-{number}", **FAST_RECOVERY, **self.env)
        worker.wait_logged('"worker started"', timeout_s=120)
        return worker

    def kill_worker(self, index: int) -> float:
        """SIGKILL one worker, start another in its place; the seconds until the new one started."""
        killed = self.workers[index].process
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        started = time.monotonic()
        self.workers[index] = self._worker(index + 1)
        return time.monotonic() - started

    def processes(self) -> dict[str, list[int]]:
        return {"API (gunicorn, all processes)": _tree_pids(self.api.process.pid),
                **{f"worker {n} (with its relay)": _tree_pids(w.process.pid) for n, w in enumerate(self.workers, 1)},
                "MariaDB": [self.db.process.pid], "broker": [self.broker.process.pid], "soak clients": [os.getpid()]}

    def close(self) -> list[int]:
        """Stop everything that started, whatever fails; the workers' exit codes."""
        exits = []
        try:
            for worker in self.workers:
                exits.append(worker.stop())
        finally:
            try:
                if self.api is not None:
                    self.api.stop()
            finally:
                try:
                    if self.broker is not None:
                        self.broker.stop()
                finally:
                    if self.db is not None:
                        self.db.remove()
        return exits


def _wait_until(journal: Journal, at_s: float) -> None:
    time.sleep(max(0.0, at_s - (time.monotonic() - journal.started)))  # a point on the run's timeline


def _inject_faults(stack: Stack, journal: Journal, duration_s: float) -> list[dict]:
    _wait_until(journal, duration_s * WORKER_KILL_AT)
    at_s = time.monotonic() - journal.started
    faults = [{"fault": "worker kill -9", "at_s": round(at_s, 1), "restarted_in_s": round(stack.kill_worker(0), 1)}]
    _wait_until(journal, duration_s * DATABASE_KILL_AT)
    at_s = time.monotonic() - journal.started
    stack.db.kill()
    time.sleep(DATABASE_DOWN_S)  # the outage itself
    stack.db.start()
    faults.append({"fault": "database kill -9", "at_s": round(at_s, 1),
                   "down_s": round(time.monotonic() - journal.started - at_s, 1)})
    return faults


def _outage_figures(journal: Journal, fault: dict) -> None:
    """When orders were accepted again after the database came back, and the 503s in between."""
    back_s = fault["at_s"] + fault["down_s"]
    first = next((a.at_s for a in journal.answers if a.at_s >= back_s and a.status == 201), None)
    end_s = first if first is not None else float("inf")
    fault["orders_accepted_again_after_restart_s"] = None if first is None else round(first - back_s, 1)
    fault["answers_503"] = sum(1 for a in journal.answers if fault["at_s"] <= a.at_s <= end_s and a.status == 503)


def _check_answers(journal: Journal, problems: list[str]) -> None:
    unexpected = Counter((a.action, a.key) for a in journal.answers if a.key not in ALLOWED_ANSWERS[a.action])
    problems += [f"{count} {action} requests answered {key}" for (action, key), count in unexpected.items()]
    bare = sum(1 for a in journal.answers if a.status == 503 and not (a.retry_after or "").isdigit())
    if bare:
        problems.append(f"{bare} answers 503 without a Retry-After")


def _check_orders(connection, journal: Journal, problems: list[str]) -> dict:
    rows = {(user_id, client_order_id): order_id for order_id, user_id, client_order_id in connection.execute(
        text("SELECT id, user_id, client_order_id FROM orders"))}
    sent, unknown_present = set(), 0
    for placed in journal.orders.values():
        key = (placed.user_id, placed.client_order_id)
        sent.add(key)
        if placed.order_id is not None and rows.get(key) != placed.order_id:
            problems.append(f"order {placed.client_order_id} answered {placed.status} as id {placed.order_id} "
                            f"is in the database as {rows.get(key)}")
        unknown_present += placed.order_id is None and key in rows
    if set(rows) - sent:
        problems.append(f"{len(set(rows) - sent)} orders in the database that no client sent")
    stuck = connection.execute(text(
        "SELECT id, type, time_in_force, status, cancel_requested_at IS NOT NULL FROM orders "
        "WHERE status IN ('pending', 'partially_filled') "
        "AND (type = 'market' OR time_in_force <> 'GTC' OR cancel_requested_at IS NOT NULL)")).all()
    if stuck:
        problems.append(f"{len(stuck)} orders still open that must be final, e.g. {[tuple(r) for r in stuck[:5]]}")
    placed = list(journal.orders.values())
    return {
        "sent": len(placed),
        "accepted_201": sum(1 for p in placed if p.status == 201),
        "recorded_then_answered_200_on_retry": sum(1 for p in placed if p.status == 200 and p.attempts > 1),
        "retried_after_503": sum(1 for p in placed if p.attempts > 1),
        "refused_400": sum(1 for p in placed if p.status == 400),
        "outcome_unknown_to_client": sum(1 for p in placed if p.order_id is None and p.status != 400),
        "outcome_unknown_but_recorded": unknown_present,
        "by_kind": dict(Counter(p.kind for p in placed).most_common()),
        "final_status": dict(connection.execute(text("SELECT status, COUNT(*) FROM orders GROUP BY status")).all()),
    }


def _check_race_sellers(connection, journal: Journal, problems: list[str]) -> dict:
    """Each seller's quote balance is their first deposit plus their sales, exactly; where the deposit's answer
    was lost (a 503), either with or without it. Which came first is read from their ledger."""
    sellers = {seller.user_id: seller for seller in journal.race_sellers}
    if not sellers:
        problems.append("no first-credit race completed")
        return {}
    ids = ",".join(str(user_id) for user_id in sellers)
    sales = dict(connection.execute(text(
        f"SELECT seller_user_id, SUM(price * quantity) FROM trades WHERE seller_user_id IN ({ids}) "
        "GROUP BY seller_user_id")).all())
    held = dict(connection.execute(text(
        f"SELECT user_id, available + locked FROM accounts WHERE asset = 'USD' AND user_id IN ({ids})")).all())
    first = Counter(reason for (reason,) in connection.execute(text(
        f"SELECT l.reason FROM ledger_entries l JOIN (SELECT MIN(id) AS id FROM ledger_entries WHERE asset = 'USD' "
        f"AND user_id IN ({ids}) GROUP BY user_id) f ON f.id = l.id")))
    for user_id, seller in sellers.items():
        sold = sales.get(user_id, Decimal(0))
        allowed = {sold + seller.deposit} if seller.deposit_status == 201 else {sold, sold + seller.deposit}
        if held.get(user_id, Decimal(0)) not in allowed:
            expected = " or ".join(map(str, allowed))
            problems.append(f"race seller {user_id} holds {held.get(user_id)} USD, not {expected}")
    return {"sellers": len(sellers), "sellers_who_sold": len(sales),
            "sale_credited_before_deposit": first["trade_sell"], "deposit_before_sale": first["deposit"],
            "deposit_answer_lost": sum(1 for s in sellers.values() if s.deposit_status != 201)}


def _verify(stack: Stack, journal: Journal, problems: list[str]) -> dict:
    engine = engine_for(stack.db.url)
    figures = {}
    try:
        try:
            figures["drain_s"] = round(wait_settled(engine, DRAIN_TIMEOUT_S), 1)
        except AssertionError as error:
            problems.append(f"markets stuck: {error}")
        accepted_ids = {p.order_id for p in journal.orders.values() if p.order_id is not None}
        try:
            figures["publish_s"] = round(wait_published(engine, accepted_ids, PUBLISH_TIMEOUT_S), 1)
        except AssertionError as error:
            problems.append(f"unpublished: {error}")
        with engine.connect() as connection:
            figures["orders"] = _check_orders(connection, journal, problems)
            figures["trades"] = connection.execute(text("SELECT COUNT(*) FROM trades")).scalar()
            figures["first_credit_races"] = _check_race_sellers(connection, journal, problems)
    finally:
        engine.dispose()
    try:
        figures["reconcile"] = reconcile_cli(stack.db.url, **stack.env).splitlines()[0]
    except AssertionError as error:
        problems.append(f"reconcile failed: {error}")
        figures["reconcile"] = "FAILED"
    for number, worker in enumerate(stack.workers, 1):
        if worker.process.poll() is not None:
            problems.append(f"worker {number} exited with {worker.process.returncode} during the soak")
    return figures


def run_soak(minutes: float, rate_per_s: float = DEFAULT_RATE_PER_S, seed: int = 1) -> dict:
    duration_s = minutes * 60
    problems: list[str] = []
    stack, clients = Stack(), []
    try:
        admin = {"Authorization": f"Bearer {stack.env['ADMIN_TOKEN']}"}
        tag = f"soak-{uuid.uuid4().hex[:6]}"
        traders = make_users(stack.api.url, admin, TRADERS, TRADER_FUNDS, tag)
        taker = make_users(stack.api.url, admin, 1, {"USD": "1000000000"}, f"{tag}-taker")[0]
        journal = Journal(stack.api.url)
        races = FirstCreditRaces(journal, admin, RACE_SYMBOL, taker, tag=f"{tag}-race", seed=seed)
        clients = [OrderFlow(journal, admin, traders, SYMBOLS, rate_per_s=rate_per_s, tag=tag, seed=seed), races]
        for client in clients:
            client.start()
        memory_start = {name: _rss_mib(pids) for name, pids in stack.processes().items()}
        faults = _inject_faults(stack, journal, duration_s)
        _wait_until(journal, duration_s)
        for client in clients:
            client.stop()
        load_s = time.monotonic() - journal.started
        _outage_figures(journal, faults[1])
        _check_answers(journal, problems)
        problems += journal.problems
        figures = _verify(stack, journal, problems)
        processes = stack.processes()
        memory = {name: {"start": memory_start[name], "end": _rss_mib(pids)} for name, pids in processes.items()}
        cpu = {name: _cpu_s(pids) for name, pids in processes.items()}
    finally:
        try:
            for client in clients:  # again after a failure: no client may outlive the stack
                client.stop()
        finally:
            exits = stack.close()
    if exits != [0, 0]:
        problems.append(f"the workers exited with {exits} when stopped")
    figures["first_credit_races"].update(rounds=races.rounds, rounds_cut_short=races.rounds_cut_short)
    by_action: dict[str, Counter] = {}
    for answer in journal.answers:
        by_action.setdefault(answer.action, Counter())[answer.key] += 1
    return {
        "passed": not problems, "problems": problems[:PROBLEMS_KEPT],
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "minutes": minutes, "load_s": round(load_s, 1), "rate_target_per_s": rate_per_s, "cpus": os.cpu_count(),
        "orders_accepted_per_s": round(figures["orders"]["accepted_201"] / load_s, 1),
        **figures, "faults": faults,
        "answers": dict(Counter(a.key for a in journal.answers).most_common()),
        "answers_by_action": {action: dict(counts.most_common()) for action, counts in by_action.items()},
        "no_answers": journal.no_answers[:PROBLEMS_KEPT],
        "memory_mib": memory, "cpu_s_at_end": cpu,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    from tests.faults.soak_report import render_table
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE_PER_S, help="client actions per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON.relative_to(ROOT_DIR)}")
    args = parser.parse_args(argv)
    figures = run_soak(args.minutes, args.rate, args.seed)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(render_table(figures))
    print("\n".join(["", f"soak {'PASSED' if figures['passed'] else 'FAILED'}; figures in {args.json}",
                     *(f"  problem: {problem}" for problem in figures["problems"])]))
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
