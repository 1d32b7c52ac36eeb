"""Throughput of the pure matching engine: ``python -m orders_app.bench.engine [--commands N]``.

Workload (seeded, generated before timing by simulating it on an untimed book): a book pre-filled
with ``size`` resting orders around a fixed mid price, then ``N`` commands: ~60% passive GTC limit
orders at mid ± (1 + |normal(0, 25)|) ticks, ~30% GTC limit orders priced through the touch that
trade with one or more makers (sized to what the crossed levels hold, so they complete; larger
while the book is above ``size``, which keeps its size steady), ~10% cancels of random resting
orders. 50 users. Each size is timed ``--repeat`` times on a fresh pre-filled book; the best run is
shown, since this machine is shared. The fills column counts the Fill facts the engine returned.

Then the same commands run on the naive reference book (tests/unit/reference_book.py) for a few
seconds, and every one of its facts is compared with the engine's, so the ratio compares equal work.
The naive runs come after all engine runs: their garbage scatters the heap and slows later runs.
"""
import argparse
import gc
import platform
import random
import time

from orders_app.matching import BUY, SELL, Done, Fill, Incoming, OrderBook, Rested

SEED = 20250714
MID_TICKS = 1_000_000
PASSIVE_SPREAD_TICKS = 25
USERS = 50
LOTS_MAX = 10
CROSS_LEVELS_MAX = 20
BOOK_SIZES = (1_000, 10_000, 100_000)
COMMANDS_DEFAULT = 300_000
REPEAT_DEFAULT = 5
NAIVE_SECONDS_MAX = 3.0
NAIVE_COMMANDS_MAX = 20_000


def passive_price(rng: random.Random, side: str) -> int:
    offset = 1 + int(abs(rng.gauss(0, PASSIVE_SPREAD_TICKS)))
    return MID_TICKS - offset if side == BUY else MID_TICKS + offset


def prefill_rows(rng: random.Random, size: int) -> list[tuple[int, int, str, int, int]]:
    rows = []
    for order_id in range(1, size + 1):
        side = BUY if order_id % 2 else SELL
        rows.append((order_id, rng.randint(1, USERS), side, passive_price(rng, side), rng.randint(1, LOTS_MAX)))
    return rows


def generate_workload(size: int, commands_count: int, seed: int = SEED):
    """Rows to pre-fill, the commands (an ``Incoming`` or an order id to cancel), the facts the engine
    produced for the first ``NAIVE_COMMANDS_MAX`` of them (the answer the naive book must give), and
    how many fills and trading takers the whole run produced."""
    rng = random.Random(seed + size)
    rows = prefill_rows(rng, size)
    book = OrderBook()
    for row in rows:
        book.add_resting(*row)
    live = [row[0] for row in rows]  # resting ids; position map keeps removal O(1)
    position = {order_id: i for i, order_id in enumerate(live)}

    def forget(order_id: int) -> None:
        i = position.pop(order_id)
        last = live.pop()
        if last != order_id:
            live[i] = last
            position[last] = i

    commands: list[Incoming | int] = []  # an order, or the id of one to cancel
    results: list[list | Done | None] = []  # the facts of each of the first commands
    fills_count = takers_count = 0
    next_order_id = size + 1
    for _ in range(commands_count):
        roll = rng.random()
        if roll < 0.10 and live:
            command = live[rng.randrange(len(live))]
            if len(results) < NAIVE_COMMANDS_MAX:
                results.append(book.cancel(command))
            else:
                book.cancel(command)
            forget(command)
            commands.append(command)
            continue
        side = BUY if rng.random() < 0.5 else SELL
        lots = rng.randint(1, LOTS_MAX)
        if roll < 0.40:
            # A taker sized first (bigger while the book is above its target size), priced at the
            # level that holds that much, so it trades over one or more makers and never rests.
            levels = book.depth(CROSS_LEVELS_MAX)[1 if side == BUY else 0]
            lots = rng.randint(1, LOTS_MAX * (4 if len(book) > size else 1))
            price, available = passive_price(rng, side), 0
            for price, level_lots in levels:  # noqa: B007 - the loop leaves `price` at the level that fills it
                available += level_lots
                if available >= lots:
                    break
            lots = min(lots, available) or lots
        else:
            price = passive_price(rng, side)
        order = Incoming(next_order_id, rng.randint(1, USERS), side, price, lots, "GTC", False, None)
        next_order_id += 1
        facts = book.submit(order)
        for fact in facts:
            if fact.__class__ is Fill and not fact.maker_remaining_lots:
                forget(fact.maker_order_id)
        if facts[-1].__class__ is Rested:
            position[order.order_id] = len(live)
            live.append(order.order_id)
        commands.append(order)
        if len(results) < NAIVE_COMMANDS_MAX:
            results.append(facts)
        fills_count += len(facts) - 1
        takers_count += len(facts) > 1
    return rows, commands, results, fills_count, takers_count


def run_engine(rows, commands) -> tuple[float, int, int]:
    """Seconds for the commands on a freshly pre-filled engine book, fills seen, final book size."""
    book = OrderBook()
    for row in rows:
        book.add_resting(*row)
    submit, cancel = book.submit, book.cancel
    facts_count = 0
    started = time.perf_counter()
    for command in commands:
        if command.__class__ is int:
            cancel(command)
        else:
            facts_count += len(submit(command)) - 1
    elapsed = time.perf_counter() - started
    book.check_invariants()
    return elapsed, facts_count, len(book)


def run_naive(rows, commands, expected) -> tuple[float, int] | None:
    """Seconds and commands run on the naive book (bounded by time); None if it is unavailable."""
    try:
        from tests.unit.reference_book import ReferenceBook
    except ImportError:
        return None
    book = ReferenceBook.restored(rows)
    done = 0
    started = time.perf_counter()
    deadline = started + NAIVE_SECONDS_MAX
    for command in commands[:NAIVE_COMMANDS_MAX]:
        result = book.cancel(command) if command.__class__ is int else book.submit(command)
        if result != expected[done]:
            raise SystemExit(f"naive book disagrees with the engine at command {done}: {command}")
        done += 1
        if time.perf_counter() > deadline:
            break
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=COMMANDS_DEFAULT, help="commands timed per book size")
    parser.add_argument("--sizes", default=",".join(map(str, BOOK_SIZES)), help="comma-separated book sizes")
    parser.add_argument("--repeat", type=int, default=REPEAT_DEFAULT, help="timed runs per size; the best is shown")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive reference book")
    args = parser.parse_args()
    print(f"matching engine, {platform.python_implementation()} {platform.python_version()}, "
          f"best of {args.repeat} runs per size")
    print(f"{'book size':>10} {'commands':>9} {'orders/s':>11} {'takers':>8} {'fills':>8} {'size after':>10}"
          f" {'naive orders/s':>15} {'naive cmds':>10} {'ratio':>7}")
    sizes = [int(s) for s in args.sizes.split(",")]
    engine_rows = []
    for size in sizes:
        rows, commands, _, expected_fills, takers = generate_workload(size, args.commands)
        # Best of a few runs: this machine is shared, and the slow runs measure the neighbours.
        runs = []
        for _ in range(args.repeat):
            gc.collect()  # start each run without the previous run's garbage
            runs.append(run_engine(rows, commands))
        elapsed, fills, size_after = min(runs)
        if any(run[1] != expected_fills for run in runs):
            raise SystemExit(f"engine is not deterministic: {[run[1] for run in runs]} fills, not {expected_fills}")
        engine_rows.append((size, len(commands), len(commands) / elapsed, takers, fills, size_after))
        del rows, commands, runs
    for size, commands_count, rate, takers, fills, size_after in engine_rows:
        naive = None
        if not args.no_naive:
            rows, commands, expected, _, _ = generate_workload(size, min(args.commands, NAIVE_COMMANDS_MAX))
            naive = run_naive(rows, commands, expected)
        if naive is None:
            naive_text = f"{'-':>15} {'-':>10} {'-':>7}"
        else:
            naive_rate = naive[1] / naive[0]
            naive_text = f"{naive_rate:>15,.0f} {naive[1]:>10,} {rate / naive_rate:>6,.0f}x"
        print(f"{size:>10,} {commands_count:>9,} {rate:>11,.0f} {takers:>8,} {fills:>8,} {size_after:>10,}"
              f" {naive_text}", flush=True)


if __name__ == "__main__":
    main()
