"""The "Latency at fixed arrival rates" section of docs/performance.md, from docs/rate-benchmark.json
(`python -m orders_app.bench rate`); report.py places it in the page."""
from __future__ import annotations

from orders_app.bench.markdown import ms, number, prose, table
from orders_app.bench.rate import ACCEPT_P99_TARGET_MS, SETTLEMENT_LAG_P99_TARGET_MS

TITLE = "## Latency at fixed arrival rates: `python -m orders_app.bench rate`\n"

OPEN_LOOP = """\
The end-to-end run above is a closed loop: each of its connections sends its next order only when the
previous one has been answered. When the service slows down the client slows down with it, so the orders
users would have sent during a stall are never sent, and the latency it reports is set by the number of
connections rather than by how long a user waits. Here orders arrive on a timetable, as users' orders do:
order i is due i ÷ rate seconds after the start whether or not the earlier ones have been answered, and each
latency is counted from the moment the order was due, not from when it could be sent. A stall therefore
shows in full in the latency of every order that arrived during it, and a rate above what the service
sustains shows as latency that keeps growing while the rate is offered (the orders queue up), where a
closed loop would only have reported a lower throughput.
"""

METHOD = """\
`--rates auto` first runs the end-to-end client's closed loop ({probe_orders} orders, {concurrency}
connections) to measure the maximum settled rate, {maximum} orders/s in this run, then offers 0.25 to 1.1
times it for {seconds} s per rate, on the same service start-up, market, users, warm-up and order mix as the
end-to-end run, letting the worker catch up between rates. Each order goes out on an idle keep-alive
connection, or on a new one while fewer than {connections_max} are open; an order that finds all of them
busy waits for one and counts as late to send (its wait is part of its latency); the send delay is how long
after its scheduled time an order left the client, which also shows a load client short of CPU. Accept latency runs from
an order's scheduled time to its 201. Settlement lag runs from the same scheduled time — not from the 201,
unlike the end-to-end table — to the first sample of the market's applied sequence number (read every
20 ms) that includes the order's, so it contains the accept latency and may be up to 20 ms late. Accepted
orders/s divide the 201s by the time from the first order's schedule to the last 201; settled orders/s, to
the worker's commit of the last order. {machine_load}
"""

CPU = """\
Where the CPU went at each rate: each process's CPU time per accepted order, from the first order sent to the
last one applied (`/proc`, as in the end-to-end run; the load client's includes the benchmark's sampling of the
applied sequence), and how busy that kept the machine's {cpus} cores. At the lowest rate the processes used
{lowest_share} % of the cores, {lowest_ms} ms of CPU per order; at half the maximum, {half_share} % and
{half_ms} ms per order. The cost is mostly paid per round, not per order: every stage works in rounds — an
API commit of the orders queued meanwhile, a relay poll (`OUTBOX_RELAY_POLL_MS`) and its Kafka request, a
worker fetch and its settling transaction — and at a low rate each round carries one or two orders, while at
a high one it carries many. So the cores are already {half_share} % busy at half the maximum, and every step
of an order's path waits for a core behind the other processes: that, more than any one statement, is the
accept tail.
"""

NOT_MEASURED = """\
Not yet measured: run `python -m orders_app.bench rate --rates auto` and copy its
`bench-results/rate-*.json` to `docs/rate-benchmark.json`.
"""


def _verdict(value_ms: float, target_ms: float) -> str:
    if value_ms < target_ms:
        return f"**met** ({value_ms:,.1f} ms)"
    return f"**missed**: {value_ms:,.1f} ms, {value_ms - target_ms:,.1f} ms over"


def _targets(rate: dict) -> str:
    half = rate.get("at_half_max")
    if half is None:
        return ("These rates were given on the command line, so no row is half the measured maximum and the "
                "targets are not judged.")
    return (f"Targets at half the measured maximum ({half['offered_per_s']:,.0f} orders/s offered): accept "
            f"p99 under {ACCEPT_P99_TARGET_MS:.0f} ms — {_verdict(half['accept_p99_ms'], ACCEPT_P99_TARGET_MS)}; "
            f"settlement lag p99 under {SETTLEMENT_LAG_P99_TARGET_MS:.0f} ms — "
            f"{_verdict(half['settlement_lag_p99_ms'], SETTLEMENT_LAG_P99_TARGET_MS)}.")


def _machine_load(rate: dict) -> str:
    load = rate.get("load_average_1m")
    if not load:
        return ""
    text = (f"The machine's 1-minute load average was {load['before']} when the run started and {load['after']} "
            f"when it ended, on {rate['machine']['cpus']} CPUs (it counts the benchmark's own processes and takes "
            "minutes to decay)")
    if load["before"] > rate["machine"]["cpus"]:
        # something ran before this benchmark started: it may still have competed for the cores
        return text + (": it was already above the CPU count at the start (other work, or a run just before this "
                       "one), so these figures are provisional.")
    return text + "."


def _fraction(row: dict) -> str:
    fraction = row.get("fraction_of_max")
    if fraction is None:
        return "—"
    if fraction == 0.5:
        return "**0.5: half the measured maximum**"
    return f"{fraction:g}"


def _rows(rate: dict) -> list[list[str]]:
    return [[number(row["offered_per_s"]), _fraction(row), number(row["achieved_accepted_per_s"]),
             number(row["achieved_settled_per_s"]), ms(row["accept_latency_ms"]["p50"]),
             ms(row["accept_latency_ms"]["p99"]), ms(row["settlement_lag_ms"]["p50"]),
             ms(row["settlement_lag_ms"]["p99"]), ms(row["send_delay_ms_p99"]), number(row["late_sends"]),
             number(row["non_2xx"])]
            for row in rate["rows"]]


CPU_COLUMNS = (("API (gunicorn)", "API"), ("worker + relay", "worker + relay"), ("MariaDB", "MariaDB"),
               ("broker", "broker"), ("load client", "load client"))


def _cpu_parts(rate: dict) -> list[str]:
    """The CPU table and its reading, when the run measured CPU (files from older runs did not)."""
    rows = [row for row in rate["rows"] if "cpu_ms_per_order" in row]
    if not rows:
        return []
    half = next((row for row in rows if row.get("fraction_of_max") == 0.5), None)
    lowest = min(rows, key=lambda row: row["offered_per_s"])
    header = ["offered orders/s", *(f"{label}, ms per order" for _, label in CPU_COLUMNS), "total, ms per order",
              "% of all cores"]
    body = [[number(row["offered_per_s"]), *(f"{row['cpu_ms_per_order'].get(name, 0):.2f}" for name, _ in CPU_COLUMNS),
             f"{row['cpu_ms_per_order_total']:.2f}", f"{row['cpu_percent_of_all_cores']:.0f} %"] for row in rows]
    parts = [table(header, body, "r" * len(header)), ""]
    if half is not None and half is not lowest:
        parts.insert(0, prose(CPU, cpus=rate["machine"]["cpus"],
                              lowest_share=f"{lowest['cpu_percent_of_all_cores']:.0f}",
                              lowest_ms=f"{lowest['cpu_ms_per_order_total']:.1f}",
                              half_share=f"{half['cpu_percent_of_all_cores']:.0f}",
                              half_ms=f"{half['cpu_ms_per_order_total']:.1f}"))
    return parts


def section(rate: dict | None) -> list[str]:
    """The section's parts, for report.py to join into the page."""
    if rate is None:
        return [TITLE, prose(OPEN_LOOP), prose(NOT_MEASURED)]
    closed_loop = rate.get("closed_loop") or {}
    parts = [TITLE, prose(OPEN_LOOP)]
    if closed_loop:
        parts.append(prose(METHOD, probe_orders=number(closed_loop["orders"]), concurrency=closed_loop["concurrency"],
                           maximum=number(rate["max_settled_orders_per_s"]), seconds=f"{rate['seconds_per_rate']:g}",
                           connections_max=number(rate["connections_max"]), machine_load=_machine_load(rate)))
    header = ["offered orders/s", "× maximum", "accepted orders/s", "settled orders/s", "accept p50",
              "accept p99", "settlement lag p50", "settlement lag p99", "send delay p99", "late sends", "non-2xx"]
    parts += [table(header, _rows(rate), "rlrrrrrrrrr"), "", prose(_targets(rate)), *_cpu_parts(rate)]
    return parts
