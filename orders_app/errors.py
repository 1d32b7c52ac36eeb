"""Typed errors and the one place that renders them as the API's one JSON error shape.

    {"error": {"code": "UPPER_SNAKE", "message": "human sentence", "field": "name-if-any"}}

Services raise `DomainError` subclasses; views never catch them. Flask/werkzeug HTTP errors (404, 405,
413, 415) and webargs' 422 are re-rendered in the same shape; an unexpected exception is logged with the
request id and answered with a generic 500 that leaks nothing. A database that cannot be reached (down,
restarting, connection lost mid-request) is `503 SERVICE_UNAVAILABLE` with `Retry-After`, never a 500: the
transaction was rolled back (or, if the connection died during COMMIT, is wholly applied or wholly not).
"""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    code = "ERROR"
    status = 400
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    code, status = "VALIDATION_ERROR", 400


class InsufficientFunds(DomainError):
    code, status = "INSUFFICIENT_FUNDS", 400


class UnknownSymbol(DomainError):
    code, status = "UNKNOWN_SYMBOL", 400


class TooManyOpenOrders(DomainError):
    code, status = "TOO_MANY_OPEN_ORDERS", 400


class Unauthorized(DomainError):
    code, status = "UNAUTHORIZED", 401


class Forbidden(DomainError):
    code, status = "FORBIDDEN", 403


class NotFound(DomainError):
    code, status = "NOT_FOUND", 404


class OrderNotCancellable(DomainError):
    code, status = "ORDER_NOT_CANCELLABLE", 409


class AlreadyExists(DomainError):
    code, status = "ALREADY_EXISTS", 409


class MarketHalted(DomainError):
    code, status = "MARKET_HALTED", 409


RETRY_AFTER_S = 1  # the Retry-After of every 503: outages and lock conflicts are short or need polling


class ServiceUnavailable(DomainError):
    code, status, retry_after_s = "SERVICE_UNAVAILABLE", 503, RETRY_AFTER_S


class OrderStatusUnknown(DomainError):
    """The service cannot tell whether the order was recorded (the database went away during COMMIT, or its
    batch outlived the request's wait). A retry with the same client_order_id is always safe: it answers the
    order if it was recorded, and places it if not."""
    code, status, retry_after_s = "ORDER_STATUS_UNKNOWN", 503, RETRY_AFTER_S


class CommitOutcomeUnknown(Exception):
    """The connection failed during COMMIT: the transaction may or may not have been applied."""


class RateLimited(DomainError):
    code, status = "RATE_LIMITED", 429

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s
# MySQL/MariaDB client and server codes that mean "no usable connection", not "bad statement":
# 2002/2003 cannot connect, 2006 server gone away, 2013 lost connection during a query, 2055 lost
# connection (system error), 1053 server shutdown in progress, 1927 connection killed, 1040 too many
# connections, 0 pymysql's InterfaceError on a closed socket (mysqlclient says 2006 there). Both drivers
# put the code first in `args`.
DATABASE_UNREACHABLE_CODES = frozenset({0, 1040, 1053, 1927, 2002, 2003, 2006, 2013, 2055})


# 1044 database, 1142 table, 1227 privilege (e.g. PROCESS) access denied
ACCESS_DENIED_CODES = frozenset({1044, 1142, 1227})


def database_error_code(error: Exception) -> int | None:
    """The server's or client's error number of a SQLAlchemy error, if it carries one."""
    orig = getattr(error, "orig", None)
    code = orig.args[0] if orig is not None and orig.args else None
    return code if isinstance(code, int) else None


def is_database_unreachable(error: Exception) -> bool:
    """True when a SQLAlchemy error means the database cannot be reached (a retry later may succeed)."""
    if getattr(error, "connection_invalidated", False):
        return True
    return database_error_code(error) in DATABASE_UNREACHABLE_CODES


# One InvariantViolation for the whole system: a programmer error or corrupt data aborts the transaction,
# never committed. Unlike `assert`, `invariant` survives `python -O`. It lives in the pure engine's package
# (which may import nothing of ours) and is re-exported here for everything else.
from orders_app.matching.invariants import InvariantViolation, invariant, present  # noqa: E402,F401

_HTTP_CODES = {
    400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}
_HTTP_MESSAGES = {
    404: "No such resource.",
    405: "This method is not allowed on this resource.",
    408: "The request body did not arrive in time; the connection is closed.",
    413: "The request body is larger than the 64 KiB limit.",
    415: "The request body must be JSON with Content-Type: application/json.",
}


def error_body(code: str, message: str, field: str | None = None) -> dict:
    error = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


def first_validation_message(messages) -> tuple[str | None, str]:
    """Flatten marshmallow/webargs messages to (field, sentence) for the first problem."""
    if isinstance(messages, dict):
        # webargs nests by location: {"json": {"price": [...]}}
        if len(messages) == 1 and next(iter(messages)) in ("json", "query", "view_args", "path"):
            messages = next(iter(messages.values()))
    if isinstance(messages, dict) and messages:
        field, detail = sorted(messages.items(), key=lambda kv: str(kv[0]))[0]
        inner_field, sentence = first_validation_message(detail)
        name = str(field) if field != "_schema" else None
        if inner_field and name:
            name = f"{name}.{inner_field}"
        return name or inner_field, sentence
    if isinstance(messages, (list, tuple)) and messages:
        return first_validation_message(messages[0])
    return None, str(messages) if messages else "The request is invalid."


def _validation_sentence(field: str | None, sentence: str) -> str:
    if field and sentence == "Missing data for required field.":
        return f"{field} is required."
    if field and sentence == "Unknown field.":
        return f"{field} is not a known field."
    return sentence


def validation_failed(messages) -> ValidationFailed:
    """marshmallow/webargs messages as the one VALIDATION_ERROR they render as (the first problem)."""
    field, sentence = first_validation_message(messages)
    return ValidationFailed(_validation_sentence(field, sentence), field)


def register_error_handlers(app: Flask) -> None:
    def render(status: int, code: str, message: str, field: str | None = None, retry_after_s: int | None = None):
        response = jsonify(error_body(code, message, field))
        response.status_code = status
        if retry_after_s is not None:
            response.headers["Retry-After"] = str(retry_after_s)
        return response

    @app.errorhandler(DomainError)
    def on_domain_error(error: DomainError):
        return render(error.status, error.code, error.message, error.field, error.retry_after_s)

    @app.errorhandler(ValidationError)
    def on_validation_error(error: ValidationError):
        return on_domain_error(validation_failed(error.messages))

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        if status == 422 or "messages" in data:
            return on_domain_error(validation_failed(data.get("messages")))
        code = _HTTP_CODES.get(status, "ERROR" if status < 500 else "INTERNAL_ERROR")
        message = _HTTP_MESSAGES.get(status) or error.description or "Request failed."
        response = render(status, code, message, retry_after_s=RETRY_AFTER_S if status == 503 else None)
        valid_methods = getattr(error, "valid_methods", None)  # a MethodNotAllowed's
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(CommitOutcomeUnknown)
    def on_commit_outcome_unknown(error: CommitOutcomeUnknown):
        log.warning("commit outcome unknown: %s", error.__cause__, extra={"request_id": g.get("request_id")})
        return render(503, "SERVICE_UNAVAILABLE", "The database went away while this change was being committed: "
                      "it may or may not have been applied. Check before repeating it.", retry_after_s=RETRY_AFTER_S)

    @app.errorhandler(SQLAlchemyTimeoutError)
    def on_pool_exhausted(error: SQLAlchemyTimeoutError):
        log.warning("no database connection free: %s", error, extra={"request_id": g.get("request_id")})
        return render(503, "SERVICE_UNAVAILABLE", "The service is busy; try again shortly.",
                      retry_after_s=RETRY_AFTER_S)

    @app.errorhandler(OperationalError)
    def on_database_unavailable(error: OperationalError):
        log.warning("database unavailable: %s", error.orig, extra={"request_id": g.get("request_id")})
        return render(503, "SERVICE_UNAVAILABLE", "The database is unavailable; try again shortly.",
                          retry_after_s=RETRY_AFTER_S)

    @app.errorhandler(DBAPIError)
    def on_database_error(error: DBAPIError):
        if is_database_unreachable(error):
            log.warning("database unreachable: %s", error.orig, extra={"request_id": g.get("request_id")})
            return render(503, "SERVICE_UNAVAILABLE", "The database is unavailable; try again shortly.",
                          retry_after_s=RETRY_AFTER_S)
        log.exception("database error", extra={"request_id": g.get("request_id")})
        return render(500, "INTERNAL_ERROR", "Something went wrong on our side; it has been logged.")

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception):
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return render(500, "INTERNAL_ERROR", "Something went wrong on our side; it has been logged.")
