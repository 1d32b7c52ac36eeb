"""Marshmallow schemas: request loading, response dumping, and the OpenAPI document (one source).

Amounts use `money.DecimalString`: a JSON number or a decimal string in, a canonical decimal string out.
Request bodies reject unknown fields (a typo must not silently drop a limit); query strings ignore them.
Long because every endpoint's request and response is declared here: one module, one source for the
OpenAPI document.
"""
from __future__ import annotations

import re
from datetime import timezone

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from orders_app.money import DecimalString
from orders_app.services.candles import INTERVALS_S

SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "market")
TIMES_IN_FORCE = ("GTC", "IOC", "FOK")
STATUSES = ("pending", "partially_filled", "completed", "cancelled", "rejected")
# Why an order became final; `unprocessable`: the matching worker could not take an order it had accepted.
STATUS_REASONS = ("filled", "user_cancel", "ioc", "fok", "post_only", "self_trade", "market_no_liquidity",
                  "market_budget", "market_halted", "unprocessable")
LIQUIDITY = ("maker", "taker")
ID_MAX = 2**63 - 1
CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


class WholeValue(validate.Regexp):
    """`validate.Regexp` matching the whole value: its `re.match` lets `$` match before a trailing newline.
    Patterns keep their ^ and $, so the OpenAPI document (ECMA regex, where $ is the end) says the same."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class QueryInteger(fields.Integer):
    """A query-string integer in ASCII digits: `int()` alone would also take " 5", "1_000" and "\u0665"."""

    _DIGITS = re.compile(r"-?[0-9]{1,20}")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not self._DIGITS.fullmatch(value):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def _id(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=ID_MAX), **kwargs)


def _symbol(**kwargs) -> fields.String:
    """An asset, a market name (`BASE-QUOTE`) or a bare base asset (`BASE-<QUOTE_CURRENCY>`)."""
    return fields.String(validate=validate.Length(min=1, max=33), **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true/false only: not 1, "true" or "yes" (1 == True in Python, so check the type)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _strict_bool(**kwargs) -> fields.Boolean:
    return StrictBoolean(**kwargs)


class LoadedOnItsOwn(fields.Nested):
    """Documented as the nested schema, loaded as given: each item is then loaded on its own, so that one
    invalid item is refused alone instead of failing the whole request."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return value


class RequestBody(Schema):
    class Meta:
        unknown = RAISE


class QueryArgs(Schema):
    class Meta:
        unknown = EXCLUDE


# --- requests ----------------------------------------------------------------------------------------

class PlaceOrderRequest(RequestBody):
    order_type = fields.String(required=True, validate=validate.OneOf(SIDES),
                               metadata={"description": "buy or sell"})
    currency_symbol = _symbol(required=True, metadata={"description": "market, e.g. BTC-USD, or its base asset "
                                                                      "(BTC = BTC-<QUOTE_CURRENCY>)"})
    quantity = DecimalString(metadata={"description": "base amount; required except for a market buy by "
                                                      "quote_quantity", "example": "0.5"})
    price = DecimalString(metadata={"description": "limit price in the quote asset (limit orders)",
                                    "example": "5.123456"})
    type = fields.String(load_default="limit", validate=validate.OneOf(ORDER_TYPES))
    time_in_force = fields.String(load_default="GTC", validate=validate.OneOf(TIMES_IN_FORCE))
    post_only = _strict_bool(load_default=False)
    quote_quantity = DecimalString(metadata={"description": "market buy: quote amount to spend"})
    client_order_id = fields.String(validate=WholeValue(CLIENT_ORDER_ID_PATTERN, error=(
        "client_order_id must be 1-64 characters of A-Z a-z 0-9 . _ : -")))
    userId = _id(metadata={"description": "optional for users (must be their own id); required for admin"})


class PlaceOrdersRequest(RequestBody):
    orders = fields.List(LoadedOnItsOwn(PlaceOrderRequest), required=True, validate=validate.Length(min=1, max=20),
                         metadata={"description": "1-20 orders, each as for POST /api/orders"})


class CancelByClientIdQuery(QueryArgs):
    userId = QueryInteger(validate=validate.Range(min=1, max=ID_MAX),
                          metadata={"description": "required with the admin token"})


class CancelAllQuery(CancelByClientIdQuery):
    currency_symbol = _symbol(metadata={"description": "only this market (BASE or BASE-QUOTE); all when absent"})


class FillsQuery(QueryArgs):
    userId = QueryInteger(validate=validate.Range(min=1, max=ID_MAX),
                          metadata={"description": "required with the admin token"})
    currency_symbol = _symbol(metadata={"description": "only this market (BASE or BASE-QUOTE)"})
    order_id = QueryInteger(validate=validate.Range(min=1, max=ID_MAX))
    limit = QueryInteger(load_default=100, validate=validate.Range(min=1, max=1000))
    before_id = QueryInteger(validate=validate.Range(min=1, max=ID_MAX),
                             metadata={"description": "only fills of trades older than this trade id"})


class OrderListQuery(QueryArgs):
    userId = QueryInteger(validate=validate.Range(min=1, max=ID_MAX))
    currency_symbol = _symbol()
    order_type = fields.String(validate=validate.OneOf(SIDES))
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = QueryInteger(load_default=100, validate=validate.Range(min=1, max=1000))
    before_id = QueryInteger(validate=validate.Range(min=1, max=ID_MAX))


class OrderBookQuery(QueryArgs):
    depth = QueryInteger(load_default=50, validate=validate.Range(min=1, max=1000))


class TradesQuery(QueryArgs):
    currency_symbol = _symbol(required=True)
    limit = QueryInteger(load_default=100, validate=validate.Range(min=1, max=1000))
    before_id = QueryInteger(validate=validate.Range(min=1, max=ID_MAX))


class UtcDateTime(fields.DateTime):
    """An ISO-8601 time as naive UTC (the stored times): with an offset converted, without one taken as UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is None:
            return moment
        try:
            return moment.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # "0001-01-01T00:00:00+01:00" is before the first representable time
            raise self.make_error("invalid", input=value, obj_type="datetime") from None


class CandlesQuery(QueryArgs):
    interval = fields.String(required=True, validate=validate.OneOf(tuple(INTERVALS_S)))
    limit = QueryInteger(load_default=100, validate=validate.Range(min=1, max=1000))
    end_time = UtcDateTime(format="iso", metadata={
        "description": "ISO-8601; candles starting at or before it (default: the latest)",
        "example": "2026-12-01T23:59:00Z"})


class BalanceQuery(QueryArgs):
    symbol = _symbol()


class CreateUserRequest(RequestBody):
    name = fields.String(allow_none=True, validate=validate.Length(max=200))


class FundRequest(RequestBody):
    userId = _id(required=True)
    currency_symbol = _symbol(required=True)
    amount = DecimalString(required=True, metadata={"example": "1000"})


class CreateAssetRequest(RequestBody):
    symbol = fields.String(required=True, metadata={"example": "SOL"})
    scale = fields.Integer(required=True, strict=True, metadata={"description": "decimals, 0 to 18",
                                                                 "example": 8})


FEE_RATE_DOC = {"description": "0 to 0.1; a trade's fee is amount x rate, rounded up to the asset's scale"}


class CreateMarketRequest(RequestBody):
    base = fields.String(required=True, metadata={"example": "ETH"})
    quote = fields.String(required=True, metadata={"example": "BTC"})
    price_step = DecimalString(required=True, metadata={"example": "0.00001"})
    quantity_step = DecimalString(required=True, metadata={"example": "0.001"})
    min_quantity = DecimalString()
    max_price = DecimalString()
    max_quantity = DecimalString()
    min_notional = DecimalString()
    maker_fee_rate = DecimalString(metadata=FEE_RATE_DOC)
    taker_fee_rate = DecimalString(metadata=FEE_RATE_DOC)


class UpdateMarketRequest(RequestBody):
    status = fields.String(validate=validate.OneOf(("trading", "halted")))
    maker_fee_rate = DecimalString(metadata=FEE_RATE_DOC)
    taker_fee_rate = DecimalString(metadata=FEE_RATE_DOC)


# --- responses ---------------------------------------------------------------------------------------

class ErrorDetail(Schema):
    code = fields.String()
    message = fields.String()
    field = fields.String()


class ErrorResponse(Schema):
    error = fields.Nested(ErrorDetail)


class OrderSchema(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    order_type = fields.String(metadata={"enum": list(SIDES)})
    type = fields.String(metadata={"enum": list(ORDER_TYPES)})
    currency_symbol = fields.String(metadata={"description": "the market's base asset"})
    market = fields.String(metadata={"description": "the market, BASE-QUOTE", "example": "BTC-USD"})
    price = DecimalString(allow_none=True)
    quantity = DecimalString(allow_none=True)
    quote_quantity = DecimalString(allow_none=True)
    filled_quantity = DecimalString()
    sell_quantity = DecimalString(metadata={"description": "equals filled_quantity (original system)"})
    remaining_quantity = DecimalString(allow_none=True)
    filled_quote = DecimalString(metadata={"description": "sum of price x quantity over its fills"})
    status = fields.String(metadata={"enum": list(STATUSES)})
    status_reason = fields.String(allow_none=True, metadata={
        "enum": [*STATUS_REASONS, None], "description": "why it became final; null while open"})
    time_in_force = fields.String(metadata={"enum": list(TIMES_IN_FORCE)})
    post_only = fields.Boolean()
    client_order_id = fields.String(allow_none=True)
    fee = DecimalString(metadata={"description": "sum of the fees of its trades"})
    fee_asset = fields.String(metadata={"description": "the asset it receives: base for a buy, quote for a sell"})
    cancel_requested = fields.Boolean()
    timestamp = fields.String()
    updated_at = fields.String()


class OrderResponse(Schema):
    order = fields.Nested(OrderSchema)


class OrdersResponse(Schema):
    orders = fields.List(fields.Nested(OrderSchema))


class BatchResult(Schema):
    status = fields.Integer(metadata={"description": "what POST /api/orders would have answered for this order"})
    order = fields.Nested(OrderSchema)
    error = fields.Nested(ErrorDetail)


class PlaceOrdersResponse(Schema):
    results = fields.List(fields.Nested(BatchResult), metadata={"description": "one per order, in order"})


class FillSchema(Schema):
    trade_id = fields.Integer()
    order_id = fields.Integer()
    market = fields.String()
    currency_symbol = fields.String()
    side = fields.String(metadata={"enum": list(SIDES)})
    price = DecimalString()
    quantity = DecimalString()
    quote_quantity = DecimalString(metadata={"description": "price x quantity"})
    fee = DecimalString()
    fee_asset = fields.String(metadata={"description": "the asset this fill received"})
    liquidity = fields.String(metadata={"enum": list(LIQUIDITY)})
    timestamp = fields.String()


class FillsResponse(Schema):
    fills = fields.List(fields.Nested(FillSchema))


class BalanceSchema(Schema):
    user_id = fields.Integer()
    currency_symbol = fields.String()
    balance = DecimalString()
    available = DecimalString()
    locked = DecimalString()


class BalanceResponse(Schema):
    balance = fields.Nested(BalanceSchema)


class BalancesResponse(Schema):
    balances = fields.List(fields.Nested(BalanceSchema))


class BookLevel(Schema):
    price = DecimalString()
    quantity = DecimalString()


class OrderBookResponse(Schema):
    currency_symbol = fields.String()
    market = fields.String()
    bids = fields.List(fields.Nested(BookLevel))
    asks = fields.List(fields.Nested(BookLevel))


class TradeSchema(Schema):
    id = fields.Integer()
    currency_symbol = fields.String()
    market = fields.String()
    price = DecimalString()
    quantity = DecimalString()
    buy_order_id = fields.Integer()
    sell_order_id = fields.Integer()
    taker_side = fields.String(metadata={"enum": list(SIDES)})
    timestamp = fields.String()


class TradesResponse(Schema):
    trades = fields.List(fields.Nested(TradeSchema))


class AssetSchema(Schema):
    symbol = fields.String()
    scale = fields.Integer()


class AssetResponse(Schema):
    asset = fields.Nested(AssetSchema)


class AssetsResponse(Schema):
    assets = fields.List(fields.Nested(AssetSchema))


class MarketSchema(Schema):
    symbol = fields.String(metadata={"description": "the market's name, BASE-QUOTE"})
    base = fields.String()
    quote = fields.String()
    price_step = DecimalString()
    quantity_step = DecimalString()
    min_quantity = DecimalString()
    max_price = DecimalString()
    max_quantity = DecimalString()
    min_notional = DecimalString()
    maker_fee_rate = DecimalString()
    taker_fee_rate = DecimalString()
    status = fields.String(metadata={"enum": ["trading", "halted"]})


class MarketResponse(Schema):
    market = fields.Nested(MarketSchema)


class MarketsResponse(Schema):
    markets = fields.List(fields.Nested(MarketSchema))


class FeeSchema(Schema):
    currency_symbol = fields.String()
    amount = DecimalString()


class FeesResponse(Schema):
    fees = fields.List(fields.Nested(FeeSchema))


class TickerResponse(Schema):
    market = fields.String(metadata={"example": "BTC-USD"})
    last_price = DecimalString(allow_none=True, metadata={"description": "the market's last trade, ever"})
    best_bid = DecimalString(allow_none=True)
    best_ask = DecimalString(allow_none=True)
    open_24h = DecimalString(allow_none=True)
    high_24h = DecimalString(allow_none=True)
    low_24h = DecimalString(allow_none=True)
    volume_24h = DecimalString(metadata={"description": "base amount traded"})
    quote_volume_24h = DecimalString(metadata={"description": "sum of price x quantity"})
    trade_count_24h = fields.Integer()


class CandleSchema(Schema):
    open_time = fields.String(metadata={"example": "2026-12-01T23:16:00.000Z"})
    open = DecimalString()
    high = DecimalString()
    low = DecimalString()
    close = DecimalString()
    volume = DecimalString()
    quote_volume = DecimalString()
    trades = fields.Integer()


class CandlesResponse(Schema):
    candles = fields.List(fields.Nested(CandleSchema))


class UserSchema(Schema):
    id = fields.Integer()
    name = fields.String(allow_none=True)


class CreateUserResponse(Schema):
    user = fields.Nested(UserSchema)
    api_key = fields.String(metadata={"description": "shown once; only its hash is stored"})


class StatusResponse(Schema):
    status = fields.String()
