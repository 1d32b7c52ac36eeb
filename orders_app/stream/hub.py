"""Who listens to what, and what each event becomes for them. Runs on the asyncio loop only.

Every push is serialized and encoded once and written to each subscriber's socket; a client whose
unsent bytes pass a bound is disconnected with a reason instead of slowing anyone else. A market's book and ticker are
read from the database the first time a client asks for one of its channels, then kept from events.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from websockets.protocol import State

from orders_app.errors import invariant
from orders_app.services import stream_reads
from orders_app.stream.state import APPLIED, DAY_MINUTES, GAP, LevelBook, Ticker

log = logging.getLogger("orders_app.stream")
ORDER_MARKS_MAX = 100_000  # newest (seq, source) seen per order, to drop an older state arriving late
SNAPSHOT_ATTEMPTS_MAX = 5
SLOW_CLIENT_CLOSE_CODE = 1008


def dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


class Client:
    """One connection. Pushes are written straight to its socket as frames built once (`text_frame`: no
    task or queue per client); what the socket cannot take yet waits in the connection's write buffer,
    and a client whose buffer passes `buffer_bytes_max` is disconnected with a reason."""

    def __init__(self, websocket, buffer_bytes_max: int, on_too_slow=lambda: None):
        self.websocket, self.buffer_bytes_max, self.on_too_slow = websocket, buffer_bytes_max, on_too_slow
        self.channels: set[str] = set()
        self.user_id: int | None = None
        self.dropped = False

    def writable(self) -> bool:
        """False once the client fell too far behind (it is being disconnected)."""
        if self.dropped:
            return False
        transport = self.websocket.transport
        waiting = transport.get_write_buffer_size() if transport is not None else 0
        if waiting <= self.buffer_bytes_max:
            return True
        self.dropped = True
        self.on_too_slow()
        log.warning("stream client too slow: disconnected", extra={"waiting_bytes": waiting})
        asyncio.get_running_loop().create_task(self.websocket.close(
            SLOW_CLIENT_CLOSE_CODE, f"too slow: {waiting} bytes waiting"))
        return False

    def push(self, text: str) -> None:
        if self.writable() and self.websocket.protocol.state is State.OPEN:
            self.websocket.transport.write(text_frame(text))


class Hub:
    def __init__(self, ctx, directory):
        self.ctx, self.directory = ctx, directory
        self.subscribers: dict[str, set[Client]] = {}
        self.order_watchers: dict[int, set[Client]] = {}
        self.books: dict[str, LevelBook] = {}
        self.tickers: dict[str, Ticker] = {}
        self.loading: dict[str, list[dict]] = {}  # market -> deltas received while its book is read
        self.order_marks: OrderedDict[int, tuple[int, int]] = OrderedDict()
        self.pending: dict[Client, list[bytes]] = {}  # frames of the dispatch in progress, per client
        self.pushed = 0

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, client: Client, channel: str, market: str | None) -> None:
        client.channels.add(channel)
        self.subscribers.setdefault(channel, set()).add(client)
        if market is None:
            user_id = client.user_id
            invariant(channel == "orders" and user_id is not None, f"{channel} without a market or user")
            self.order_watchers.setdefault(user_id, set()).add(client)  # type: ignore[arg-type]  # checked above
            return
        kind = channel.partition(":")[0]
        if market not in self.books:
            self._start_loading(market)
        else:
            if kind == "book" and client.writable():  # no snapshot built for a client being dropped
                client.push(dumps({"channel": channel, **self.books[market].snapshot()}))
            elif kind == "ticker":
                client.push(self._ticker_message(market))

    def unsubscribe(self, client: Client, channel: str) -> None:
        client.channels.discard(channel)
        listeners = self.subscribers.get(channel)
        if listeners is not None:
            listeners.discard(client)
            if not listeners:
                del self.subscribers[channel]
        if channel == "orders" and client.user_id is not None:
            watchers = self.order_watchers.get(client.user_id)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del self.order_watchers[client.user_id]

    def forget(self, client: Client) -> None:
        for channel in list(client.channels):
            self.unsubscribe(client, channel)

    # -- books ----------------------------------------------------------------------------------

    def _start_loading(self, market: str) -> None:
        """Read the market's book unless a read is under way: marked at once, so that the subscriptions
        that arrive before the read starts share it."""
        if market not in self.loading:
            self.loading[market] = []
            asyncio.get_running_loop().create_task(self._load_market(market))

    async def _load_market(self, market: str) -> None:
        """Read the market's book (and, the first time, its ticker) and push the snapshot to its book's
        subscribers; deltas that arrive meanwhile are applied on top."""
        loop = asyncio.get_running_loop()
        spec = self.directory.get(market)
        try:
            if market not in self.tickers:
                since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=DAY_MINUTES)
                minutes, last_id = await loop.run_in_executor(None, stream_reads.trade_minutes, self.ctx, spec, since)
                self.tickers[market] = Ticker(market, minutes, last_id)
            for _ in range(SNAPSHOT_ATTEMPTS_MAX):
                snapshot = await loop.run_in_executor(None, stream_reads.book_snapshot, self.ctx, spec)
                book = LevelBook(snapshot.seq, snapshot.bids, snapshot.asks)
                waiting = sorted(self.loading[market], key=lambda d: d["seq"])
                if all(book.apply(delta) != GAP for delta in waiting):
                    break
                self.loading[market] = []  # deltas were lost (a broker restart): read again
            else:
                log.error("stream cannot follow the book of %s", market)
                return
            self.books[market] = book
        except Exception:  # noqa: BLE001 - the database is away: the next subscription tries again
            log.exception("stream could not read the book of %s", market)
            return
        finally:
            self.loading.pop(market, None)
        channel = f"book:{market}"
        if channel in self.subscribers:
            self._fan_out(channel, dumps({"channel": channel, **book.snapshot()}))
        if f"ticker:{market}" in self.subscribers:
            self._fan_out(f"ticker:{market}", self._ticker_message(market))
        self._flush()

    def reload_all(self) -> None:
        """After a broker restart: every book again from the database, and fresh snapshots to subscribers."""
        for market in list(self.books):
            del self.books[market]
            self._start_loading(market)

    # -- events from the feed -------------------------------------------------------------------

    def dispatch(self, events: list[tuple]) -> None:
        """One Kafka poll's events, in the order read."""
        trades: dict[str, list[dict]] = {}
        tickers: set[str] = set()
        for event in events:
            kind, market = event[0], event[1]
            if kind == "delta":
                self._on_delta(market, event[2], tickers)
            elif kind == "trade":
                trade = event[2]
                ticker = self.tickers.get(market)
                if ticker is not None:
                    if not ticker.add_trade(trade["id"], _minute(trade["timestamp"]), Decimal(trade["price"]),
                                            Decimal(trade["quantity"])):
                        continue  # counted already: read with the book, or a record read twice
                    tickers.add(market)
                trades.setdefault(market, []).append(trade)
            elif kind == "order":
                self._on_order(*event[2:])
        for market, batch in trades.items():
            channel = f"trades:{market}"
            if channel in self.subscribers:
                self._fan_out(channel, dumps({"channel": channel, "data": batch}))
        for market in tickers:
            if f"ticker:{market}" in self.subscribers:
                self._fan_out(f"ticker:{market}", self._ticker_message(market))
        self._flush()

    def _on_delta(self, market: str, delta: dict, tickers: set[str]) -> None:
        waiting = self.loading.get(market)
        if waiting is not None:
            waiting.append(delta)
            return
        book = self.books.get(market)
        if book is None:
            return  # nobody asked for this market yet
        outcome = book.apply(delta)
        if outcome == APPLIED:
            channel = f"book:{market}"
            if channel in self.subscribers:
                self._fan_out(channel, dumps({"channel": channel, "type": "delta", "seq": delta["seq"],
                                              "prev_seq": delta["prev_seq"], "bids": delta["bids"],
                                              "asks": delta["asks"], "timestamp": delta.get("timestamp")}))
            if delta["bids"] or delta["asks"]:
                tickers.add(market)
        elif outcome == GAP:
            log.warning("stream missed book events of %s: reading it again", market)
            del self.books[market]
            self._start_loading(market)

    def _on_order(self, user_id: int, seq: int, source: int, order: dict) -> None:
        mark, order_id = (seq, source), order["id"]
        if self.order_marks.get(order_id, mark) > mark:
            return  # an older state of the order, arriving after a newer one from another topic
        self.order_marks[order_id] = mark
        self.order_marks.move_to_end(order_id)
        if len(self.order_marks) > ORDER_MARKS_MAX:
            self.order_marks.popitem(last=False)
        watchers = self.order_watchers.get(user_id)
        if watchers:
            self._queue(watchers, dumps({"channel": "orders", "data": order}))

    def _ticker_message(self, market: str) -> str:
        view = self.tickers[market].view(int(time.time() // 60), self.books.get(market))
        return dumps({"channel": f"ticker:{market}", "data": view})

    def _fan_out(self, channel: str, text: str) -> None:
        self._queue(self.subscribers.get(channel, ()), text)

    def _queue(self, clients, text: str) -> None:
        """Queue the push for `clients`; `_flush` writes them at the end of the dispatch."""
        frame, pending = text_frame(text), self.pending
        for client in clients:
            frames = pending.get(client)
            if frames is None:
                pending[client] = [frame]
            else:
                frames.append(frame)

    def _flush(self) -> None:
        """One write per client for all of a dispatch's pushes to it (a system call per write is most of
        the cost of fanning out)."""
        pending, self.pending = self.pending, {}
        for client, frames in pending.items():
            if client.writable() and client.websocket.protocol.state is State.OPEN:
                client.websocket.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
                self.pushed += len(frames)


def text_frame(text: str) -> bytes:
    """One unfragmented, uncompressed server-to-client text frame (RFC 6455 5.2), built once per push and
    written to every subscriber's transport: websockets' `broadcast` builds it again for each connection,
    which was most of the stream's CPU with 1,000 subscribers. Safe because the server never fragments
    or compresses (compression=None) and every write is whole and synchronous on the loop."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 65536:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


def _minute(timestamp: str) -> int:
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(moment.timestamp() // 60)
