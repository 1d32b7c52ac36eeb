"""`GET /`: the trading page, plain files from orders_app/static/ (no build step, nothing from elsewhere).
The page learns where the stream is and which markets exist from a JSON block filled in here."""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response

from orders_app.api.base import service_context

blp = Blueprint("page", __name__)
PAGE = Path(__file__).resolve().parent.parent / "static" / "index.html"


@blp.get("/")
def trading_page():
    ctx = service_context()
    ctx.reload_markets()
    config = {"streamPort": ctx.settings.stream_port,
              "markets": [spec.name for spec in sorted(ctx.markets.values(), key=lambda s: s.id)]}
    html = PAGE.read_text().replace("{/*PAGE_CONFIG*/}", json.dumps(config).replace("</", "<\\/"))
    return Response(html, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "Content-Security-Policy":
                             "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:"})
