"""Refused requests against a real gunicorn: every refusal is JSON, and a keep-alive client loses nothing.

After a refusal the service either read the whole body (the answer says `Connection: keep-alive` and the
next request on the connection is served) or it says `Connection: close` and closes; a client told it may
reuse a connection never finds it dead. Checked with a pooled client (requests.Session) and with a raw
socket, 20 rounds in a row. docs/http-limits.md states every limit checked here.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from orders_app.config import Settings
from orders_app.processes import ApiServer
from tests.conftest import unique_name
from tests.faults.load import make_users

pytestmark = pytest.mark.slow
ROUNDS = 20
TIMEOUT_S = 15
DRAIN_BYTES_MAX = Settings.request_drain_bytes_max
OVERSIZED_BODIES = {
    "65 KiB": b'{"pad": "' + b"x" * (65 * 1024) + b'"}',
    "1 MiB": b'{"pad": "' + b"x" * (1024 * 1024) + b'"}',
    "3 MiB": b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}',
    "200 KB of nesting": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.fixture(scope="module")
def api(stack_env):
    server = ApiServer("api-http-limits", workers=1, threads=4)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def user(api, stack_env):
    admin = {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}
    return make_users(api.url, admin, 1, {"USD": "100"}, unique_name("limits"))[0]


def assert_json_error(status: int, headers, body: bytes, expected_status: int, code: str) -> None:
    assert status == expected_status, body[:300]
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"] and set(error) <= {"code", "message", "field"}


def assert_normal_answer(status: int, body: bytes) -> None:
    assert status == 200, body[:300]
    assert json.loads(body)["balances"][0]["currency_symbol"] == "USD"


# --- a pooled client ---------------------------------------------------------------------------------

def _pooled_round(session: requests.Session, api, user, method: str, path: str, body: bytes, status: int,
                  code: str, **headers) -> str:
    refused = session.request(method, f"{api.url}{path}", data=body, timeout=TIMEOUT_S,
                              headers={"Content-Type": "application/json", **headers})
    assert_json_error(refused.status_code, refused.headers, refused.content, status, code)
    following = session.get(f"{api.url}/api/balances/{user.id}", headers=user.headers, timeout=TIMEOUT_S)
    assert_normal_answer(following.status_code, following.content)
    return refused.headers["Connection"]


@pytest.mark.parametrize("name", OVERSIZED_BODIES)
def test_a_pooled_client_gets_413_for_each_oversized_body_and_then_its_next_answer(api, user, name):
    body = OVERSIZED_BODIES[name]
    expected = "keep-alive" if len(body) <= DRAIN_BYTES_MAX else "close"
    with requests.Session() as session:
        for _ in range(ROUNDS):
            connection = _pooled_round(session, api, user, "POST", "/api/orders", body, 413, "PAYLOAD_TOO_LARGE",
                                       Authorization=user.headers["Authorization"])
            assert connection == expected


@pytest.mark.parametrize("method,path,size,status,code", [
    ("POST", "/api/orders", 100 * 1024, 401, "UNAUTHORIZED"),
    ("POST", "/api/orders", 1024 * 1024, 401, "UNAUTHORIZED"),
    ("POST", "/api/no-such-thing", 1024 * 1024, 404, "NOT_FOUND"),
    ("PUT", "/health", 65 * 1024, 405, "METHOD_NOT_ALLOWED"),
], ids=["401-100KiB", "401-1MiB", "404-1MiB", "405-65KiB"])
def test_a_pooled_client_survives_refusals_made_before_the_body_was_read(api, user, method, path, size, status,
                                                                         code):
    with requests.Session() as session:
        for _ in range(ROUNDS):
            _pooled_round(session, api, user, method, path, b"{" + b" " * (size - 2) + b"}", status, code)


def test_gunicorn_refusals_of_request_line_and_headers_are_json_and_the_pool_carries_on(api, user):
    with requests.Session() as session:
        for _ in range(ROUNDS):
            long_line = session.get(f"{api.url}/health?pad={'a' * 4100}", timeout=TIMEOUT_S)
            assert_json_error(long_line.status_code, long_line.headers, long_line.content, 414, "URI_TOO_LONG")
            many = session.get(f"{api.url}/health", headers={f"X-Pad-{n}": "1" for n in range(51)}, timeout=TIMEOUT_S)
            assert_json_error(many.status_code, many.headers, many.content, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
            big = session.get(f"{api.url}/health", headers={"X-Pad": "a" * 8200}, timeout=TIMEOUT_S)
            assert_json_error(big.status_code, big.headers, big.content, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
            assert {r.headers["Connection"] for r in (long_line, many, big)} == {"close"}
            following = session.get(f"{api.url}/api/balances/{user.id}", headers=user.headers, timeout=TIMEOUT_S)
            assert_normal_answer(following.status_code, following.content)


# --- one raw connection --------------------------------------------------------------------------------

class RawConnection:
    """HTTP/1.1 over a socket by hand: exactly these bytes are sent, and each answer is read whole."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.pending = b""

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent; the answer is still readable

    def _more(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.pending:
            chunk = self._more()
            assert chunk, f"the connection closed without an answer (got {self.pending[:200]!r})"
            self.pending += chunk
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.title(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
        length = int(headers["Content-Length"])
        while len(self.pending) < length:
            chunk = self._more()
            assert chunk, "the connection closed in the middle of an answer"
            self.pending += chunk
        body, self.pending = self.pending[:length], self.pending[length:]
        return int(status_line.split()[1]), headers, body

    def closed_by_server(self) -> bool:
        return not self.pending and self._more() == b""

    def close(self) -> None:
        self.sock.close()


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body and "Transfer-Encoding" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _raw_rounds(api, user, request: bytes, status: int, code: str, expected_connection: str) -> None:
    """ROUNDS times: the refused request, then a normal one on the same connection when the answer said
    keep-alive, or on a new one after the server closed it when the answer said close."""
    normal = http_request("GET", f"/api/balances/{user.id}", user.headers)
    conn = RawConnection(api.port)
    try:
        for _ in range(ROUNDS):
            conn.send(request)
            refused_status, headers, body = conn.answer()
            assert_json_error(refused_status, headers, body, status, code)
            assert headers["Connection"] == expected_connection
            if expected_connection == "close":
                assert conn.closed_by_server()
                conn.close()
                conn = RawConnection(api.port)
            conn.send(normal)
            following_status, _, following = conn.answer()
            assert_normal_answer(following_status, following)
    finally:
        conn.close()


@pytest.mark.parametrize("name", OVERSIZED_BODIES)
def test_one_raw_connection_gets_413_for_each_oversized_body_and_then_its_next_answer(api, user, name):
    body = OVERSIZED_BODIES[name]
    request = http_request("POST", "/api/orders", {**user.headers, "Content-Type": "application/json"}, body)
    _raw_rounds(api, user, request, 413, "PAYLOAD_TOO_LARGE", "keep-alive" if len(body) <= DRAIN_BYTES_MAX else "close")


@pytest.mark.parametrize("size,expected_connection", [(100 * 1024, "keep-alive"), (1024 * 1024, "close")])
def test_an_oversized_chunked_body_gets_413_and_the_connection_answer_is_true(api, user, size, expected_connection):
    chunk = b"x" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(size // len(chunk))) + b"0\r\n\r\n"
    request = http_request("POST", "/api/orders", {**user.headers, "Content-Type": "application/json",
                                                   "Transfer-Encoding": "chunked"}, body)
    _raw_rounds(api, user, request, 413, "PAYLOAD_TOO_LARGE", expected_connection)


@pytest.mark.parametrize("request_bytes", [
    b"NOT-HTTP\r\n\r\n",
    b"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: foo\r\n\r\n",
], ids=["request-line", "unknown-transfer-coding"])
def test_a_malformed_request_is_answered_400_in_json_and_closed(api, user, request_bytes):
    _raw_rounds(api, user, request_bytes, 400, "BAD_REQUEST", "close")


# --- slow uploads ---------------------------------------------------------------------------------------

BODY_READ_TIMEOUT_S = 1.5
ANSWER_SLACK_S = 2.5  # a loaded CI machine: scheduling, the watchdog's tick, the answer itself
TRICKLE_INTERVAL_S = 0.1


class SlowUpload(threading.Thread):
    """Sends a 1000-byte body one byte per TRICKLE_INTERVAL_S (100 s in all) until the server answers."""

    def __init__(self, port: int, user):
        super().__init__(daemon=True)
        self.conn = RawConnection(port)
        self.conn.send(http_request("POST", "/api/orders", {**user.headers, "Content-Type": "application/json",
                                                            "Content-Length": "1000"}))
        self.started = time.monotonic()
        self.answered = threading.Event()
        self.answer_after_s: float | None = None

    def run(self) -> None:
        while not self.answered.wait(TRICKLE_INTERVAL_S) and time.monotonic() - self.started < 3 * ANSWER_SLACK_S:
            self.conn.send(b" ")

    def wait_answer(self) -> tuple[int, dict[str, str], bytes]:
        self.conn.sock.settimeout(BODY_READ_TIMEOUT_S + ANSWER_SLACK_S)
        try:
            answer = self.conn.answer()
        finally:
            self.answer_after_s = time.monotonic() - self.started
            self.answered.set()
        return answer


def test_a_slow_upload_is_answered_408_and_frees_its_thread_at_the_body_deadline(stack_env, user):
    server = ApiServer("api-slow-upload", workers=1, threads=2,
                       REQUEST_BODY_READ_TIMEOUT_MS=str(int(BODY_READ_TIMEOUT_S * 1000)))
    try:
        uploads = [SlowUpload(server.port, user) for _ in range(2)]  # one per request thread
        for upload in uploads:
            upload.start()
        following = requests.get(f"{server.url}/api/balances/{user.id}", headers=user.headers,
                                 timeout=BODY_READ_TIMEOUT_S + ANSWER_SLACK_S)
        assert_normal_answer(following.status_code, following.content)
        for upload in uploads:
            status, headers, body = upload.wait_answer()
            assert_json_error(status, headers, body, 408, "REQUEST_TIMEOUT")
            assert headers["Connection"] == "close" and upload.conn.closed_by_server()
            assert upload.answer_after_s <= BODY_READ_TIMEOUT_S + ANSWER_SLACK_S
            upload.join()
            upload.conn.close()
    finally:
        server.stop()
