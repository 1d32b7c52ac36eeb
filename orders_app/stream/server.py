"""The WebSocket server: one asyncio loop serving every client, fed by the Kafka thread (feed.py)."""
from __future__ import annotations

import asyncio
import json
import logging
import signal
from http import HTTPStatus

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from orders_app.services import stream_reads
from orders_app.stream.feed import Feed, MarketDirectory
from orders_app.stream.hub import Client, Hub, dumps
from orders_app.stream.protocol import ProtocolError, Request, error, parse

log = logging.getLogger("orders_app.stream")
PATH = "/ws"
MESSAGE_BYTES_MAX = 16 * 1024
CHANNELS_PER_CLIENT_MAX = 200
CLOSE_TIMEOUT_S = 2


class StreamServer:
    def __init__(self, ctx):
        self.ctx, self.settings = ctx, ctx.settings
        self.directory = MarketDirectory(lambda: stream_reads.markets_by_name(ctx))
        self.hub = Hub(ctx, self.directory)
        self.clients: set[Client] = set()
        self.feed: Feed | None = None
        self.too_slow_disconnects = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.feed = Feed(self.settings, self.directory,
                         deliver=lambda events: loop.call_soon_threadsafe(self.hub.dispatch, events),
                         on_restart=lambda: loop.call_soon_threadsafe(self.hub.reload_all))
        self.feed.start()
        async with serve(self.handle, self.settings.stream_host, self.settings.stream_port,
                         process_request=self.process_request, compression=None, max_size=MESSAGE_BYTES_MAX,
                         close_timeout=CLOSE_TIMEOUT_S):
            log.info("stream started", extra={"url": f"ws://{self.settings.stream_host}:{self.settings.stream_port}{PATH}"})
            await stop.wait()
        self.feed.stopping.set()
        log.info("stream stopped")

    def _count_too_slow(self) -> None:
        self.too_slow_disconnects += 1

    def process_request(self, connection, request):
        if request.path.split("?")[0] == "/health":
            ready = self.feed is not None and self.feed.connected.is_set()
            body = {"status": "ok" if ready else "starting", "kafka": ready, "clients": len(self.clients),
                    "books": len(self.hub.books), "events": self.feed.received if self.feed else 0,
                    "pushed": self.hub.pushed, "too_slow_disconnects": self.too_slow_disconnects}
            response = connection.respond(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                                          json.dumps(body) + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        if request.path.split("?")[0] != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"WebSocket endpoint is {PATH}\n")
        return None

    async def handle(self, websocket) -> None:
        client = Client(websocket, self.settings.stream_client_buffer_bytes_max, self._count_too_slow)
        self.clients.add(client)
        try:
            async for raw in websocket:
                try:
                    await self.answer(client, parse(raw, self.settings.quote_currency))
                except ProtocolError as problem:
                    client.push(dumps(error(problem.code, problem.message, _request_id(raw))))
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            self.hub.forget(client)

    async def answer(self, client: Client, request: Request) -> None:
        reply: dict = {"op": "pong"} if request.op == "ping" else {}
        if request.op == "auth":
            loop = asyncio.get_running_loop()
            user_id = await loop.run_in_executor(None, stream_reads.user_for_api_key, self.ctx, str(request.api_key))
            if user_id is None:
                raise ProtocolError("UNAUTHORIZED", "Unknown or revoked API key.")
            if client.user_id is not None and client.user_id != user_id and "orders" in client.channels:
                self.hub.unsubscribe(client, "orders")
            client.user_id = user_id
            reply = {"op": "authenticated", "user_id": user_id}
        elif request.op in ("subscribe", "unsubscribe"):
            names = [await self._channel(client, kind, market, request.op) for kind, market in request.channels]
            reply = {"op": f"{request.op}d", "channels": names}
        if request.request_id is not None:
            reply["id"] = request.request_id
        client.push(dumps(reply))
        if request.op == "subscribe":
            for (_, market), name in zip(request.channels, reply["channels"], strict=True):
                self.hub.subscribe(client, name, market)  # again: a fresh snapshot (a client that saw a gap)
        elif request.op == "unsubscribe":
            for name in reply["channels"]:
                self.hub.unsubscribe(client, name)

    async def _channel(self, client: Client, kind: str, market: str | None, op: str) -> str:
        """The channel's canonical name, checked for a subscription."""
        if kind == "orders":
            if op == "subscribe" and client.user_id is None:
                raise ProtocolError("AUTH_REQUIRED", "Send {\"op\": \"auth\", \"api_key\": ...} before subscribing "
                                                     "to orders.")
            return "orders"
        name = f"{kind}:{market}"
        if op == "subscribe":
            if len(client.channels) >= CHANNELS_PER_CLIENT_MAX:
                raise ProtocolError("TOO_MANY_CHANNELS", f"At most {CHANNELS_PER_CLIENT_MAX} channels per connection.")
            loop = asyncio.get_running_loop()
            if market is None or await loop.run_in_executor(None, self.directory.get, market) is None:
                raise ProtocolError("UNKNOWN_MARKET", f"Unknown market {market!r}.")
        return name


def _request_id(raw):
    try:
        request_id = json.loads(raw).get("id")
    except Exception:  # noqa: BLE001 - whatever it was, it has no id to echo
        return None
    return request_id if isinstance(request_id, (str, int)) and not isinstance(request_id, bool) else None


def main() -> None:
    from orders_app.bootstrap import bootstrap
    from orders_app.config import Settings
    from orders_app.logs import configure_logging
    settings = Settings.from_env(needs_admin_token=False)
    configure_logging(settings.log_level)
    server = StreamServer(bootstrap(settings, role="stream").ctx)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await server.run(stop)

    asyncio.run(run())
