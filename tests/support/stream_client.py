"""A real WebSocket client of the stream server, for tests: send ops, wait for the pushes that match."""
from __future__ import annotations

import json
import time
from decimal import Decimal

from websockets.sync.client import connect

RECEIVE_TIMEOUT_S = 10.0


class StreamClient:
    def __init__(self, url: str, **connect_options):
        # Unbounded: a test busy placing orders reads late, and a full queue would stop the client reading
        # pongs (its keepalive would then close the connection).
        connect_options.setdefault("max_queue", None)
        self.websocket = connect(url, open_timeout=10, **connect_options)
        self.received: list[dict] = []

    def send(self, **message) -> None:
        self.websocket.send(json.dumps(message))

    def send_raw(self, raw) -> None:
        self.websocket.send(raw)

    def next(self, timeout_s: float = RECEIVE_TIMEOUT_S) -> dict:
        message = json.loads(self.websocket.recv(timeout=timeout_s))
        message["_received_at"] = time.time()
        self.received.append(message)
        return message

    def wait_for(self, matches, timeout_s: float = RECEIVE_TIMEOUT_S) -> dict:
        """The next message for which `matches(message)` is true (the others are kept in `received`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message in {timeout_s}s; last ones: {self.received[-5:]}")
            message = self.next(remaining)
            if matches(message):
                return message

    def request(self, timeout_s: float = RECEIVE_TIMEOUT_S, **message) -> dict:
        """Send an op and return its reply (an op message), skipping pushes."""
        self.send(**message)
        reply = dict(self.wait_for(lambda m: "op" in m, timeout_s))
        reply.pop("_received_at")
        return reply

    def subscribe(self, *channels: str) -> dict:
        reply = self.request(op="subscribe", channels=list(channels))
        assert reply["op"] == "subscribed", reply
        return reply

    def close(self) -> None:
        self.websocket.close()


class BookReplica:
    """A book kept as a client must: a snapshot, then deltas in sequence (a gap fails the test)."""

    def __init__(self, snapshot: dict):
        assert snapshot["type"] == "snapshot", snapshot
        self.seq = snapshot["seq"]
        self.sides = {"bids": {Decimal(p): Decimal(q) for p, q in snapshot["bids"]},
                      "asks": {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}}

    def apply(self, delta: dict) -> None:
        assert delta["type"] == "delta", delta
        assert delta["prev_seq"] == self.seq, f"gap: book at {self.seq}, delta {delta['prev_seq']}->{delta['seq']}"
        for side in ("bids", "asks"):
            for price, quantity in delta[side]:
                if Decimal(quantity):
                    self.sides[side][Decimal(price)] = Decimal(quantity)
                else:
                    self.sides[side].pop(Decimal(price), None)
        self.seq = delta["seq"]

    def levels(self, side: str) -> list[tuple[Decimal, Decimal]]:
        prices = sorted(self.sides[side], reverse=(side == "bids"))
        return [(price, self.sides[side][price]) for price in prices]
