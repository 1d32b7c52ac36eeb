"""The soak benchmark's pure parts: memory drift, /proc parsing, and an order mix that keeps the book small."""
from __future__ import annotations

import os
import random
from decimal import Decimal

from orders_app.bench.memory import drift, parse_vm_rss_kib, rss_mib
from orders_app.bench.soak import balanced_orders

STATUS = """Name:\tgunicorn
State:\tS (sleeping)
VmPeak:\t  412340 kB
VmHWM:\t   98765 kB
VmRSS:\t   81234 kB
RssAnon:\t   60000 kB
Threads:\t33
"""


def test_rss_is_read_from_the_vmrss_line_of_proc_status_and_not_from_the_peak():
    assert parse_vm_rss_kib(STATUS) == 81234


def test_a_process_without_resident_memory_has_no_rss():
    assert parse_vm_rss_kib("Name:\tkthreadd\nState:\tS (sleeping)\n") is None


def test_this_process_has_a_resident_size_and_a_gone_one_has_none():
    assert rss_mib(os.getpid()) > 1
    assert rss_mib(2**22 + 1) is None  # above the kernel's largest pid


def test_drift_compares_the_last_tenth_with_the_tenth_after_start_up():
    # 20 samples: start-up (0, 1) is ignored, 2-3 are the baseline, 18-19 the end
    values = [10.0, 50.0] + [100.0, 100.0] + [105.0] * 14 + [110.0, 112.0]
    assert drift(values) == {"after_warm_up": 100.0, "end": 111.0, "drift_percent": 11.0}


def test_memory_that_only_fills_during_start_up_shows_no_drift():
    values = [20.0, 60.0, 80.0] + [80.0] * 27
    assert drift(values)["drift_percent"] == 0.0


def test_memory_that_shrinks_drifts_negatively():
    assert drift([100.0] * 5 + [90.0] * 5, fraction=0.2)["drift_percent"] == -10.0


def test_too_few_samples_have_no_drift():
    assert drift([1.0, 2.0]) is None


def test_the_soak_mix_buys_as_much_as_it_sells_after_every_pair():
    orders = list(balanced_orders(random.Random(3), 2_000, ["m1", "m2"], ["t1", "t2"]))
    bought = sold = Decimal(0)
    for index, (side, _, quantity, _) in enumerate(orders):
        bought += quantity if side == "buy" else 0
        sold += quantity if side == "sell" else 0
        if index % 2 == 1:
            assert bought == sold, index


def test_each_counter_order_crosses_every_price_of_the_mix_and_comes_from_another_user():
    orders = list(balanced_orders(random.Random(4), 2_000, ["m1", "m2"], ["t1", "t2"]))
    mix, counters = orders[0::2], orders[1::2]
    lowest_bid = min(price for side, price, _, _ in mix if side == "buy")
    highest_ask = max(price for side, price, _, _ in mix if side == "sell")
    for side, price, _, _ in counters:
        assert price <= lowest_bid if side == "sell" else price >= highest_ask
    assert {side for side, _, _, _ in counters} == {"buy", "sell"}
    assert {key for _, _, _, key in mix} == {"m1", "m2"} and {key for _, _, _, key in counters} == {"t1", "t2"}
