"""Admin: users, deposits, withdrawals (admin token only)."""
from __future__ import annotations

from flask.views import MethodView

from orders_app.api.base import SECURITY, Blueprint, require_admin, service_context
from orders_app.messages import Fund
from orders_app.schemas import (
    BalanceResponse,
    CreateUserRequest,
    CreateUserResponse,
    ErrorResponse,
    FundRequest,
)
from orders_app.services.funding import create_user, fund, parse_asset_amount

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
