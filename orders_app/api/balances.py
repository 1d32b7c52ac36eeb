"""Balances: one per asset the user has."""
from __future__ import annotations

from flask.views import MethodView

from orders_app.api.base import SECURITY, Blueprint, current_principal, service_context
from orders_app.schemas import BalanceQuery, BalancesResponse, ErrorResponse
from orders_app.services.queries import balances

blp = Blueprint("balances", __name__, url_prefix="/api/balances", description="Balances")


@blp.before_request
def authenticate():
    """Authentication comes before validation: a bad key is 401 whatever the body."""
    current_principal()


@blp.route("/<int:user_id>")
class Balances(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(BalanceQuery(), location="query")
    @blp.response(200, BalancesResponse)
    @blp.alt_response(403, schema=ErrorResponse)
    def get(self, args, user_id):
        """A user's balances (balance = available + locked)"""
        return {"balances": balances(user_id, args.get("symbol"), current_principal(), service_context())}
