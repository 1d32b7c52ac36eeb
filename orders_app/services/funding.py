"""Admin use cases: create users (and their API keys), deposit, withdraw."""
from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal

from orders_app import money
from orders_app.errors import (
    InsufficientFunds,
    NotFound,
    UnknownSymbol,
    ValidationFailed,
    present,
)
from orders_app.messages import Fund
from orders_app.repositories import accounts, users
from orders_app.services import ServiceContext, utc_now
from orders_app.services.views import balance_view
from orders_app.unit_of_work import run_transaction

ASSET_AMOUNT_MAX = Decimal("1000000000000")
API_KEY_BYTES = 32


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return "ok_" + secrets.token_urlsafe(API_KEY_BYTES)


def create_user(name: str | None, ctx: ServiceContext) -> tuple[dict, str]:
    api_key = new_api_key()
    with ctx.uow() as uow:
        user = users.add(uow.session, name)
        users.add_api_key(uow.session, user.id, hash_api_key(api_key))
        uow.commit()
        return {"id": user.id, "name": user.name}, api_key


def rotate_api_key(user_id: int, ctx: ServiceContext) -> str:
    api_key = new_api_key()
    with ctx.uow() as uow:
        if not users.exists(uow.session, user_id):
            raise NotFound(f"User {user_id} does not exist.", "userId")
        now = utc_now()
        users.revoke_api_keys(uow.session, user_id, now)
        users.bump_key_generation(uow.session, now)
        users.add_api_key(uow.session, user_id, hash_api_key(api_key))
        uow.commit()
    return api_key


def parse_asset_amount(asset: str, raw: object, ctx: ServiceContext, field: str = "amount") -> Decimal:
    scale = ctx.asset_scale(asset)
    if scale is None:
        raise UnknownSymbol(f"Unknown asset {asset!r}.", "currency_symbol")
    try:
        return money.parse_positive(raw, step=money.scale_step(scale), maximum=ASSET_AMOUNT_MAX)
    except money.AmountError as error:
        raise ValidationFailed(f"{field} {error}.", field) from None


def fund(command: Fund, ctx: ServiceContext) -> dict:
    """Deposit or withdraw `amount` of `asset`; a withdrawal never takes more than is available."""
    def attempt() -> dict:
        with ctx.uow() as uow:
            session = uow.session
            if not users.exists(session, command.user_id):
                raise NotFound(f"User {command.user_id} does not exist.", "userId")
            if command.direction == "deposit":
                accounts.credit(session, command.user_id, command.asset, command.amount, "deposit")
            elif not accounts.debit(session, command.user_id, command.asset, command.amount, "withdrawal"):
                raise InsufficientFunds(
                    f"Available {command.asset} is less than {money.format_amount(command.amount)}.", "amount")
            view = balance_view(present(accounts.get(session, command.user_id, command.asset),
                                        "the account was credited or debited above"))
            uow.commit()
            return view
    return run_transaction(attempt)
