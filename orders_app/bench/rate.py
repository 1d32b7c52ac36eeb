"""Latency at fixed arrival rates: orders arrive on schedule whatever the service does (open loop).

    python -m orders_app.bench rate [--rates auto|100,200,...] [--seconds 20] [--url http://127.0.0.1:3000]

The same stack, service start-up, market, users, warm-up and order mix as `bench e2e`. For each offered
rate it sends `rate × seconds` orders, order i due at t0 + i / rate (openloop.py), waits until the
worker has applied them all, and reports the achieved accepted and settled rates, the accept latency and
the settlement lag — both counted from each order's scheduled time, so a stalled service shows as latency
— the orders late to send (every allowed connection busy) and the non-2xx answers. `auto` first measures
the maximum settled rate M with a short closed-loop run (e2e's client, `--probe-orders` orders), then
offers 0.25, 0.5, 0.75, 0.9, 1.0 and 1.1 × M, and says whether the targets hold at half of M. The
reconciliation runs at the end. Figures go to bench-results/rate-*.json.
"""
from __future__ import annotations

import argparse
import math
import os
import time

from orders_app.bench.cpu import cpu_seconds_by_name, cpu_used_since
from orders_app.bench.e2e import (
    Setup,
    accounted_processes,
    machine,
    prepared,
    save_figures,
    service_label,
    settled_times,
)
from orders_app.bench.loadgen import percentile, run_load
from orders_app.bench.openloop import CONNECTIONS_MAX, RateResult, latencies_from_schedule_ms, run_fixed_rate

AUTO_FRACTIONS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1)
HALF_MAX = 0.5
ACCEPT_P99_TARGET_MS = 50.0
SETTLEMENT_LAG_P99_TARGET_MS = 250.0


def rates_argument(text: str) -> list[float] | str:
    if text == "auto":
        return text
    try:
        rates = [float(part) for part in text.split(",")]  # float-ok: offered orders per second, not money
    except ValueError:
        raise argparse.ArgumentTypeError(f"'auto' or comma-separated orders/s, got {text!r}") from None
    if not rates or any(not (math.isfinite(rate) and rate > 0) for rate in rates):
        raise argparse.ArgumentTypeError(f"every rate must be a positive number of orders/s, got {text!r}")
    return rates


def summary_ms(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 0.5), 1), "p99": round(percentile(values, 0.99), 1),
            "max": round(max(values, default=0.0), 1)}


def rate_figures(rate_per_s: float, load: RateResult, settled: list[float], t_settled: float,
                 cpu_used_s: dict[str, float] | None = None) -> dict:
    """One row of the table: `settled` holds, for each 201 in `load.samples` in order, when the worker's
    commit of that order was seen; `t_settled`, when the last order was; `cpu_used_s`, the CPU seconds each
    process used from the first order sent to the last one applied."""
    ok = [sample for sample in load.samples if sample.status == 201]
    statuses: dict[str, int] = {}
    for sample in load.samples:
        statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
    last_answer = max((sample.finished for sample in ok), default=load.t0)
    return {
        "offered_per_s": rate_per_s, "orders": len(load.samples), "accepted": len(ok),
        "non_2xx": len(load.samples) - len(ok), "statuses": statuses,
        "achieved_accepted_per_s": round(len(ok) / max(last_answer - load.t0, 1e-9), 1),
        "achieved_settled_per_s": round(len(ok) / max(t_settled - load.t0, 1e-9), 1),
        "accept_latency_ms": summary_ms(latencies_from_schedule_ms(ok)),
        "settlement_lag_ms": summary_ms([(at - sample.scheduled) * 1000
                                         for at, sample in zip(settled, ok, strict=True)]),
        "send_delay_ms_p99": round(percentile([(s.started - s.scheduled) * 1000 for s in load.samples], 0.99), 1),
        "late_sends": load.late_sends, "connections_opened": load.connections_opened,
        "connections_peak": load.connections_peak,
        "load_client_cpu_percent_of_one_core": round(100 * load.client_cpu_s / max(load.wall_s, 1e-9), 1),
    } | ({} if cpu_used_s is None else cpu_figures(cpu_used_s | {"load client": load.client_cpu_s}, len(ok),
                                                   max(t_settled - load.t0, 1e-9)))


def cpu_figures(cpu_used_s: dict[str, float], orders: int, seconds: float) -> dict:
    """Each process's CPU per accepted order, and the share of the machine's cores all of them used."""
    total_s = sum(cpu_used_s.values())
    return {"cpu_ms_per_order": {name: round(1000 * used / max(orders, 1), 2) for name, used in cpu_used_s.items()},
            "cpu_ms_per_order_total": round(1000 * total_s / max(orders, 1), 2),
            "cpu_percent_of_all_cores": round(100 * total_s / seconds / (os.cpu_count() or 1), 1)}


def measure_rate(setup: Setup, rate_per_s: float, seconds: float, connections_max: int) -> dict:
    requests = setup.orders(max(1, round(rate_per_s * seconds)))
    seq_before = setup.accepted_seq()
    accounted = accounted_processes(setup.service)
    cpu_before = cpu_seconds_by_name(accounted)
    load = run_fixed_rate(setup.host, setup.port, requests, rate_per_s=rate_per_s, connections_max=connections_max)
    # also drains the backlog of an overloaded rate, so that the next rate starts from an idle service
    last_seq = setup.wait_applied()
    cpu_used = cpu_used_since(cpu_before, accounted)
    ok = [sample for sample in load.samples if sample.status == 201]
    settled = settled_times(setup.poller, setup.seqs_after(seq_before), ok)
    return rate_figures(rate_per_s, load, settled, setup.poller.applied_at(last_seq), cpu_used)


def closed_loop_maximum(setup: Setup, orders: int, concurrency: int) -> dict:
    """The e2e client's closed loop: `concurrency` connections always busy, so the service runs flat out."""
    requests = setup.orders(orders)
    t0 = time.perf_counter()
    load = run_load(setup.host, setup.port, iter(requests), concurrency=concurrency)
    t_settled = setup.poller.applied_at(setup.wait_applied())
    accepted = sum(1 for sample in load.samples if sample.status == 201)
    return {"orders": orders, "concurrency": concurrency, "accepted": accepted, "non_2xx": orders - accepted,
            "accepted_orders_per_s": round(accepted / load.wall_s, 1),
            "settled_orders_per_s": round(accepted / (t_settled - t0), 1)}


def at_half_max(rows: list[dict]) -> dict | None:
    row = next((row for row in rows if row.get("fraction_of_max") == HALF_MAX), None)
    if row is None:
        return None
    accept_p99, lag_p99 = row["accept_latency_ms"]["p99"], row["settlement_lag_ms"]["p99"]
    return {"offered_per_s": row["offered_per_s"], "accept_p99_ms": accept_p99, "settlement_lag_p99_ms": lag_p99,
            "accept_target_met": accept_p99 < ACCEPT_P99_TARGET_MS,
            "settlement_lag_target_met": lag_p99 < SETTLEMENT_LAG_P99_TARGET_MS}


def run(args) -> dict:
    load_before = os.getloadavg()[0]  # the figures mean little on a machine busy with other work: say so
    with prepared(users=args.users, resting=0, url=args.url, seed=args.seed,
                  concurrency=args.concurrency) as setup:
        closed_loop = None
        if args.rates == "auto":
            closed_loop = closed_loop_maximum(setup, args.probe_orders, args.concurrency)
            print(f"closed loop: {closed_loop['settled_orders_per_s']:,.0f} settled orders/s", flush=True)
            plan: list[tuple[float, float | None]] = [
                (round(fraction * closed_loop["settled_orders_per_s"]), fraction) for fraction in AUTO_FRACTIONS]
        else:
            plan = [(rate, None) for rate in args.rates]
        rows = []
        for rate_per_s, fraction in plan:
            rows.append(measure_rate(setup, rate_per_s, args.seconds, args.connections_max)
                        | {"fraction_of_max": fraction})
            print(row_text(rows[-1]), flush=True)
        reconciliation = setup.reconcile()
    return {"seconds_per_rate": args.seconds, "users": args.users, "connections_max": args.connections_max,
            "service": service_label(args.url), "machine": machine(), "closed_loop": closed_loop,
            "max_settled_orders_per_s": closed_loop["settled_orders_per_s"] if closed_loop else None,
            "targets": {"accept_p99_ms": ACCEPT_P99_TARGET_MS,
                        "settlement_lag_p99_ms": SETTLEMENT_LAG_P99_TARGET_MS},
            "rows": rows, "at_half_max": at_half_max(rows), "reconciliation": reconciliation,
            "load_average_1m": {"before": round(load_before, 1), "after": round(os.getloadavg()[0], 1)}}


def row_text(row: dict) -> str:
    lat, lag = row["accept_latency_ms"], row["settlement_lag_ms"]
    fraction = f" ({row['fraction_of_max']} x max)" if row.get("fraction_of_max") else ""
    return (f"offered {row['offered_per_s']:,.0f}/s{fraction}: accepted {row['achieved_accepted_per_s']:,.0f}/s, "
            f"settled {row['achieved_settled_per_s']:,.0f}/s; accept p50 {lat['p50']} p99 {lat['p99']} "
            f"max {lat['max']} ms; settlement lag p50 {lag['p50']} p99 {lag['p99']} ms; "
            f"late sends {row['late_sends']}, non-2xx {row['non_2xx']}, connections {row['connections_peak']}"
            + (f"; CPU {row['cpu_ms_per_order_total']} ms per order, {row['cpu_percent_of_all_cores']} % of all cores"
               if "cpu_ms_per_order_total" in row else ""))


def report_text(figures: dict) -> str:
    lines = [f"service                {figures['service']}, {figures['users']} users, "
             f"{figures['seconds_per_rate']} s per rate"]
    if figures["closed_loop"]:
        lines.append(f"closed-loop maximum    {figures['max_settled_orders_per_s']:,.0f} settled orders/s")
    lines += [row_text(row) for row in figures["rows"]]
    half = figures["at_half_max"]
    if half:
        lines.append(f"at half the maximum    {half['offered_per_s']:,.0f}/s offered: accept p99 "
                     f"{half['accept_p99_ms']} ms ({'met' if half['accept_target_met'] else 'MISSED'}, target < "
                     f"{ACCEPT_P99_TARGET_MS:.0f}), settlement lag p99 {half['settlement_lag_p99_ms']} ms "
                     f"({'met' if half['settlement_lag_target_met'] else 'MISSED'}, target < "
                     f"{SETTLEMENT_LAG_P99_TARGET_MS:.0f})")
    lines.append(f"reconciliation         {figures['reconciliation']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders_app.bench rate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=rates_argument, default="auto",
                        help="'auto' (fractions of the closed-loop maximum) or orders/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each rate is offered")
    parser.add_argument("--probe-orders", type=int, default=6000, help="orders of auto's closed-loop run")
    parser.add_argument("--concurrency", type=int, default=32, help="connections of the warm-up and closed loop")
    parser.add_argument("--connections-max", type=int, default=CONNECTIONS_MAX)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="a running service (its worker must run); default: start both")
    args = parser.parse_args(argv)
    figures = run(args)
    print(report_text(figures))
    print(f"figures: {save_figures(figures, 'rate')}")
    return 0 if figures["reconciliation"] == "OK" else 1
