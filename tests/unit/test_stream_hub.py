"""The stream hub on its own: fake connections, the database reads replaced by counters."""
from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from types import SimpleNamespace

from websockets.protocol import State

from orders_app.services import stream_reads
from orders_app.stream.hub import Client, Hub


class FakeTransport:
    def __init__(self):
        self.frames: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.frames.append(data)


def fake_client() -> Client:
    websocket = SimpleNamespace(transport=FakeTransport(), protocol=SimpleNamespace(state=State.OPEN))
    return Client(websocket, buffer_bytes_max=1 << 20)


def pushed(client: Client) -> list[dict]:
    """The JSON of every frame written (all are short unmasked text frames here)."""
    return [json.loads(frame[2:]) if frame[1] < 126 else json.loads(frame[4:])
            for frame in client.websocket.transport.frames]


def test_clients_subscribing_to_a_book_not_loaded_yet_share_one_snapshot_read(monkeypatch):
    reads = []

    def book_snapshot(ctx, spec):
        reads.append(spec)
        return stream_reads.BookSnapshot(7, [(Decimal("99.5"), Decimal("2"))], [])

    monkeypatch.setattr(stream_reads, "book_snapshot", book_snapshot)
    monkeypatch.setattr(stream_reads, "trade_minutes", lambda ctx, spec, since: ([], 0))
    hub = Hub(ctx=None, directory=SimpleNamespace(get=lambda name: name))
    clients = [fake_client() for _ in range(3)]

    async def scenario():
        for client in clients:
            hub.subscribe(client, "book:BTC-USD", "BTC-USD")
        while "BTC-USD" not in hub.books or hub.loading:
            await asyncio.sleep(0.01)  # lets the hub's loading task run: the snapshot is read in it

    asyncio.run(scenario())
    assert len(reads) == 1
    for client in clients:
        assert pushed(client) == [{"channel": "book:BTC-USD", "type": "snapshot", "seq": 7,
                                   "bids": [["99.5", "2"]], "asks": []}]


def test_a_book_applies_deltas_in_sequence_skips_old_ones_and_reports_a_gap():
    from orders_app.stream.state import APPLIED, GAP, STALE, LevelBook
    book = LevelBook(10, [(Decimal("100"), Decimal("1"))], [(Decimal("101"), Decimal("2"))])
    assert book.apply({"seq": 9, "prev_seq": 8, "bids": [["100", "0"]], "asks": []}) == STALE
    assert book.apply({"seq": 12, "prev_seq": 10, "bids": [["100", "0"], ["99.5", "3"]], "asks": []}) == APPLIED
    assert book.apply({"seq": 15, "prev_seq": 13, "bids": [], "asks": []}) == GAP
    assert book.snapshot() == {"type": "snapshot", "seq": 12, "bids": [["99.5", "3"]], "asks": [["101", "2"]]}


def test_a_bare_base_symbol_names_the_market_in_the_quote_currency_and_bad_channels_are_refused():
    import pytest

    from orders_app.stream.protocol import ProtocolError, parse
    request = parse('{"op": "subscribe", "channels": ["book:btc", "trades:ETH-BTC", "orders"], "id": 4}', "USD")
    assert request.channels == (("book", "BTC-USD"), ("trades", "ETH-BTC"), ("orders", None))
    assert request.request_id == 4
    for raw, code in (('{"op": "subscribe", "channels": ["book:"]}', "UNKNOWN_CHANNEL"),
                      ('{"op": "subscribe", "channels": []}', "INVALID_MESSAGE"),
                      ('{"op": "auth", "api_key": ""}', "INVALID_MESSAGE"),
                      ('{"op": "ping", "id": true}', "INVALID_MESSAGE")):
        with pytest.raises(ProtocolError) as refused:
            parse(raw, "USD")
        assert refused.value.code == code, raw


def test_a_frame_built_once_is_a_valid_unmasked_text_frame_at_every_length_encoding():
    from orders_app.stream.hub import text_frame
    for size in (5, 125, 126, 65535, 65536):
        frame = text_frame("x" * size)
        assert frame[0] == 0x81  # FIN, text
        header = 2 if size < 126 else 4 if size < 65536 else 10
        assert len(frame) == header + size and frame[header:] == b"x" * size


def test_a_client_being_dropped_as_too_slow_gets_no_book_snapshot_built_for_it():
    """Each subscribe to a loaded book builds a snapshot for the subscriber: for a client whose buffer is past
    its bound (a flood of unread subscribes) that work would be thrown away, at the other clients' expense."""
    from orders_app.stream.state import LevelBook
    hub = Hub(ctx=None, directory=SimpleNamespace(get=lambda name: name))
    built = []

    class CountingBook(LevelBook):
        def snapshot(self) -> dict:
            built.append(1)
            return super().snapshot()

    hub.books["BTC-USD"] = CountingBook(3, [(Decimal("100"), Decimal("1"))], [])
    slow, closed = fake_client(), []
    slow.websocket.transport.get_write_buffer_size = lambda: (1 << 20) + 1

    async def close(code, reason):
        closed.append(code)

    slow.websocket.close = close

    async def scenario():
        for _ in range(100):
            hub.subscribe(slow, "book:BTC-USD", "BTC-USD")
        await asyncio.sleep(0)  # lets the close task run

    asyncio.run(scenario())
    assert built == [] and len(closed) == 1 and pushed(slow) == []
    healthy = fake_client()
    hub.subscribe(healthy, "book:BTC-USD", "BTC-USD")
    assert len(built) == 1 and pushed(healthy)[0]["seq"] == 3
