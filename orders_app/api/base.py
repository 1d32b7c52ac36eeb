"""Every HTTP convention of the project in one place: the JSON parser, the Api/Blueprint subclasses,
authentication, and access to the service context.

- Bodies are parsed with `parse_float=Decimal` (never float); NaN/Infinity are rejected; a body that is
  not `application/json` is 415; a non-object body or malformed JSON is 400.
- Validation errors are 400 (webargs' default 422 is not used).
- `Authorization: Bearer <token>`: the admin token, or a user's API key (looked up by SHA-256, cached per
  process until a key rotation anywhere, noticed within about a second: services/api_keys.py).
"""
from __future__ import annotations

import decimal
import hashlib
import hmac
import json
from decimal import Decimal

import flask_smorest
from flask import current_app, g, request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from orders_app import runtime_of
from orders_app.errors import Forbidden, Unauthorized, ValidationFailed, present
from orders_app.messages import Principal
from orders_app.money import CANONICAL_DECIMAL_PATTERN, DecimalString
from orders_app.schemas import ErrorResponse
from orders_app.services import ServiceContext
from orders_app.services.api_keys import ApiKeyCache
from orders_app.services.group_commit import GroupCommitter

JSON_DEPTH_MAX = 32


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json_body(raw: bytes):
    """Decode a request body: exact decimals, no NaN/Infinity, an object at the top."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ValidationFailed("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise ValidationFailed("The JSON body is nested too deeply.") from None
    except decimal.DecimalException:  # an exponent beyond Decimal's own limits: not a ValueError
        raise ValidationFailed("A number in the request body cannot be held exactly.") from None
    except ValueError as error:  # JSONDecodeError, our constant rejection, over-long integers
        raise ValidationFailed(f"The request body is not valid JSON: {error}.") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The JSON body must be an object.")
    return data


class OrdersParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req):
        raw = req.get_data(cache=True)
        if req.content_length is None and len(raw) >= req.max_content_length and req.input_stream.read(1):
            # A chunked body: werkzeug stops reading at the limit without raising, which left a truncated
            # body to fail as "not valid JSON" (400) instead of being refused as too large.
            raise RequestEntityTooLarge()
        if not is_json_request(req):
            if not raw:
                return core.missing
            raise UnsupportedMediaType()
        if not raw.strip():
            return core.missing
        return parse_json_body(raw)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = OrdersParser()


class Api(flask_smorest.Api):
    """flask-smorest Api with the project's error schema in the document: every operation's `default`
    response (and the validation error responses flask-smorest documents) is the API's error shape."""

    ERROR_SCHEMA = ErrorResponse

    def _init_spec(self, **kwargs):
        super()._init_spec(**kwargs)
        self.ma_plugin.converter.add_attribute_function(_decimal_string_properties)


def _decimal_string_properties(_converter, field, **_kwargs) -> dict:
    """Amounts in the document: canonical decimal strings (requests also take JSON numbers and trailing
    zeros), so a schema check of any response proves the output format the API promises."""
    if isinstance(field, DecimalString):
        return {"type": "string", "pattern": CANONICAL_DECIMAL_PATTERN,
                "description": field.metadata.get("description", "an exact decimal, as a string")}
    return {}


# --- the service context -----------------------------------------------------------------------------

def service_context() -> ServiceContext:
    return runtime_of(current_app).ctx


def group_committer() -> GroupCommitter | None:
    """The process's group committer (None when PLACE_BATCH_ORDERS_MAX=1: one transaction per order)."""
    return runtime_of(current_app).committer


# --- authentication ----------------------------------------------------------------------------------

_api_key_cache = ApiKeyCache()


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send Authorization: Bearer <api key>.")
    return token.strip()


def current_principal() -> Principal:
    """The authenticated caller; 401 when the key is missing or unknown."""
    cached = g.get("principal")
    if cached is not None:
        return cached
    token = _bearer_token()
    ctx = service_context()
    principal: Principal | None
    if hmac.compare_digest(token.encode(), ctx.settings.admin_token.encode()):
        principal = Principal(user_id=None, is_admin=True)
    else:
        principal = _api_key_cache.principal(hashlib.sha256(token.encode()).hexdigest(), ctx)
        if principal is None:
            raise Unauthorized("Unknown API key.")
    g.principal = principal
    return principal


def require_admin() -> Principal:
    principal = current_principal()
    if not principal.is_admin:
        raise Forbidden("This endpoint needs the admin token.")
    return principal


def acting_user_id(principal: Principal, user_id: int | None) -> int:
    """The user a request acts for: the caller's own id, or (admin only) the given one."""
    if principal.is_admin:
        if user_id is None:
            raise ValidationFailed("userId is required when acting with the admin token.", "userId")
        return user_id
    if user_id is not None and user_id != principal.user_id:
        raise Forbidden("You may only act on your own user.", "userId")
    return present(principal.user_id, "a principal that is not the admin is a user")


SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
