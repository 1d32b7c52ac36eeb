"""A flood of bad records on `order-events` while real orders flow through the API: matching never stops.

1,000 records in ten bursts, while client threads place orders: garbage bytes, deep nesting, huge exponents,
wrong types, unknown versions and markets, and well-formed commands whose content differs from the
database's command of their sequence (some for sequences already applied, some for ones not handed out
yet). Every accepted order is applied, each bad record is in `order-events.dlq` exactly once, the worker's
`orders_worker_poison_records_total` counts all of them, and the database reconciles.
"""
from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter

import pytest

from orders_app import runtime_of
from orders_app.processes import ROOT_DIR
from orders_app.repositories import settlement
from orders_app.services.markets import add_market
from tests.faults.load import System, account_for, engine_for
from tests.support.kafka import DeadLetters, forged_command, produce, reason_of, wait_consumed
from tests.support.metrics import scrape
from tests.support.reconcile import reconcile_cli
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow
BAD_RECORDS = 1000
BURSTS = 10
ORDERS_PER_BURST = 30
SEED = 20261201
FIGURES_JSON = ROOT_DIR / "bench-results" / "poison-flood.json"


def _bad_records(rng: random.Random, symbol: str, market_id: int, applied: int, accepted: int, count: int,
                 first: int, tag: str) -> list[tuple[bytes, bytes, str]]:
    """(key, value, kind) of `count` bad records; the key names each one for the DLQ check."""
    kinds = ["garbage", "deep", "exponent", "wrong_type", "version", "unknown_market", "stale_differs",
             "future_differs"]
    records = []
    for n in range(first, first + count):
        kind = kinds[n % len(kinds)]
        if kind == "garbage":
            value = rng.randbytes(rng.randint(0, 300))
        elif kind == "deep":
            value = b"[" * (100_000 if n % 50 == 1 else 5_000)
        elif kind == "exponent":
            value = forged_command(symbol, market_id, 1, 1, "order_placed").replace(
                b'"seq": 1', b'"seq": 1e9999999999999999999')
        elif kind == "wrong_type":
            good = json.loads(forged_command(symbol, market_id, accepted + 1, 1, "order_placed"))
            field, bad = rng.choice([("seq", True), ("seq", "5"), ("order_id", 1.5), ("order", "x"),
                                     ("market_id", None), ("type", "order_deleted"), ("request_id", 7)])
            value = json.dumps(good | {field: bad}).encode() if n % 3 else b"[]"
        elif kind == "version":
            value = json.dumps(json.loads(forged_command(symbol, market_id, accepted + 1, 1, "order_placed"))
                               | {"version": rng.choice([0, 2, "1", True])}).encode()
        elif kind == "unknown_market":
            value = forged_command("NO" + uuid.uuid4().hex[:8].upper(), market_id, 1, 1, "order_placed")
        elif kind == "stale_differs":  # this market only places orders: no cancel was ever at these seqs
            value = forged_command(symbol, market_id, rng.randint(1, max(1, applied)), rng.randint(1, 10**6),
                                   "cancel_requested")
        else:
            value = forged_command(symbol, market_id, accepted + rng.randint(1, 40), rng.randint(1, 10**6),
                                   "cancel_requested")
        records.append((f"flood-{tag}-{n}".encode(), value, kind))
    return records


def _poison_counted(worker) -> dict[str, float]:
    """The worker's set-aside records so far, by reason (its metrics page)."""
    return {dict(labels)["reason"]: value for (name, labels), value in scrape(worker.metrics_url).items()
            if name == "orders_worker_poison_records_total"}


def test_a_thousand_bad_records_amid_real_orders_are_each_set_aside_once_and_matching_goes_on(
        app, admin_headers, stack_env):
    ctx = runtime_of(app).ctx
    symbol = "F" + uuid.uuid4().hex[:9].upper()
    market_id = add_market(symbol, ctx)
    rng, tag = random.Random(SEED), uuid.uuid4().hex[:8]
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    # A consumer group of its own: the flood must be read from the topic, and on the test broker a group whose
    # earlier members were killed may never form again.
    system = System("poisonflood", admin_headers, symbol, {"USD": "100000000", symbol: "1000000"}, threads=4,
                    seed=7, KAFKA_CONSUMER_GROUP=f"poisonflood-{tag}",
                    # one loop that sets aside hundreds of records can outlast 3 s on a busy machine: the group
                    # would then drop the worker, its offsets would not commit, and records would be copied twice
                    KAFKA_MAX_POLL_INTERVAL_MS="10000")
    dead_letters = DeadLetters(bootstrap)
    try:
        system.worker.wait_logged('"partitions assigned"')
        # the group reads the topic from its start: the bad records earlier tests left there are counted first
        wait_consumed(bootstrap, f"poisonflood-{tag}")
        counted_before = _poison_counted(system.worker)
        load = system.load.start()
        system.wait_accepted(ORDERS_PER_BURST)
        started, kinds = time.monotonic(), Counter()
        for burst in range(BURSTS):
            with ctx.uow() as uow:
                applied = settlement.applied_seqs(uow.session).get(market_id, 0)
                accepted = settlement.accepted_seq(uow.session, market_id)
            records = _bad_records(rng, symbol, market_id, applied, accepted, BAD_RECORDS // BURSTS,
                                   burst * (BAD_RECORDS // BURSTS), tag)
            kinds.update(kind for _, _, kind in records)
            produce(bootstrap, [(key, value) for key, value, _ in records])
            system.wait_accepted(load.accepted_count() + ORDERS_PER_BURST)
        load.stop()
        keys = {f"flood-{tag}-{n}".encode() for n in range(BAD_RECORDS)}
        found = dead_letters.wait_for(keys, system.worker, timeout_s=60)
        set_aside_s = time.monotonic() - started
        engine = engine_for(stack_env["DATABASE_URL"])
        drain_s = wait_settled(engine, timeout_s=60)
        figures = account_for(engine, load)
        engine.dispose()
        dead_letters.poll()
        copies = Counter(len(records) for records in dead_letters.by_key(keys).values())
        reasons = Counter(reason_of(records[0]) for records in found.values())
        counted = {reason: value - counted_before.get(reason, 0.0)
                   for reason, value in _poison_counted(system.worker).items()}
        counted = {reason: value for reason, value in counted.items() if value}

        assert copies == {1: BAD_RECORDS}, f"DLQ copies per bad record: {copies}"
        assert sum(counted.values()) == BAD_RECORDS and counted == {r: float(n) for r, n in reasons.items()}
        assert reasons["differs_from_database"] == kinds["stale_differs"] + kinds["future_differs"]
        assert reasons["unknown_market"] == kinds["unknown_market"]
        assert figures.accepted == len(load.outcomes) and figures.failed_present == 0
        assert system.worker.process.poll() is None
        report = reconcile_cli(stack_env["DATABASE_URL"])
        record_figures({
            "bad_records": BAD_RECORDS, "bursts": BURSTS, "orders_accepted": figures.accepted,
            "order_statuses": dict(figures.statuses), "set_aside_s": round(set_aside_s, 1),
            "by_reason": dict(reasons), "dlq_copies_per_record": {str(k): v for k, v in copies.items()},
            "metric_total": sum(counted.values()), "drain_s": round(drain_s, 1), "reconcile": "OK",
            "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count()})
        print(f"\npoison flood: {BAD_RECORDS} bad records in {BURSTS} bursts amid {figures.accepted} orders "
              f"({dict(figures.statuses)}); all set aside {set_aside_s:.1f}s after the first burst, each in the DLQ "
              f"once, by reason {dict(reasons)}; every order applied ({drain_s:.1f}s after the load stopped)\n{report}")
    finally:
        dead_letters.close()
        system.close()


def record_figures(figures: dict) -> None:
    """The run's figures as JSON (`python -m tests.faults.soak_report --flood-json` records them in the docs)."""
    FIGURES_JSON.parent.mkdir(exist_ok=True)
    FIGURES_JSON.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
