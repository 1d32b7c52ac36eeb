"""Seeded differential test: the fast book and the naive reference book agree fact for fact."""
import os
import pathlib
import random
import subprocess
import sys

import pytest

from orders_app.matching import Incoming, OrderBook

from .reference_book import ReferenceBook

COMMANDS_PER_SEED = 12_000
USERS = 6  # few users, so self-trade prevention happens often


def random_commands(seed, commands_count, mid_ticks=1000, spread_ticks=12):
    """All order types, cancels of resting and unknown ids, and start-up restores."""
    rng = random.Random(seed)
    commands = []
    for order_id in range(1, commands_count + 1):
        user_id = rng.randint(1, USERS)
        side = rng.choice(("buy", "sell"))
        price = max(1, int(rng.gauss(mid_ticks, spread_ticks)))
        lots = rng.randint(1, 12)
        roll = rng.random()
        if roll < 0.17:
            commands.append(("cancel", rng.randint(max(1, order_id - 600), order_id + 5)))
        elif roll < 0.20:
            commands.append(("restore", order_id, user_id, side, lots))
        elif roll < 0.58:
            commands.append(("submit", Incoming.limit(order_id, user_id, side, price, lots)))
        elif roll < 0.67:
            commands.append(("submit", Incoming.limit(order_id, user_id, side, price, lots, tif="IOC")))
        elif roll < 0.74:
            commands.append(("submit", Incoming.limit(order_id, user_id, side, price, lots, tif="FOK")))
        elif roll < 0.80:
            tif = rng.choice(("GTC", "GTC", "IOC", "FOK"))
            commands.append(("submit", Incoming.limit(order_id, user_id, side, price, lots, tif, True)))
        elif roll < 0.905:
            commands.append(("submit", Incoming.market(order_id, user_id, "sell", qty_lots=lots)))
        elif roll < 0.93:
            commands.append(("submit", Incoming.market(order_id, user_id, "buy", qty_lots=lots)))
        elif roll < 0.96:
            budget = rng.randint(1, 8) * rng.randint(mid_ticks - 20, mid_ticks + 20) + rng.randint(0, mid_ticks)
            commands.append(("submit", Incoming.market(order_id, user_id, "buy", quote_budget=budget)))
        else:
            budget = lots * rng.randint(mid_ticks - 10, mid_ticks + 30)
            commands.append(("submit", Incoming.market(order_id, user_id, "buy", qty_lots=lots, quote_budget=budget)))
    return commands


def apply(book, command):
    kind = command[0]
    if kind == "submit":
        return book.submit(command[1])
    if kind == "cancel":
        return book.cancel(command[1])
    _, order_id, user_id, side, lots = command
    # A restore rests one tick outside the opposite best, so it never crosses.
    if side == "buy":
        best_ask = book.best_ask()
        price = (best_ask - 1) if best_ask else 990
    else:
        best_bid = book.best_bid()
        price = (best_bid + 1) if best_bid else 1010
    if price < 1:
        return None
    book.add_resting(order_id, user_id, side, price, lots)
    return None


@pytest.mark.parametrize(("seed", "spread_ticks"), [(20250714, 12), (7, 40)])
def test_fast_book_and_reference_book_produce_identical_facts(seed, spread_ticks):
    fast, reference = OrderBook(), ReferenceBook()
    fills = done = 0
    for step, command in enumerate(random_commands(seed, COMMANDS_PER_SEED, spread_ticks=spread_ticks)):
        expected = apply(reference, command)
        got = apply(fast, command)
        assert got == expected, f"step {step}: {command}"
        if isinstance(got, list):
            fills += len(got) - 1
            done += got[-1].__class__.__name__ == "Done"
        if step % 250 == 0:
            assert fast.depth(1000) == reference.depth(1000)
            assert fast.resting("buy") == reference.resting("buy")
            assert fast.resting("sell") == reference.resting("sell")
            fast.check_invariants()
    assert fast.resting("buy") == reference.resting("buy")
    assert fast.resting("sell") == reference.resting("sell")
    assert fills > COMMANDS_PER_SEED // 4 and done > COMMANDS_PER_SEED // 4  # the mix really trades
    fast.check_invariants()


def test_every_outcome_appears_in_the_differential_mix():
    """Guards the generator: a mix that never reached an outcome would prove nothing about it."""
    fast = OrderBook()
    outcomes = set()
    for command in random_commands(20250714, COMMANDS_PER_SEED):
        facts = apply(fast, command)
        if isinstance(facts, list):
            outcomes.add((type(facts[-1]).__name__, getattr(facts[-1], "status", ""), getattr(facts[-1], "reason", "")))
        elif facts is not None:
            outcomes.add(("cancel", facts.status, facts.reason))
    assert outcomes >= {
        ("Rested", "", ""), ("Done", "completed", "filled"), ("Done", "cancelled", "ioc"),
        ("Done", "rejected", "fok"), ("Done", "rejected", "post_only"), ("Done", "cancelled", "self_trade"),
        ("Done", "cancelled", "market_no_liquidity"), ("Done", "cancelled", "market_budget"),
        ("cancel", "cancelled", "cancel_requested"),
    }
    fast.check_invariants()


DIGEST_SCRIPT = """
import hashlib
from tests.unit.test_matching_differential import COMMANDS_PER_SEED, apply, random_commands
from orders_app.matching import OrderBook
book = OrderBook()
digest = hashlib.sha256()
for command in random_commands(20250714, COMMANDS_PER_SEED):
    digest.update(repr(apply(book, command)).encode())
print(digest.hexdigest())
"""


def test_facts_are_identical_in_other_processes_with_other_hash_seeds():
    """No iteration over hash-ordered containers leaks into the facts: two workers always agree."""
    root = pathlib.Path(__file__).resolve().parents[2]
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], cwd=root, env=env, capture_output=True,
                                text=True, timeout=120, check=True)
        digests.add(result.stdout.strip())
    assert len(digests) == 1
