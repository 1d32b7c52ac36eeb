"""The benchmark's own tools: percentiles, the SVG chart, CPU accounting from /proc."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree

from orders_app.bench.cpu import tree_cpu_seconds
from orders_app.bench.loadgen import build_request, percentile
from orders_app.bench.plot import Panel, Series, render_svg


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50, 99, 100)
    assert percentile([7.0], 0.99) == 7.0 and percentile([], 0.5) == 0.0
    assert percentile([3, 1, 2], 0.5) == 2


def test_requests_are_complete_http_messages():
    raw = build_request("127.0.0.1", 3000, "POST", "/api/orders", b'{"a": 1}', {"Authorization": "Bearer k"})
    head, body = raw.split(b"\r\n\r\n")
    assert head.startswith(b"POST /api/orders HTTP/1.1\r\n") and b"Content-Length: 8" in head
    assert b"Authorization: Bearer k" in head and body == b'{"a": 1}'


def test_the_plot_is_well_formed_svg_with_every_series():
    svg = render_svg("t <&>", [Panel("Throughput", "orders/s", [Series("accepted", [(0.5, 10), (1.5, 30)]),
                                                                   Series("settled", [(0.5, 5), (1.5, 25)])]),
                                Panel("Latency", "ms", [Series("p99", [(0.5, 2.5)])])])
    root = ElementTree.fromstring(svg)
    polylines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(polylines) == 3
    assert "accepted" in svg and "settled" in svg and "t &lt;&amp;&gt;" in svg


def test_cpu_of_this_process_grows_when_it_works():
    before = tree_cpu_seconds(os.getpid())
    total = 0
    for number in range(3_000_000):
        total += number
    assert tree_cpu_seconds(os.getpid()) > before


def test_batch_answers_count_as_one_sample_per_order_with_its_own_status():
    from orders_app.bench.e2e import per_order
    from orders_app.bench.loadgen import Sample
    answer = json.dumps({"results": [{"status": 201, "order": {"id": 7}},
                                     {"status": 400, "error": {"code": "INSUFFICIENT_FUNDS"}}]}).encode()
    expanded = per_order([Sample(1.0, 2.0, 200, answer), Sample(3.0, 4.0, 429, b"{}")])
    assert [(s.started, s.finished, s.status) for s in expanded] == [(1.0, 2.0, 201), (1.0, 2.0, 400), (3.0, 4.0, 429)]
    assert json.loads(expanded[0].body) == {"order": {"id": 7}}


def test_batches_carry_the_e2e_mix_in_requests_of_one_user_each():
    import random

    from orders_app.bench.e2e import make_batches
    requests = make_batches(random.Random(1), 25, 10, ["key-a", "key-b"], "SYM", "127.0.0.1", 80)
    bodies = [json.loads(raw.split(b"\r\n\r\n", 1)[1]) for raw in requests]
    assert [len(body["orders"]) for body in bodies] == [10, 10, 5]
    assert all(raw.startswith(b"POST /api/orders/batch ") for raw in requests)
    assert {order["currency_symbol"] for body in bodies for order in body["orders"]} == {"SYM"}
