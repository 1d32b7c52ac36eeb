"""Request bodies under gunicorn: a deadline for reading them, and a `Connection` header that tells the truth.

gunicorn reads a body only when the application asks for it, and decides whether the connection can carry
another request only after the response went out, by draining what the application left unread (at most
64 KiB or 5 s). A refusal made before the body was read (413 by Content-Length, 401, 404, 405, 429) thus went
out saying `Connection: keep-alive`, and then the connection was closed: the client's next request on it was
lost. `RequestBodyGuard` decides before the status line is sent:

- what the application left unread is drained when it is at most `REQUEST_DRAIN_BYTES_MAX` bytes and arrives
  before the body deadline: the connection then really can be reused (docs/http-limits.md has the figures);
- otherwise the response says `Connection: close`, and gunicorn closes the connection after it.

A body must arrive within `REQUEST_BODY_READ_TIMEOUT_MS` of the request's start, however slowly its bytes
trickle in (gunicorn's socket reads have no timeout, and gthread's `timeout` watches the worker process, not
its threads). At the deadline a watchdog thread shuts the socket's read side, which ends the blocked read;
the request is answered `408 REQUEST_TIMEOUT` with `Connection: close`.
"""
from __future__ import annotations

import socket
import threading
import time

from werkzeug.exceptions import RequestTimeout

DRAIN_READ_BYTES = 64 * 1024
WATCHDOG_TICK_S = 0.05  # a deadline fires at most this late

_current = threading.local()


def remember_gunicorn_request(req) -> None:
    """gunicorn's `pre_request` hook: gunicorn's request object is the only handle that can make gunicorn
    answer `Connection: close` (it drops a Connection header set by the application). gthread serves a
    request on one thread from this hook to the end of the response."""
    _current.request = req


def _gunicorn_request(environ: dict):
    req = getattr(_current, "request", None)
    return req if req is not None and req.body is environ.get("wsgi.input") else None


class _Watch:
    __slots__ = ("sock", "deadline", "fired")

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline, self.fired = sock, deadline, False


class BodyDeadlines:
    """One daemon thread per process: it shuts the read side of a socket whose body deadline passed.

    A set, scanned every WATCHDOG_TICK_S while requests are watched, costs an insert and a removal per
    request; a heap of timers would wake the thread once per request."""

    def __init__(self):
        self._watches: set[_Watch] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> _Watch:
        watch = _Watch(sock, deadline)
        with self._changed:
            if self._thread is None:  # started lazily: gunicorn forks workers after importing the app
                self._thread = threading.Thread(target=self._run, name="body-deadlines", daemon=True)
                self._thread.start()
            if not self._watches:  # else the thread is ticking already
                self._changed.notify()
            self._watches.add(watch)
        return watch

    def release(self, watch: _Watch) -> bool:
        """Stop watching; True when the deadline fired (the socket's read side is shut)."""
        with self._changed:
            self._watches.discard(watch)
            return watch.fired

    def _run(self) -> None:
        with self._changed:
            while True:
                if not self._watches:
                    self._changed.wait()
                    continue
                now = time.monotonic()
                for watch in [w for w in self._watches if w.deadline <= now]:
                    self._watches.discard(watch)
                    watch.fired = True
                    try:
                        watch.sock.shutdown(socket.SHUT_RD)
                    except OSError:  # the client is gone already
                        pass
                self._changed.wait(WATCHDOG_TICK_S)


class _TimedInput:
    """`wsgi.input` that answers 408 once the body deadline fired, and stops the watch as soon as the body is
    read whole (a slow response must not close a connection whose body arrived in time)."""

    def __init__(self, body, content_length: int | None, deadlines: BodyDeadlines, watch: _Watch):
        self.body, self.content_length, self.consumed = body, content_length, 0
        self.complete = False  # the whole body was read: the next request's bytes come next
        self._deadlines, self._watch = deadlines, watch

    def release(self) -> bool:
        """Stop the deadline; True when it fired (the socket cannot be read any further)."""
        return self._deadlines.release(self._watch)

    def _read(self, read, size: int | None) -> bytes:
        try:
            data = read(size)
        except OSError:  # gunicorn's NoMoreData once the watchdog shut the socket
            if self._watch.fired:
                raise RequestTimeout() from None
            raise
        if self._watch.fired:
            raise RequestTimeout()
        self.consumed += len(data)
        if self.content_length is None:
            self.complete = self.complete or (not data and size != 0)  # chunked: the last chunk was read
        else:
            self.complete = self.consumed >= self.content_length  # a short read is a client that left
        if self.complete:
            self.release()
        return data

    def read(self, size: int | None = None) -> bytes:
        return self._read(self.body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._read(self.body.readline, size)

    def __iter__(self):
        return iter(self.readline, b"")


class RequestBodyGuard:
    """WSGI middleware around the Flask app (see the module docstring)."""

    def __init__(self, wsgi_app, read_timeout_s: float, drain_bytes_max: int, deadlines: BodyDeadlines):
        self.wsgi_app = wsgi_app
        self.read_timeout_s = read_timeout_s
        self.drain_bytes_max = drain_bytes_max
        self.deadlines = deadlines

    def __call__(self, environ: dict, start_response):
        sock = environ.get("gunicorn.socket")
        content_length = _content_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if sock is None or (not content_length and not chunked):
            return self.wsgi_app(environ, start_response)
        gunicorn_request = _gunicorn_request(environ)
        watch = self.deadlines.watch(sock, time.monotonic() + self.read_timeout_s)
        body = _TimedInput(environ["wsgi.input"], None if chunked else content_length, self.deadlines, watch)
        environ["wsgi.input"] = body

        def start_response_after_drain(status, headers, exc_info=None):
            if not self._drained(body):
                _stop_reading(sock)
                if gunicorn_request is not None:
                    gunicorn_request.force_close()
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start_response_after_drain)
        finally:
            body.release()

    def _drained(self, body: _TimedInput) -> bool:
        """Read and discard what the application left unread; False when the connection must close."""
        unread = None if body.content_length is None else body.content_length - body.consumed
        if unread is not None and unread > self.drain_bytes_max:
            return False  # reading it would cost more than the new connection it saves
        drained = 0
        try:
            while not body.complete and drained <= self.drain_bytes_max:
                data = body.read(DRAIN_READ_BYTES)
                if not data:
                    break
                drained += len(data)
        except (OSError, RequestTimeout):
            return False
        return body.complete and not body.release()


def _stop_reading(sock: socket.socket) -> None:
    """gunicorn closes a connection with a "lingering close" on its main thread: it reads what the client
    still sends for up to 2 s, and meanwhile serves no other connection of the worker (measured: a client
    trickling a refused body delayed every other request by 1.7 s). With the read side shut that read ends
    at once; the client still receives the answer, then a reset if it keeps sending."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:  # the client is gone already
        pass


def _content_length(environ: dict) -> int | None:
    raw = environ.get("CONTENT_LENGTH", "")
    return int(raw) if raw.isdigit() else None
