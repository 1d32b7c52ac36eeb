"""The client's requests: parsed and checked here, each answered with a reply or an `error` op."""
from __future__ import annotations

import json
from dataclasses import dataclass

OPS = ("subscribe", "unsubscribe", "auth", "ping")
KINDS = ("trades", "book", "ticker")
CHANNELS_PER_REQUEST_MAX = 50
CHANNEL_NAME_CHARS_MAX = 64
API_KEY_CHARS_MAX = 256


class ProtocolError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Request:
    op: str
    channels: tuple[tuple[str, str | None], ...] = ()  # (kind, market as given) pairs
    api_key: str | None = None
    request_id: str | int | None = None  # the client's "id", echoed in the reply


def parse(raw, quote_currency: str) -> Request:
    if not isinstance(raw, str):
        raise ProtocolError("INVALID_MESSAGE", "Send JSON text frames, not binary ones.")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ProtocolError("INVALID_JSON", "The message is not JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("INVALID_MESSAGE", "The message must be a JSON object with an \"op\".")
    request_id = data.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (str, int))
                                   or len(str(request_id)) > 64):
        raise ProtocolError("INVALID_MESSAGE", "\"id\" must be a string or an integer.")
    op = data.get("op")
    if op not in OPS:
        raise ProtocolError("UNKNOWN_OP", f"\"op\" must be one of {', '.join(OPS)}.")
    if op in ("subscribe", "unsubscribe"):
        channels = data.get("channels")
        if (not isinstance(channels, list) or not channels or len(channels) > CHANNELS_PER_REQUEST_MAX
                or not all(isinstance(c, str) for c in channels)):
            raise ProtocolError("INVALID_MESSAGE", f"\"channels\" must be a list of 1 to "
                                                   f"{CHANNELS_PER_REQUEST_MAX} channel names.")
        return Request(op, tuple(channel_of(c, quote_currency) for c in channels), request_id=request_id)
    if op == "auth":
        api_key = data.get("api_key")
        if not isinstance(api_key, str) or not 0 < len(api_key) <= API_KEY_CHARS_MAX:
            raise ProtocolError("INVALID_MESSAGE", "\"api_key\" must be a non-empty string.")
        return Request(op, api_key=api_key, request_id=request_id)
    return Request(op, request_id=request_id)


def channel_of(name: str, quote_currency: str) -> tuple[str, str | None]:
    """("orders", None) or (kind, market name); a bare base symbol means BASE-<quote currency>."""
    if name == "orders":
        return "orders", None
    kind, colon, market = name.partition(":")
    if not colon or kind not in KINDS or not market or len(name) > CHANNEL_NAME_CHARS_MAX:
        raise ProtocolError("UNKNOWN_CHANNEL", f"Unknown channel {name[:CHANNEL_NAME_CHARS_MAX]!r}: use orders, "
                                               "trades:<market>, book:<market> or ticker:<market>.")
    market = market.upper()
    if "-" not in market:
        market = f"{market}-{quote_currency}"
    return kind, market


def error(code: str, message: str, request_id=None) -> dict:
    reply = {"op": "error", "error": {"code": code, "message": message}}
    if request_id is not None:
        reply["id"] = request_id
    return reply
