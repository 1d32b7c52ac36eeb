"""docs/performance.md, rendered from the benchmarks' JSON so that no figure in it is typed by hand.

    python -m orders_app.bench report            # rewrite docs/performance.md from docs/*-benchmark.json
    python -m orders_app.bench report --check    # exit 1 if docs/performance.md is not what they render

Every number in the page comes from docs/e2e-benchmark.json (`bench e2e`), docs/book-benchmark.json
(`bench book`), docs/stream-benchmark.json (`bench stream`), docs/rate-benchmark.json (`bench rate`) or
docs/soak-benchmark.json (`bench soak`), or is computed from them here; the prose around them is this module's
template. A unit test renders the committed JSON and compares it with the committed page. Long because it
is the page's template: the prose and tables of every section; the fixed-rate section's are in rate_report.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orders_app.bench import rate_report
from orders_app.bench.markdown import ms as _ms
from orders_app.bench.markdown import number as _n
from orders_app.bench.markdown import prose as _prose
from orders_app.bench.markdown import table as _table

ROOT_DIR = Path(__file__).resolve().parents[2]
E2E_JSON = ROOT_DIR / "docs" / "e2e-benchmark.json"
BOOK_JSON = ROOT_DIR / "docs" / "book-benchmark.json"
STREAM_JSON = ROOT_DIR / "docs" / "stream-benchmark.json"
RATE_JSON = ROOT_DIR / "docs" / "rate-benchmark.json"
SOAK_JSON = ROOT_DIR / "docs" / "soak-benchmark.json"
LEVERS_JSON = ROOT_DIR / "docs" / "levers-benchmark.json"
BATCH_JSON = ROOT_DIR / "docs" / "batch-benchmark.json"
DRIFT_TARGET_PERCENT = 10
SLOW_WINDOW_MS = 1000  # a soak window whose accept p99 is above this counts as slow
LONG_SOAK_S = 3600
OUTPUT = ROOT_DIR / "docs" / "performance.md"
MIB = 1024 * 1024


def _machine(e2e: dict) -> str:
    machine = e2e.get("machine")
    if not machine:
        return "not recorded in docs/e2e-benchmark.json"
    return f"{machine['cpus']} CPUs, {_n(machine['memory_gib'])} GiB of memory"


def _headline(e2e: dict) -> str:
    rows = [
        ["orders sent", f"{_n(e2e['orders'])} over {e2e['concurrency']} keep-alive connections, "
                        f"{e2e['users']} users"],
        ["service", e2e["service"]],
        ["accepted (201)", f"{_n(e2e['accepted'])}; other answers: {_n(e2e['non_2xx'])}"],
        ["accepted orders/s", _n(e2e["accepted_orders_per_s"])],
        ["settled orders/s (all accepted orders matched and committed by the worker)",
         f"**{_n(e2e['settled_orders_per_s'])}** ({_n(e2e['accepted'])} in {e2e['all_settled_after_s']} s)"],
        ["trades", f"{_n(e2e['trades'])} ({e2e['orders_that_traded_percent']} % of the orders traded)"],
        ["reconciliation afterwards", e2e["reconciliation"]],
        ["load client", f"{e2e['load_client_cpu_percent_of_one_core']} % of one core"],
    ]
    if "ceiling" in e2e:
        rows += [["ceiling: best trivial gunicorn set-up, same client",
                  f"{_n(e2e['ceiling']['requests_per_s'])} requests/s ({e2e['ceiling']['best']})"],
                 ["ratio: settled orders/s ÷ ceiling", f"**{e2e['ratio_to_ceiling']:.2f}**"]]
    return _table(["figure", "result"], rows, "ll")


def _latency(e2e: dict) -> str:
    rows = []
    for label, key in (("accept latency (request sent → 201 received)", "accept_latency_ms"),
                       ("settlement lag (201 received → the worker's commit of that order)", "settlement_lag_ms")):
        figures = e2e[key]
        rows.append([label, *(_ms(figures[p]) for p in ("p50", "p95", "p99", "max"))])
    return _table(["", "p50", "p95", "p99", "max"], rows, "lrrrr")


def _ceiling(e2e: dict) -> str:
    rows = [[run["worker_class"], str(run["workers"]), str(run["threads"]), _n(run["requests_per_s"]),
             _n(run["non_2xx"]), f"{run['client_cpu_percent']:.0f} %"] for run in e2e["ceiling"]["runs"]]
    return _table(["worker class", "processes", "threads", "requests/s", "non-2xx", "load client CPU"],
                  rows, "lrrrrr")


def _cpu(e2e: dict) -> str:
    total = e2e["cpu_ms_per_order_total"]
    rows = [[name, f"{ms:.3f} ms", f"{100 * ms / total:.0f} %"] for name, ms in e2e["cpu_ms_per_order"].items()]
    rows.append(["**total**", f"**{total:.3f} ms**", "100 %"])
    return _table(["process", "CPU per order", "share"], rows, "lrr")


def _levers(chain: dict) -> str:
    """One row per step of the chain: the code at a commit, its e2e figures, CPU per order per process."""
    processes = list(dict.fromkeys(name for step in chain["steps"] for name in step["cpu_ms_per_order"]))
    rows = []
    for step in chain["steps"]:
        cpu = step["cpu_ms_per_order"]
        client = cpu.get("load client")
        rows.append([step["label"], step.get("lever", ""), f"`{step['commit']}`", step["driver"],
                     _n(step["settled_orders_per_s"]),
                     *(f"{cpu[name]:.2f}" if name in cpu else "—" for name in processes),
                     f"**{step['cpu_ms_per_order_total']:.2f}**",
                     f"{(step['cpu_ms_per_order_total'] - client) / client:.1f}" if client else "—",
                     _ms(step["accept_latency_ms"]["p99"]), _ms(step["settlement_lag_ms"]["p99"]),
                     step["reconciliation"]])
    return _table(["step", "what it changes", "commit", "driver", "settled orders/s",
                   *(f"{name} ms" for name in processes), "total ms", "service ÷ client", "p99 accept", "p99 lag",
                   "reconciliation"], rows, "llllr" + "r" * len(processes) + "rrrrl")


def _batch(runs: dict) -> str:
    """{"single": e2e figures, "batch": e2e figures with orders_per_request > 1}: one column each."""
    single, batch = runs["single"], runs["batch"]
    rows = [["orders per request", "1", str(batch["orders_per_request"])],
            ["accepted orders/s", _n(single["accepted_orders_per_s"]), _n(batch["accepted_orders_per_s"])],
            ["settled orders/s", _n(single["settled_orders_per_s"]), _n(batch["settled_orders_per_s"])],
            ["accept latency p50 / p99", f"{_ms(single['accept_latency_ms']['p50'])} / "
                                         f"{_ms(single['accept_latency_ms']['p99'])}",
             f"{_ms(batch['accept_latency_ms']['p50'])} / {_ms(batch['accept_latency_ms']['p99'])}"]]
    for name in single["cpu_ms_per_order"]:
        rows.append([f"CPU per order: {name}", f"{single['cpu_ms_per_order'][name]:.3f} ms",
                     f"{batch['cpu_ms_per_order'].get(name, 0):.3f} ms"])
    rows.append(["**CPU per order: total**", f"**{single['cpu_ms_per_order_total']:.3f} ms**",
                 f"**{batch['cpu_ms_per_order_total']:.3f} ms**"])
    rows.append(["non-2xx, reconciliation", f"{single['non_2xx']}, {single['reconciliation']}",
                 f"{batch['non_2xx']}, {batch['reconciliation']}"])
    return _table(["figure", "POST /api/orders", "POST /api/orders/batch"], rows, "lrr")


def _book(book: list[dict]) -> str:
    rows = []
    for run in book:
        rss = run.get("worker_rss_mib_after")
        rows.append([
            _n(run["resting_orders"]), _n(run["accepted_orders_per_s"]), _ms(run["accept_latency_ms"]["p99"]),
            _n(run["settled_orders_per_s"]), _ms(run["settlement_lag_ms"]["p99"]),
            f"{run['cpu_ms_per_order_total']:.2f} ms", f"{rss:.0f} MiB" if rss is not None else "—",
            f"{run['seeding_s']} s" if run["resting_orders"] else "—", run["reconciliation"]])
    return _table(["resting orders", "accepted orders/s", "p99 accept", "settled orders/s", "settlement lag p99",
                   "CPU per order", "worker RSS", "seeding", "reconciliation"], rows, "rrrrrrrrl")


def _book_spread(book: list[dict]) -> str:
    rates = [run["settled_orders_per_s"] for run in book]
    smallest, largest = min(book, key=lambda r: r["resting_orders"]), max(book, key=lambda r: r["resting_orders"])
    text = (f"Settled orders/s across these book sizes range from {_n(min(rates))} to {_n(max(rates))}; the "
            f"run with {_n(largest['resting_orders'])} resting orders settled "
            f"{100 * largest['settled_orders_per_s'] / smallest['settled_orders_per_s']:.0f} % of the rate of the "
            f"run with {_n(smallest['resting_orders'])}")
    rss_small, rss_large = smallest.get("worker_rss_mib_after"), largest.get("worker_rss_mib_after")
    extra = largest["resting_orders"] - smallest["resting_orders"]
    if rss_small is not None and rss_large is not None and extra > 0:
        per_order = (rss_large - rss_small) * MIB / extra
        text += (f"; the worker's resident memory grows from {rss_small:.0f} MiB to {rss_large:.0f} MiB for "
                 f"{_n(extra)} more resting orders, about {_n(per_order)} bytes per resting order")
    return text + "."


def _budget(e2e: dict) -> str:
    """What the CPU per order allows on this machine's cores, and what a share of the ceiling would need."""
    if "ceiling" not in e2e:
        return ""
    cores, total, ceiling = e2e["machine"]["cpus"], e2e["cpu_ms_per_order_total"], e2e["ceiling"]["requests_per_s"]
    api = e2e["cpu_ms_per_order"].get("API (gunicorn)", 0.0)
    bound, without_api = cores * 1000 / total, cores * 1000 / (total - api)
    return (f"On {cores} cores that is at most about {_n(bound)} orders/s with every core busy (ratio "
            f"{bound / ceiling:.2f}). A quarter of the ceiling ({_n(ceiling / 4)} orders/s) needs at most "
            f"{cores * 1000 / (ceiling / 4):.2f} ms of CPU per order for every process together, the load "
            f"client included; even with the API's share at zero the other processes' "
            f"{total - api:.2f} ms would allow about {_n(without_api)} orders/s (ratio "
            f"{without_api / ceiling:.2f}).")


def _to_half_ceiling(e2e: dict) -> str:
    if "ceiling" not in e2e:
        return "Doing more"
    factor = e2e["ceiling"]["requests_per_s"] / 2 / e2e["settled_orders_per_s"]
    if factor <= 1:
        return "This run reaches half the ceiling; doing more"
    return f"Reaching half the ceiling would take about {factor:.1f} times less CPU per order"


def _stream(stream: dict) -> str:
    lag = stream["push_lag_ms"]
    rows = [
        ["subscribers", f"{_n(stream['clients'])} on one stream process, {stream['channels_per_client']} channels "
                        f"each"],
        ["order load meanwhile", f"{_n(stream['accepted'])} orders at {_n(stream['accepted_orders_per_s'])}/s "
                                 f"({stream['concurrency']} connections)"],
        ["pushes", f"{_n(stream['pushes'])} in {stream['measured_s']} s: **{_n(stream['pushes_per_s'])}/s**, "
                   f"from {_n(stream['events_from_kafka'])} Kafka events"],
        ["push lag (worker's settle time → subscriber's receipt)",
         f"p50 {_ms(lag['p50'])}, p95 {_ms(lag['p95'])}, **p99 {_ms(lag['p99'])}**, max {_ms(lag['max'])} "
         f"({_n(stream['lag_samples'])} pushes)"],
        ["stream process CPU", f"{stream['stream_cpu_percent_of_one_core']} % of one core"],
        ["stream process memory (RSS)", f"{_n(stream['stream_rss_mib']['connected_idle'], 1)} MiB with the "
                                        f"subscribers connected, {_n(stream['stream_rss_mib']['after_load'], 1)} "
                                        f"MiB after the load"],
        ["subscribers disconnected as too slow", _n(stream["disconnected_too_slow"])],
        ["subscriber process CPU", f"{stream['subscriber_process_cpu_percent_of_one_core']} % of one core"],
    ]
    if "load_average_1m" in stream:
        rows.append(["machine load (1-minute load average, before → after)",
                     f"{stream['load_average_1m']['before']} → {stream['load_average_1m']['after']} on "
                     f"{stream['machine']['cpus']} CPUs"])
    return _table(["figure", "result"], rows, "ll")


def _soak(soak: dict) -> str:
    latency = soak["accept_latency_ms"]
    rows = [
        ["orders", f"{_n(soak['orders'])} offered at {_n(soak['rate_per_s'])}/s over {soak['connections']} "
                   f"keep-alive connections; {_n(soak['accepted'])} accepted in {_n(soak['load_s'], 1)} s "
                   f"({_n(soak['achieved_rate_per_s'], 1)}/s)"],
        ["non-2xx answers", _n(soak["non_2xx"])],
        ["accept latency (from each order's scheduled time)",
         f"p50 {_ms(latency['p50'])}, p99 {_ms(latency['p99'])}, max {_ms(latency['max'])}"],
        *_soak_latency_over_time(soak),
        ["all settled after", f"{_n(soak['all_settled_after_s'], 1)} s"],
        ["outbox rows", f"**max {_n(soak['outbox_rows']['max'])}**, {_n(soak['outbox_rows']['end'])} at the end; "
                        f"{_n(soak['outbox_pruned_rows'])} pruned in {soak['prune_s']['runs']} runs (longest "
                        f"{soak['prune_s']['max']} s)"],
        ["open orders in the market's book", f"max {_n(soak['open_orders']['max'])}, "
                                             f"{_n(soak['open_orders']['end'])} at the end"],
        ["reconciliation afterwards", soak["reconciliation"]],
        ["machine load meanwhile (1-minute load average)",
         f"mean {soak['load_average_1m']['mean']}, max {soak['load_average_1m']['max']} on "
         f"{soak['machine']['cpus']} CPUs"],
    ]
    return _table(["figure", "result"], rows, "ll")


def _soak_latency_over_time(soak: dict) -> list[list[str]]:
    """The sampling windows' own accept p99: a run-wide p99 cannot tell a steady tail from one burst."""
    windows = [row for row in soak.get("series", []) if row.get("accept_p99_ms") is not None]
    if not windows:
        return []
    p99s = sorted(row["accept_p99_ms"] for row in windows)
    slow = [row for row in windows if row["accept_p99_ms"] > SLOW_WINDOW_MS]
    text = (f"median of the windows' p99 {_ms(p99s[len(p99s) // 2])}; {len(slow)} of {len(windows)} windows "
            f"above {_n(SLOW_WINDOW_MS)} ms")
    if slow:
        text += (f", from {_n(slow[0]['t_s'])} s to {_n(slow[-1]['t_s'])} s, with the load average up to "
                 f"{max(row.get('load_1m') or 0 for row in slow)}")
    return [[f"accept p99 per {_n(soak['sample_every_s'])} s window", text]]


def _soak_memory(soak: dict) -> str:
    rows = [[name + ("" if rss["ours"] else " (not ours)"), f"{_n(rss['after_warm_up'], 1)} MiB",
             f"{_n(rss['end'], 1)} MiB", f"{_n(rss['max'], 1)} MiB", f"{rss['drift_percent']:+.1f} %"]
            for name, rss in soak["rss_mib"].items()]
    return _table(["process", "RSS after warm-up", "RSS at the end", "max", "drift"], rows, "lrrrr")


def _soak_verdict(soak: dict) -> str:
    ours = {name: rss for name, rss in soak["rss_mib"].items() if rss["ours"]}
    over = [f"{name} ({rss['drift_percent']:+.1f} %)" for name, rss in ours.items()
            if abs(rss["drift_percent"]) >= DRIFT_TARGET_PERCENT]
    if over:
        verdict = f"Over the {DRIFT_TARGET_PERCENT} % target: {', '.join(over)}."
    else:
        name, largest = max(ours.items(), key=lambda item: abs(item[1]["drift_percent"]))
        verdict = (f"Every one of our processes stayed within the {DRIFT_TARGET_PERCENT} % target; the largest "
                   f"drift is {largest['drift_percent']:+.1f} % ({name}).")
    if soak["load_s"] < LONG_SOAK_S:
        verdict += (f" This run lasted {soak['load_s'] / 60:.0f} minutes; a slow leak shows only over a longer "
                    "one (`--orders 1000000` at 250/s lasts about 67 minutes).")
    broker = soak["rss_mib"].get("broker")
    if broker:
        grown = broker["end"] - broker["after_warm_up"]
        # The two windows' middles (15 % and 95 % of the run) are 80 % of the orders apart.
        per_order = grown * MIB / max(0.8 * soak["accepted"], 1)
        verdict += (f" The broker grew by {_n(grown, 1)} MiB ({broker['drift_percent']:+.1f} %), about "
                    f"{_n(per_order)} bytes per order: the development "
                    "broker (Tansu) keeps every message in memory, so it grows with the load by design; a "
                    "production Kafka keeps messages on disk for its retention time.")
    return verdict


def render(e2e: dict, book: list[dict], stream: dict | None = None, rate: dict | None = None,
           soak: dict | None = None, levers: dict | None = None, batch: dict | None = None) -> str:
    """The whole page: the templates below with the figures of the JSON documents."""
    latency = e2e["accept_latency_ms"]
    sections = [
        HEADER, _prose(INTRO, machine=_machine(e2e)),
        "## End to end: `python -m orders_app.bench e2e`\n",
        _prose(E2E_METHOD, orders=_n(e2e["orders"]), concurrency=e2e["concurrency"], users=e2e["users"],
               traded=e2e["orders_that_traded_percent"]),
        _headline(e2e), "", "![throughput and latency over time](e2e-benchmark.svg)", "",
        "### Latency\n", _latency(e2e), "",
        _prose(LATENCY_NOTES, concurrency=e2e["concurrency"], rate=_n(e2e["accepted_orders_per_s"]),
               little=_n(1000 * e2e["concurrency"] / e2e["accepted_orders_per_s"]), p50=_ms(latency["p50"]),
               tail=f"{latency['p99'] / latency['p50']:.1f}"),
        "### CPU per order, per process\n", _cpu(e2e), "",
        _prose(CPU_NOTES, total=f"{e2e['cpu_ms_per_order_total']:.2f}",
               per_core=_n(1000 / e2e["cpu_ms_per_order_total"]), budget=_budget(e2e),
               to_half_ceiling=_to_half_ceiling(e2e))]
    if "ceiling" in e2e:
        sections += ["### Ceiling\n", _prose(CEILING_METHOD), _ceiling(e2e), ""]
    sections += rate_report.section(rate)
    sections += ["## Large books: `python -m orders_app.bench book`\n", _prose(BOOK_METHOD), _book(book), "",
                 _prose(_book_spread(book) + " " + BOOK_NOTES)]
    if stream is not None:
        sections += ["## Fan-out to WebSocket subscribers: `python -m orders_app.bench stream`\n",
                     _prose(STREAM_METHOD, clients=_n(stream["clients"])), _stream(stream), "",
                     _prose(STREAM_NOTES, per_push_us=_n(10_000 * stream["stream_cpu_percent_of_one_core"]
                                                         * stream["measured_s"] / max(stream["pushes"], 1), 1))]
    if soak is not None:
        sections += ["## Soak: `python -m orders_app.bench soak`\n",
                     _prose(SOAK_METHOD, orders=_n(soak["orders"]), rate=_n(soak["rate_per_s"]),
                            sample=_n(soak["sample_every_s"]), prune=_n(soak["prune_every_s"]),
                            minutes=soak["prune_older_than_minutes"]),
                     _soak(soak), "", "Resident memory (RSS) of each process, sampled every "
                     f"{_n(soak['sample_every_s'])} s:", "", _soak_memory(soak), "",
                     _prose(SOAK_NOTES + "\n\n" + _soak_verdict(soak), target=DRIFT_TARGET_PERCENT)]
    if batch is not None:
        sections += ["## Batches: `python -m orders_app.bench e2e --batch 10`\n",
                     _prose(BATCH_METHOD, per_request=batch["batch"]["orders_per_request"],
                            concurrency=batch["batch"]["concurrency"]), _batch(batch), ""]
    if levers is not None:
        sections += ["## Before and after, a lever at a time\n", _prose(LEVERS_CHAIN_METHOD, orders=_n(levers["orders"])),
                     _levers(levers), "", _prose(LEVERS_CHAIN_NOTES)]
    sections += [LEVERS, REPRODUCE]
    return "\n".join(sections).rstrip("\n") + "\n"


HEADER = """\
# Performance

<!-- Generated by `python -m orders_app.bench report` from docs/e2e-benchmark.json,
     docs/book-benchmark.json, docs/stream-benchmark.json, docs/rate-benchmark.json and docs/soak-benchmark.json.
     Do not edit: change the template in orders_app/bench/report.py, or run the
     benchmarks again (see "Reproducing the figures"). -->
"""

INTRO = """\
Every figure on this page comes from the JSON files next to it, written by the benchmarks below and
rendered by `python -m orders_app.bench report`; a unit test fails if the page and the files disagree.
The benchmarks run the whole system on one machine — MariaDB (`innodb_flush_log_at_trx_commit=1`, a durable
commit per transaction), the broker, gunicorn, the matching worker with its relay, and the load client all
share its cores — so the figures are what one small machine does, not what the design allows when API,
worker and database each get their own. Machine of the recorded run: {machine}.

Compare figures of one sitting only: the same code on the same machine varies by tens of percent with
other load on it, and a stack that has run for hours (many markets, a memory broker holding every
message) is slower than a fresh one (`./dev run` or `DEVSTACK_NAME=bench` makes a fresh one).
"""

E2E_METHOD = """\
The load client sends {orders} limit orders over {concurrency} keep-alive connections in a closed loop
(each connection sends its next order when the previous one is answered), as {users} funded users, into a
market of the benchmark's own: buys at mid −20…+5 ticks and sells at mid −5…+20, so the price ranges
overlap ({traded} % of the orders traded). Before measuring it warms up in rounds of 200 orders until they settle within 250 ms (the
worker has joined its consumer group and consumes from Kafka). It then waits until the worker has applied
the last order, runs the reconciliation, and measures the ceiling. An order counts as settled when the
worker's transaction that matched it committed; settled orders/s is accepted orders ÷ the time from the
first request to the last settlement.
"""

LATENCY_NOTES = """\
With {concurrency} requests always in flight, Little's law fixes the mean accept latency at
{concurrency} ÷ throughput = {concurrency} ÷ {rate}/s ≈ {little} ms (measured p50: {p50}): at a given
concurrency, latency and throughput are one figure, and latency falls only when each order costs less.
Below saturation (fewer connections) latency falls with load. A request waits for the group-commit batch
in flight, then for its own, which is why p99 is {tail} × p50 here.
"""

CPU_NOTES = """\
The CPU each process spent during the load (from `/proc`), divided by the accepted orders. At
{total} ms of CPU per order one core can carry at most about {per_core} orders/s of the whole pipeline,
whatever the concurrency: the system is CPU-bound, not waiting on locks or fsyncs (group commit removed
that queue). An order is much more than a request: the request itself (Flask, flask-smorest,
marshmallow, authentication, gunicorn), its share of a group-commit transaction, a Kafka produce and fetch,
its share of a settling transaction (locks, trades, four balance moves per trade, ledger rows, order states,
invariant checks) and the database's work for both transactions. {budget} {to_half_ceiling} —
a compiled hot path (the API's request handling and the worker's settlement) — or more cores: API processes are stateless, markets spread over workers by Kafka partition,
and the database scales up separately (see [operations](operations.md#scaling)).
"""

CEILING_METHOD = """\
The ceiling is what this machine serves at all: a trivial Flask app that parses the order's JSON and
answers 201, under gunicorn set-ups of a few shapes, loaded by the same client for a few seconds each. The
ratio above divides the settled orders/s by the best of them.

"""

BOOK_METHOD = """\
The same load against fresh markets already holding N resting orders, seeded far from the price (so the load
never trades with them) through the placing service in batches of 500, one run per size (fewer orders per
run than the end-to-end run, so run-to-run noise is larger):

"""

BOOK_NOTES = """\
Placing an order touches only the user's account rows and the market's sequence row, never the book, and
the engine's book is a price index with FIFO levels, so neither cost should grow with the book; memory is
per resting order (Python tuples in the engine's book).
"""

STREAM_METHOD = """\
{clients} subscribers connect to one stream process (`python -m orders_app.stream`), each subscribed to
the `trades:` and `book:` channels of the benchmark's market, while the end-to-end load above (its order
mix, fewer connections) trades in that market. The subscribers run in a process of their own, as minimal
WebSocket clients (they answer pings and read each frame's `timestamp`), so that measuring costs less than
what is measured. A push's lag is its receipt time minus the `timestamp` it carries, which the worker stamps
in the settling transaction just before it commits: it covers the commit, the outbox relay, Kafka, the stream
process and the subscriber process, on one machine whose cores all of them share with the API, the worker
and the database.
"""

STREAM_NOTES = """\
Each push is serialised and framed once, and all the pushes one Kafka poll brings for a client go to its
socket in one write: about {per_push_us} µs of the stream process's CPU per push delivered, the system call
included. Writing each push on its own (websockets' `broadcast`, or a queue and a task per client) let the
lag grow to seconds at 1,000 subscribers in the same set-up during development. The lag includes waiting for
a core: with a load average above the number of CPUs, every process of the pipeline waits its turn.
"""

SOAK_METHOD = """\
The end-to-end path of `bench e2e` (same service start-up, market set-up, users and warm-up) under a long
steady load: {orders} orders sent open loop at {rate}/s, order i at t0 + i ÷ rate whatever the service
does, so latency counts from when the order was due. Half of them are the end-to-end mix; each is followed by
a counter-order of the same quantity on the other side, priced to cross the whole book, from a user of the
other half: as much is bought as sold, so the book stays small and balances circulate. Every {sample} s the
benchmark records each process's RSS, the outbox's rows, the market's open orders and the accepted and
settled counts; every {prune} s it prunes the outbox as an operator would (the service behind `orders-cli
prune-outbox`, rows published more than {minutes} min before). At the end it waits until every order
is settled and runs the reconciliation.
"""

SOAK_NOTES = """\
Drift is the mean RSS of the last 10 % of the samples against the mean of the samples from 10 % to 20 % of
the run (the first tenth is start-up: imports, caches, connection pools), in percent of the latter; the
target for our processes (the API's, the matching worker's, the relay's) is below {target} %. MariaDB is
shown for completeness: its buffer pool fills with the new rows until it reaches its configured size.

Slow windows late in a long run deserve a second look at the broker: the development broker keeps every
message in memory, and once it holds gigabytes it serves the worker's fetches late, so orders settle through
the worker's database catch-up and the whole pipeline slows. To tell whose the slowdown is, offer the same rate
with `bench rate --rates R` twice against the soaked database: once through the soaked broker, once through a
fresh one (`KAFKA_BOOTSTRAP_SERVERS` of a new broker); the service and its database are the same in both.
"""

LEVERS_CHAIN_METHOD = """\
Each row is the code at one commit, run by `python -m orders_app.bench e2e --no-ceiling` ({orders} orders,
32 connections) on a fresh local stack of its own, one after the other in one sitting; the first row is the
release before markets became pairs, fees and streams were added, the next the code those features left, and
each later row adds one lever to the one before. The columns in ms are CPU per order per process (the load
client's included, as a yardstick of the machine: it does the same work in every row).
"""

LEVERS_CHAIN_NOTES = """\
Compare "service ÷ client" rather than orders/s or milliseconds. This virtual machine's speed drifts by up to
a factor of two over minutes (the same code, minutes apart, gave twice the orders/s), and every figure in a
row drifts with it, the load client's included although its work per order never changes. So the service's
CPU per order (every process but the client) divided by the client's own is the figure that compares across
rows: it is what an order costs the system in units of the machine's speed during that row. Each row is a
single run: differences between neighbouring rows of less than about a tenth are within what running a row
again gives.
"""

BATCH_METHOD = """\
The same end-to-end load and order mix, {per_request} orders per request to `POST /api/orders/batch` (each
request one user's), over the same {concurrency} connections, next to a run of one order per
`POST /api/orders` made right after it. Figures count orders; an order's accept latency is its request's.
"""

LEVERS = """
## Levers, and what each was measured to do

Measured when each was introduced, each against the code without it (A/B runs on the same machine); they
are method notes, not figures of the runs above.

| lever | effect | how measured |
| --- | --- | --- |
| group commit in the API (`services/group_commit.py`, `PLACE_BATCH_ORDERS_MAX`) | without it, request threads queued on the market's sequence row lock, held through each commit's fsync (92 % of request time in py-spy); with it, the orders queued meanwhile share one transaction and one fsync, and intake became CPU-bound | py-spy `--idle` on a gunicorn worker; the `orders_place_batch_orders` histogram |
| plain SQL (`text()`) on the order path instead of ORM statements | per statement, ORM UPDATE 576 µs of CPU, Core 400 µs, `text()` 144 µs, a raw cursor 56 µs | cProfile with `time.thread_time`; a statement micro-benchmark |
| accounts locked by one primary-key join over the sorted keys (`JSON_TABLE`) | one round trip per batch instead of one per order; `EXPLAIN` shows `eq_ref` on the primary key | `EXPLAIN`, e2e |
| the worker's relay publishes order events (`OUTBOX_PUBLISHER=relay`) instead of each API process | about a quarter less CPU per order end to end: one producer making large batches instead of small ones in every API process | e2e, alternating runs |
| `crc32c` (C) for kafka-python | kafka-python's pure-Python CRC-32C was 64 % of the worker's CPU samples; 16 KiB: 3.4 ms → 1.2 µs | py-spy on the worker under e2e load |
| the worker's consumer-group session (`KAFKA_SESSION_TIMEOUT_MS=10000`) | with kafka-python's 45 s default the broker answered the group join after the request timeout, so the worker never got a partition and settled everything through the 1 s database catch-up; settlement lag p50 went from ~1 s to ~0.1 s | e2e settlement lag; worker log "partitions assigned" |
| `KAFKA_FETCH_MAX_WAIT_MS` 100 instead of 500 | an idle market's next command is not held up to half a second; an idle worker stays at a few % of a core (20 ms cost 11 %) | `top`, e2e |
| gunicorn shape (`GUNICORN_WORKERS` × `GUNICORN_THREADS`, gthread) | 1 × 32 beat 2 × 16, 2 × 8 and 4 × 8 on 2 shared cores: one process makes the biggest batches and no two committers compete for a sequence row. `sync` workers cannot batch (one request per process) | e2e per shape |
| two group-commit threads in one API process, each with its own transaction (not adopted) | at 322 orders/s offered, accept p99 106 and 115 ms against 75 and 53 ms with one thread (alternating runs): with two, each batch is about half as large, so every order pays more of a transaction, and the two transactions queue on the market's sequence row | `bench rate --rates 322 --seconds 20`, alternating |
| the relay polls every 25 ms (`OUTBOX_RELAY_POLL_MS`) instead of every 10 ms | each poll is a round for four processes — the relay's read and its Kafka request, the broker, the worker's fetch and its settling transaction — so fewer, fuller rounds: at 149 orders/s offered the processes used 66 and 51 % of both cores instead of 75 and 78 %; at 299/s, 74 and 72 % instead of 79 and 83 % (4.95 and 4.84 ms of CPU per order instead of 5.32 and 5.53), with accept p99 54 and 53 ms instead of 106 and 157 ms and settlement-lag p99 177 and 153 ms instead of 220 and 244 ms. 50 ms saved no more CPU (73 and 71 % at 299/s) and gave accept p99 78 and 91 ms | `OUTBOX_RELAY_POLL_MS=10` (`25`, `50`) `python -m orders_app.bench rate --rates 149,299 --seconds 20`, two alternating passes on one stack |
| the pool's check of each connection before use (`pool_pre_ping`), kept | turned off altogether — the most that checking only connections idle for a while could save — CPU per order stayed within noise: at 30 orders/s 28.2 and 27.9 ms without the check against 26.5 and 32.9 ms with it, at 292/s 5.92 and 5.86 ms against 5.99 and 6.02 ms; accept p99 ranged from 18 to 327 ms either way. Kept: one round trip per transaction buys a clean reconnect after a database restart | `bench rate --rates 30,292 --seconds 20`, alternating pairs on one stack |
| `gc.freeze()` after the API is built (not adopted) | the API's full (generation 2) collections took 50–65 ms, but only while the app was starting; during the measured rates one took about 1 ms, and the young generations about 0.15 ms each (~80 ms spread over ~400 collections in 20 s): no pause to remove | `gc.callbacks` timing in the gunicorn worker under `bench rate --rates 292` |
| `sys.setswitchinterval(0.001)` in gunicorn workers (`GUNICORN_SWITCH_INTERVAL_S`) | within noise end to end; kept because the committer thread waits on the database several times per batch and each wake-up waits for the GIL | e2e |
| API-key lookups cached per process (`API_KEY_CACHE_SECONDS`) | one SHA-256 and one query per request avoided | — |
| batching in the worker (a market's queued commands in one settling transaction, `SETTLE_BATCH_COMMANDS_MAX`) | with a backlog, settled orders/s rose several-fold: rows written as one JSON document per statement expanded by `JSON_TABLE` instead of compiled multi-row INSERTs or per-value quoting, plain rows instead of ORM objects, the full book invariant check only for books up to 1,000 orders, and Kafka producing moved out of the worker's interpreter into the relay | `python -m orders_app.bench worker --orders 20000`, py-spy |
| the relay's producer batching (`OUTBOX_SWEEP_BATCH_ROWS_MAX`, `linger_ms=5`) | up to 1,000 rows per flush | relay A/B |
| request schemas built once, and the worker's per-batch statements as `text()` | schema construction had been 5.6 % of the API's samples (69 µs a request); SQLAlchemy cache-key generation ~6 % of the worker's; a faster pipeline also makes bigger batches, which amortise each transaction further | py-spy `--gil`, `time.thread_time` per call, e2e A/B |
| one request log line per request only at `INFO` (the benchmark runs the service at `WARNING`; `BENCH_LOG_LEVEL=INFO` to include them) | at `INFO` the 32 request threads contend for the log handler's lock | py-spy |
| the worker logs settled orders grouped (up to 100 per line) at `INFO` | a JSON line costs ~22–35 µs; one line per order cost ~8 % of settled orders/s, grouped lines ~2 µs per order | `python -m orders_app.bench worker`, side by side |
| rate limiting (`RATE_LIMIT_ORDERS_PER_SECOND`, off by default) and worker metrics | the rate-limit check costs ~9 µs a request (shared memory, no round trip); the worker observes its metrics once per batch, not per order | `time.perf_counter` around the check; e2e |
| one `order-updates` message per settled batch, listing every order it changed, instead of one per order | in 20 s of the soak's order mix, 5,843 order changes went out in 699 messages: 1.85 outbox rows per order instead of 2.9 (a row costs an insert, a relay read, a produce, a broker write and, before the saved position, a mark) | outbox rows counted by topic during the soak; the lever chain above |
| the API reads back the ids of new outbox rows only when it publishes them itself (`OUTBOX_PUBLISHER=api`) | one query per group-commit batch less; it was 4.7 % of the API's samples | py-spy `--gil` on the gunicorn worker under e2e load; the lever chain |
| the relay keeps a saved position (`outbox_relay_position`) instead of stamping `published_at` on each row | no UPDATE and no durable commit per sweep; marking and committing were 18 % of the relay's samples, and claiming rows through the `published_at` index another 13 % | py-spy on the relay under e2e load; the lever chain |
| orjson instead of the standard `json` (not adopted) | serialising an order response 6.5 µs → 0.4 µs, parsing a request 5.6 µs → 1.7 µs; all JSON work together is about 4 % of the API's samples, so at most about 3 % of its CPU per order, below what the end-to-end benchmark can resolve, for a new compiled dependency | `timeit` on an order response and request; py-spy share |
| `mysqlclient` (C driver), the URL `./dev` hands out (`mysql+mysqldb://…`; `mysql+pymysql://` still supported) | the driver's own client CPU per order row fetched: 7–10 µs instead of 19–24 µs; per one-row statement within noise (70–190 µs with either: SQLAlchemy's share dominates); end to end within the noise of a shared machine (three alternating pairs of 10,000 orders: 4.1–5.1 ms of CPU per order with it, 4.2–4.6 ms without), as the path runs few statements and reads few rows per order | `python -m orders_app.bench driver` after an e2e run; e2e, alternating runs |
"""

REPRODUCE = """
## Reproducing the figures

Start a fresh local stack and export its variables (`./dev run` prints them, or
`eval "$(DEVSTACK_NAME=bench python -m orders_app.devstack start --fresh)"` and `alembic upgrade head`), then:

| figures | command | writes |
| --- | --- | --- |
| end to end: throughput, latency, CPU per order, ceiling, ratio | `python -m orders_app.bench e2e` (`--orders`, `--concurrency`, `--users`; `--url` to load a running service whose worker runs; `--no-ceiling`) | `bench-results/e2e-*.json` and `.svg` |
| large books | `python -m orders_app.bench book` (`--sizes 0,10000,100000`, `--orders 5000`) | `bench-results/book-*.json` |
| the matching engine alone, against the naive reference book | `python -m orders_app.bench engine` | prints a table |
| the worker with a backlog of accepted orders | `python -m orders_app.bench worker --orders 20000` | prints orders/s |
| the two database drivers on the same statements (client CPU per row and per statement) | `python -m orders_app.bench driver` (`--rows`, `--repeat`; reads the `orders` an e2e run left) | prints a table |
| latency at fixed arrival rates (open loop), up to saturation | `python -m orders_app.bench rate --rates auto` (`--rates 100,200,…` for given rates, `--seconds 20` per rate, `--probe-orders 6000` for auto's closed loop, `--connections-max 512`, `--url`) | `bench-results/rate-*.json` |
| fan-out to WebSocket subscribers | `python -m orders_app.bench stream` (`--clients 1000`, `--orders 10000`, `--concurrency 8`) | `bench-results/stream-*.json` |
| soak: memory over a long steady load, the outbox bounded by pruning | `python -m orders_app.bench soak` (`--orders 1000000`, `--rate 250`, `--sample-every-s 5`, `--prune-every-s 30`, `--prune-older-than-minutes 1`) | `bench-results/soak-*.json` |
| this page | copy the runs to keep to `docs/e2e-benchmark.json`, `docs/e2e-benchmark.svg`, `docs/book-benchmark.json`, `docs/stream-benchmark.json`, `docs/rate-benchmark.json` and `docs/soak-benchmark.json`, then `python -m orders_app.bench report` | `docs/performance.md` |

Without `--url`, `e2e`, `rate` and `book` start gunicorn (with `gunicorn.conf.py` and the `GUNICORN_*` variables) and
`python consumer.py` on the stack themselves and stop them afterwards. Each run exits non-zero if the
reconciliation afterwards finds a breach.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders_app.bench report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--e2e", type=Path, default=E2E_JSON)
    parser.add_argument("--book", type=Path, default=BOOK_JSON)
    parser.add_argument("--stream", type=Path, default=STREAM_JSON)
    parser.add_argument("--rate", type=Path, default=RATE_JSON)
    parser.add_argument("--soak", type=Path, default=SOAK_JSON)
    parser.add_argument("--levers", type=Path, default=LEVERS_JSON)
    parser.add_argument("--batch", type=Path, default=BATCH_JSON)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the page differs")
    args = parser.parse_args(argv)
    page = render(json.loads(args.e2e.read_text()), json.loads(args.book.read_text()),
                  json.loads(args.stream.read_text()) if args.stream.exists() else None,
                  json.loads(args.rate.read_text()) if args.rate.exists() else None,
                  json.loads(args.soak.read_text()) if args.soak.exists() else None,
                  json.loads(args.levers.read_text()) if args.levers.exists() else None,
                  json.loads(args.batch.read_text()) if args.batch.exists() else None)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != page:
            print(f"{args.output} is not what `python -m orders_app.bench report` renders", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(page)
    print(f"wrote {args.output}")
    return 0
