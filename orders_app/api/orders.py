"""Orders: place (one or a batch), list, get, cancel (by id, by client_order_id, all)."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import ValidationError

from orders_app.api.base import (
    SECURITY,
    Blueprint,
    acting_user_id,
    current_principal,
    group_committer,
    service_context,
)
from orders_app.api.ratelimit import limit_order_batch, limit_order_placement
from orders_app.errors import DomainError, ValidationFailed, error_body, validation_failed
from orders_app.messages import (
    OrderQuery,
    PlaceOrder,
    Principal,
    RequestCancel,
    RequestCancelAll,
    RequestCancelByClientId,
)
from orders_app.schemas import (
    CancelAllQuery,
    CancelByClientIdQuery,
    ErrorResponse,
    OrderListQuery,
    OrderResponse,
    OrdersResponse,
    PlaceOrderRequest,
    PlaceOrdersRequest,
    PlaceOrdersResponse,
)
from orders_app.services.cancelling import request_cancel, request_cancel_all, request_cancel_by_client_id
from orders_app.services.placing import PlacedOrder, place_order, place_orders
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
        placed = place_order(_place_command(current_principal(), body), service_context(), group_committer())
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

    @blp.doc(security=SECURITY)
    @blp.arguments(CancelAllQuery(), location="query")
    @blp.response(202, OrdersResponse, description="Cancels requested for these open orders (those with none "
                                                    "pending); the worker cancels each unless it fills first")
    @blp.alt_response(400, schema=ErrorResponse, description="UNKNOWN_SYMBOL, VALIDATION_ERROR")
    @blp.alt_response(403, schema=ErrorResponse)
    @blp.alt_response(404, schema=ErrorResponse, description="admin: no such user")
    def delete(self, args):
        """Cancel all open orders, or all of one market"""
        principal = current_principal()
        command = RequestCancelAll(acting_user_id(principal, args.get("userId")), args.get("currency_symbol"),
                                   g.request_id)
        return {"orders": request_cancel_all(command, principal, service_context())}


@blp.route("/batch")
class OrdersBatch(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(PlaceOrdersRequest(), location="json")
    @blp.response(200, PlaceOrdersResponse, description="One result per order, in order: the status and body "
                                                         "POST /api/orders would have answered for it")
    @blp.alt_response(400, schema=ErrorResponse, description="VALIDATION_ERROR: not 1-20 orders")
    @blp.alt_response(429, schema=ErrorResponse, description="RATE_LIMITED: not even the first order fits; "
                                                              "see Retry-After")
    def post(self, body):
        """Place 1-20 orders at once, each accepted or refused on its own"""
        principal = current_principal()
        rate_limited = limit_order_batch(len(body["orders"]))
        commands = [refusal or _checked_place_command(principal, item)
                    for item, refusal in zip(body["orders"], rate_limited, strict=True)]
        outcomes = place_orders(commands, service_context(), group_committer())
        return {"results": [_batch_result(outcome) for outcome in outcomes]}


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


@blp.route("/by-client-id/<string:client_order_id>")
class OrderByClientId(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(CancelByClientIdQuery(), location="query")
    @blp.response(202, OrderResponse, description="Cancel requested; the worker cancels it unless it fills first")
    @blp.alt_response(400, schema=ErrorResponse, description="VALIDATION_ERROR: admin without userId")
    @blp.alt_response(403, schema=ErrorResponse)
    @blp.alt_response(404, schema=ErrorResponse)
    @blp.alt_response(409, schema=ErrorResponse, description="ORDER_NOT_CANCELLABLE: already final")
    def delete(self, args, client_order_id):
        """Request a cancel of the caller's order with this client_order_id"""
        principal = current_principal()
        command = RequestCancelByClientId(acting_user_id(principal, args.get("userId")), client_order_id,
                                          g.request_id)
        return {"order": request_cancel_by_client_id(command, principal, service_context()).order}


def _place_command(principal: Principal, body: dict) -> PlaceOrder:
    return PlaceOrder(
        user_id=acting_user_id(principal, body.get("userId")), side=body["order_type"],
        symbol=body["currency_symbol"], order_type=body["type"], time_in_force=body["time_in_force"],
        post_only=body["post_only"], price=body.get("price"), quantity=body.get("quantity"),
        quote_quantity=body.get("quote_quantity"), client_order_id=body.get("client_order_id"),
        request_id=g.request_id)


def _checked_place_command(principal: Principal, item) -> PlaceOrder | DomainError:
    """One order of a batch, loaded as POST /api/orders loads its body; its refusal if it would be refused."""
    if not isinstance(item, dict):
        return ValidationFailed("Each order must be a JSON object.")
    try:
        return _place_command(principal, PlaceOrderRequest().load(item))
    except ValidationError as error:
        return validation_failed(error.messages)
    except DomainError as error:
        return error


def _batch_result(outcome: PlacedOrder | BaseException) -> dict:
    if isinstance(outcome, PlacedOrder):
        return {"status": 201 if outcome.created else 200, "order": outcome.order}
    if isinstance(outcome, DomainError):
        return {"status": outcome.status, **error_body(outcome.code, outcome.message, outcome.field)}
    raise outcome  # the database went away: the whole request answers as one order would
