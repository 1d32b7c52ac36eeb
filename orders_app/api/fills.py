"""Fills: the caller's own side of each trade."""
from __future__ import annotations

from flask.views import MethodView

from orders_app.api.base import SECURITY, Blueprint, acting_user_id, current_principal, service_context
from orders_app.messages import FillQuery
from orders_app.schemas import ErrorResponse, FillsQuery, FillsResponse
from orders_app.services.queries import list_fills

blp = Blueprint("fills", __name__, url_prefix="/api/fills", description="Your fills")


@blp.before_request
def authenticate():
    """Authentication comes before validation: a bad key is 401 whatever the query."""
    current_principal()


@blp.route("")
class Fills(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(FillsQuery(), location="query")
    @blp.response(200, FillsResponse)
    @blp.alt_response(400, schema=ErrorResponse, description="VALIDATION_ERROR (admin without userId), "
                                                              "UNKNOWN_SYMBOL")
    @blp.alt_response(403, schema=ErrorResponse)
    def get(self, args):
        """The caller's fills (one per order of theirs in a trade), newest first"""
        principal = current_principal()
        query = FillQuery(user_id=acting_user_id(principal, args.get("userId")), market=args.get("currency_symbol"),
                          order_id=args.get("order_id"), limit=args["limit"], before_id=args.get("before_id"))
        return {"fills": list_fills(query, principal, service_context())}
