"""Admin: users, deposits, withdrawals, assets, markets and fees (admin token only)."""
from __future__ import annotations

from flask.views import MethodView

from orders_app.api.base import SECURITY, Blueprint, require_admin, service_context
from orders_app.messages import Fund
from orders_app.schemas import (
    AssetResponse,
    BalanceResponse,
    CreateAssetRequest,
    CreateMarketRequest,
    CreateUserRequest,
    CreateUserResponse,
    ErrorResponse,
    FeesResponse,
    FundRequest,
    MarketResponse,
    UpdateMarketRequest,
)
from orders_app.services.funding import create_user, fund, parse_asset_amount
from orders_app.services.markets import add_asset, create_market, fee_totals, update_market

blp = Blueprint("admin", __name__, url_prefix="/api/admin", description="Administration (admin token)")


@blp.before_request
def authenticate():
    """Every admin route: 401 for a bad key, 403 for a user key — before the body is validated."""
    require_admin()


@blp.route("/users")
class Users(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(CreateUserRequest(), location="json")
    @blp.response(201, CreateUserResponse)
    @blp.alt_response(403, schema=ErrorResponse)
    def post(self, body):
        """Create a user and its API key (shown once)"""
        user, api_key = create_user(body.get("name"), service_context())
        return {"user": user, "api_key": api_key}


def _fund(body: dict, direction: str) -> dict:
    ctx = service_context()
    asset = body["currency_symbol"]
    amount = parse_asset_amount(asset, body["amount"], ctx)
    return {"balance": fund(Fund(body["userId"], asset, amount, direction), ctx)}


@blp.route("/deposits")
class Deposits(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(FundRequest(), location="json")
    @blp.response(201, BalanceResponse)
    @blp.alt_response(404, schema=ErrorResponse)
    def post(self, body):
        """Credit a user's available balance"""
        return _fund(body, "deposit")


@blp.route("/withdrawals")
class Withdrawals(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(FundRequest(), location="json")
    @blp.response(201, BalanceResponse)
    @blp.alt_response(400, schema=ErrorResponse, description="INSUFFICIENT_FUNDS if more than available")
    def post(self, body):
        """Debit a user's available balance"""
        return _fund(body, "withdrawal")


@blp.route("/assets")
class Assets(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(CreateAssetRequest(), location="json")
    @blp.response(201, AssetResponse)
    @blp.alt_response(409, schema=ErrorResponse, description="ALREADY_EXISTS")
    def post(self, body):
        """Create an asset with its scale (decimals, fixed for good)"""
        return {"asset": add_asset(body["symbol"], body["scale"], service_context())}


@blp.route("/markets")
class Markets(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(CreateMarketRequest(), location="json")
    @blp.response(201, MarketResponse)
    @blp.alt_response(400, schema=ErrorResponse, description="steps its assets cannot hold exactly")
    @blp.alt_response(409, schema=ErrorResponse, description="ALREADY_EXISTS")
    def post(self, body):
        """Create the market BASE-QUOTE of two existing assets"""
        return {"market": create_market(body, service_context())}


@blp.route("/markets/<string:market>")
class Market(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(UpdateMarketRequest(), location="json")
    @blp.response(200, MarketResponse)
    @blp.alt_response(404, schema=ErrorResponse)
    def patch(self, body, market):
        """Halt or resume a market, or change its fee rates (for trades settled after the change)"""
        return {"market": update_market(market, body, service_context())}


@blp.route("/fees")
class Fees(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, FeesResponse)
    def get(self):
        """What the fee account holds, per asset"""
        return {"fees": fee_totals(service_context())}
