"""The soak's open-loop sender against a tiny local HTTP server: orders leave on schedule, not when answered."""
from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orders_app.bench.loadgen import build_request, run_paced


class _Created(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answered = 0

    def do_POST(self):  # noqa: N802 — http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).answered += 1
        close = type(self).answered % 5 == 0  # a server closing keep-alive connections now and then
        self.send_response(201)
        self.send_header("Content-Length", "2")
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = close

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Created)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_each_request_is_due_one_rate_interval_after_the_previous_one_and_all_are_answered(server):
    samples = []
    raw = build_request("127.0.0.1", server, "POST", "/api/orders", b"{}", {})
    result = run_paced("127.0.0.1", server, iter([raw] * 30), rate=200.0, connections=4,
                       on_response=samples.append)
    assert [sample.status for sample in samples] == [201] * 30
    due = sorted(sample.started for sample in samples)
    assert all(abs((later - earlier) - 1 / 200) < 1e-9 for earlier, later in itertools.pairwise(due))
    assert result.wall_s >= 29 / 200
    assert all(sample.finished >= sample.started for sample in samples)
