"""Orders: place, list, get, cancel."""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from orders_app.api.base import (
    SECURITY,
    Blueprint,
    acting_user_id,
    current_principal,
    group_committer,
    service_context,
)
from orders_app.api.ratelimit import limit_order_placement
from orders_app.messages import OrderQuery, PlaceOrder, RequestCancel
from orders_app.schemas import (
    ErrorResponse,
    OrderListQuery,
    OrderResponse,
    OrdersResponse,
    PlaceOrderRequest,
)
from orders_app.services.cancelling import request_cancel
from orders_app.services.placing import place_order
from orders_app.services.queries import get_order, list_orders

blp = Blueprint("orders", __name__, url_prefix="/api/orders", description="Place, list and cancel orders")


@blp.before_request
def authenticate():
    """Authentication comes before validation: a bad key is 401 whatever the body."""
    current_principal()


blp.before_request(limit_order_placement)  # after authentication (hooks run in registration order)


@blp.route("")
class Orders(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(PlaceOrderRequest(), location="json")
    @blp.response(201, OrderResponse, description="Accepted: funds held and the order durably recorded")
    @blp.alt_response(200, schema=OrderResponse, description="A repeated client_order_id: the first order")
    @blp.alt_response(400, schema=ErrorResponse, description="VALIDATION_ERROR, INSUFFICIENT_FUNDS, UNKNOWN_SYMBOL")
    @blp.alt_response(429, schema=ErrorResponse, description="RATE_LIMITED (if rate limiting is on); see Retry-After")
    def post(self, body):
        """Place an order (matching is asynchronous)"""
        principal = current_principal()
        command = PlaceOrder(
            user_id=acting_user_id(principal, body.get("userId")), side=body["order_type"],
            symbol=body["currency_symbol"], order_type=body["type"], time_in_force=body["time_in_force"],
            post_only=body["post_only"], price=body.get("price"), quantity=body.get("quantity"),
            quote_quantity=body.get("quote_quantity"), client_order_id=body.get("client_order_id"),
            request_id=g.request_id)
        placed = place_order(command, service_context(), group_committer())
        return {"order": placed.order}, 201 if placed.created else 200

    @blp.doc(security=SECURITY)
    @blp.arguments(OrderListQuery(), location="query")
    @blp.response(200, OrdersResponse)
    @blp.alt_response(403, schema=ErrorResponse)
    def get(self, args):
        """List orders, newest first"""
        query = OrderQuery(user_id=args.get("userId"), symbol=args.get("currency_symbol"),
                           side=args.get("order_type"), status=args.get("status"), limit=args["limit"],
                           before_id=args.get("before_id"))
        return {"orders": list_orders(query, current_principal(), service_context())}


@blp.route("/<int:order_id>")
class OrderById(MethodView):
    @blp.doc(security=SECURITY)
    @blp.response(200, OrderResponse)
    @blp.alt_response(404, schema=ErrorResponse)
    def get(self, order_id):
        """One order"""
        return {"order": get_order(order_id, current_principal(), service_context())}

    @blp.doc(security=SECURITY)
    @blp.response(202, OrderResponse, description="Cancel requested; the worker cancels it unless it fills first")
    @blp.alt_response(409, schema=ErrorResponse, description="ORDER_NOT_CANCELLABLE: already final")
    @blp.alt_response(404, schema=ErrorResponse)
    def delete(self, order_id):
        """Request a cancel"""
        result = request_cancel(RequestCancel(order_id, g.request_id), current_principal(), service_context())
        return {"order": result.order}
