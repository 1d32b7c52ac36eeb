"""The benchmark's own tools: percentiles, the SVG chart, CPU accounting from /proc."""
from __future__ import annotations

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
