"""Public market data: markets, assets, order book, trades, ticker and candles (no authentication)."""
from __future__ import annotations

from flask.views import MethodView

from orders_app.api.base import Blueprint, service_context
from orders_app.schemas import (
    AssetsResponse,
    CandlesQuery,
    CandlesResponse,
    ErrorResponse,
    MarketsResponse,
    OrderBookQuery,
    OrderBookResponse,
    TickerResponse,
    TradesQuery,
    TradesResponse,
)
from orders_app.services.market_data import candle_history, order_book, ticker, trade_history
from orders_app.services.markets import list_assets, list_markets

# BASE-QUOTE, each up to 16 characters; bounded so the document has a market that is invalid for its shape alone
MARKET = "<string(maxlength=33):market>"

blp = Blueprint("market", __name__, url_prefix="/api", description="Public market data")


@blp.route("/orderbook/<string:symbol>")
class OrderBook(MethodView):
    @blp.arguments(OrderBookQuery(), location="query")
    @blp.response(200, OrderBookResponse)
    @blp.alt_response(400, schema=ErrorResponse)
    def get(self, args, symbol):
        """Aggregated price levels, best first"""
        return order_book(symbol, args["depth"], service_context())


@blp.route("/trades")
class Trades(MethodView):
    @blp.arguments(TradesQuery(), location="query")
    @blp.response(200, TradesResponse)
    @blp.alt_response(400, schema=ErrorResponse)
    def get(self, args):
        """Trades of one market, newest first"""
        return {"trades": trade_history(args["currency_symbol"], args["limit"], args.get("before_id"),
                                        service_context())}


@blp.route("/markets")
class Markets(MethodView):
    @blp.response(200, MarketsResponse)
    def get(self):
        """Every market with its steps, limits, fee rates and status"""
        return {"markets": list_markets(service_context())}


@blp.route("/assets")
class Assets(MethodView):
    @blp.response(200, AssetsResponse)
    def get(self):
        """Every asset with its scale (decimals)"""
        return {"assets": list_assets(service_context())}


@blp.route(f"/ticker/{MARKET}")
class Ticker(MethodView):
    @blp.response(200, TickerResponse)
    @blp.alt_response(400, schema=ErrorResponse)
    def get(self, market):
        """The last 24 hours of a market, rolling, and its best prices"""
        return ticker(market, service_context())


@blp.route(f"/candles/{MARKET}")
class Candles(MethodView):
    @blp.arguments(CandlesQuery(), location="query")
    @blp.response(200, CandlesResponse)
    @blp.alt_response(400, schema=ErrorResponse)
    def get(self, args, market):
        """The most recent intervals with trades, oldest first"""
        return {"candles": candle_history(market, args["interval"], args["limit"], args.get("end_time"),
                                          service_context())}
