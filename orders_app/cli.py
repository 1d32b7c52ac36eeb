"""Operator commands, driving the same services as the API (same validation, exact decimals):

    python -m orders_app.cli create-user [--name NAME]      # prints the API key, once
    python -m orders_app.cli deposit USER_ID ASSET AMOUNT
    python -m orders_app.cli withdraw USER_ID ASSET AMOUNT
    python -m orders_app.cli list-markets
    python -m orders_app.cli add-market SYMBOL [--price-step D] [--quantity-step D] [--min-quantity D] ...
    python -m orders_app.cli rotate-key USER_ID              # revokes the old key, prints the new one
    python -m orders_app.cli reconcile                       # exit 1 with a report on any breach
    python -m orders_app.cli prune-outbox [--older-than-hours 168]   # delete published, applied rows
    python -m orders_app.cli prune-outbox --older-than-minutes 10    # a finer cut-off, for frequent pruning
    python -m orders_app.cli migrate                         # alembic upgrade head (also when installed)

Installed, the same commands are `orders-cli <command>`; also `flask --app orders_app.cli <command>`. They
read the same settings as the API (no admin token needed) and never touch Kafka: matching picks deposits up
from the database, new markets within a second. Results are JSON on stdout; an error is one line on stderr and
exit status 1.
"""
from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup

from orders_app import money, runtime_of
from orders_app.errors import DomainError

STEP_VALUE_MAX = Decimal("1000000000000")

commands = AppGroup("orders", help="Operator commands of the order system.")


def _ctx():
    return runtime_of(current_app).ctx


def _plain(value):
    if isinstance(value, Decimal):
        return money.format_amount(value)  # as the API prints amounts: "10.5", never "10.500000000000000000"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=_plain))


def _fail(error: DomainError) -> click.ClickException:
    field = f" ({error.field})" if error.field else ""
    return click.ClickException(f"{error.code}: {error.message}{field}")


def _decimal_option(name: str, raw: str | None) -> Decimal | None:
    if raw is None:
        return None
    try:
        return money.parse_positive(raw, step=money.scale_step(money.DB_SCALE), maximum=STEP_VALUE_MAX)
    except money.AmountError as error:
        raise click.BadParameter(str(error), param_hint=f"--{name.replace('_', '-')}") from None


@commands.command("create-user")
@click.option("--name", default=None, help="A label for the user (optional).")
def create_user_command(name: str | None) -> None:
    """Create a user and print its API key (shown once: only its hash is stored)."""
    from orders_app.services.funding import create_user
    try:
        user, api_key = create_user(name, _ctx())
    except DomainError as error:
        raise _fail(error) from None
    _echo_json({"user": user, "api_key": api_key})
    click.echo("The API key is shown once; store it now.", err=True)


def _fund(user_id: int, asset: str, amount: str, direction: str) -> None:
    from orders_app.messages import Fund
    from orders_app.services.funding import fund, parse_asset_amount
    ctx = _ctx()
    try:
        value = parse_asset_amount(asset, amount, ctx)
        _echo_json({"balance": fund(Fund(user_id, asset, value, direction), ctx)})
    except DomainError as error:
        raise _fail(error) from None


def _funding_command(name: str, direction: str, help_text: str):
    @commands.command(name, help=help_text)
    @click.argument("user_id", type=click.IntRange(min=1))
    @click.argument("asset")
    @click.argument("amount")
    def command(user_id: int, asset: str, amount: str) -> None:
        _fund(user_id, asset, amount, direction)
    return command


deposit_command = _funding_command(
    "deposit", "deposit", "Credit USER_ID's available ASSET by AMOUNT (an exact decimal, on the asset's scale).")
withdraw_command = _funding_command(
    "withdraw", "withdrawal", "Debit USER_ID's available ASSET by AMOUNT; refused if more than is available.")


@commands.command("list-markets")
def list_markets_command() -> None:
    """Every enabled market (trading or halted) with its steps, limits and fee rates; `symbol` is the base
    asset here, as version 1 printed it, and `name` the market's name."""
    ctx = _ctx()
    ctx.reload_markets(force=True)
    _echo_json({"markets": [{
        "id": spec.id, "name": spec.name, "symbol": spec.symbol, "quote_asset": spec.quote_asset,
        "status": spec.status, **{field: money.format_amount(getattr(spec, field)) for field in (
            "price_step", "quantity_step", "min_quantity", "max_price", "max_quantity", "min_notional",
            "maker_fee_rate", "taker_fee_rate")}} for spec in ctx.markets.values()]})


@commands.command("add-market")
@click.argument("base")
@click.argument("quote", required=False)
@click.option("--price-step", default=None, help="Default 0.000001.")
@click.option("--quantity-step", default=None, help="Default 0.00000001 (at most the base asset's decimals).")
@click.option("--min-quantity", default=None, help="Default the quantity step (at least 0.00000001).")
@click.option("--max-price", default=None, help="Default 1000000000.")
@click.option("--max-quantity", default=None, help="Default 1000000000.")
@click.option("--min-notional", default=None, help="Smallest price x quantity of a limit order. Default 0 (none).")
@click.option("--maker-fee-rate", default=None, help="Default 0; at most 0.1.")
@click.option("--taker-fee-rate", default=None, help="Default 0; at most 0.1.")
def add_market_command(base: str, quote: str | None, **options: str | None) -> None:
    """Add the market BASE-QUOTE (QUOTE defaults to QUOTE_CURRENCY; a new BASE asset gets 8 decimals);
    API and workers pick it up within a second."""
    from orders_app.services.markets import add_market
    terms = {name: _decimal_option(name, raw) for name, raw in options.items()}
    ctx = _ctx()
    try:
        given: dict[str, Any] = {name: value for name, value in terms.items() if value is not None}
        market_id = add_market(base, ctx, quote, **given)
    except DomainError as error:
        raise _fail(error) from None
    _echo_json({"market": {"id": market_id, "name": ctx.market_by_id(market_id).name, "symbol": base}})


@commands.command("rotate-key")
@click.argument("user_id", type=click.IntRange(min=1))
def rotate_key_command(user_id: int) -> None:
    """Revoke USER_ID's API keys and print a new one (every API process refuses the old one within ~1 s)."""
    from orders_app.services.funding import rotate_api_key
    try:
        api_key = rotate_api_key(user_id, _ctx())
    except DomainError as error:
        raise _fail(error) from None
    _echo_json({"user_id": user_id, "api_key": api_key})
    click.echo("The API key is shown once; store it now.", err=True)


@commands.command("reconcile")
def reconcile_command() -> None:
    """Check conservation, ledger, holds and fills in one snapshot; exit 1 listing any breach."""
    from orders_app.reconcile import reconcile
    with _ctx().uow() as uow:
        report = reconcile(uow.session)
    click.echo(report.render())
    if not report.ok:
        sys.exit(1)


@commands.command("prune-outbox")
@click.option("--older-than-hours", type=click.IntRange(min=1, max=24 * 365 * 100),
              help="Keep rows published within this many hours.  [default: 168]")
@click.option("--older-than-minutes", type=click.IntRange(min=1, max=60 * 24 * 365 * 100),
              help="Keep rows published within this many minutes instead: for an outbox pruned every few "
                   "minutes under heavy load.")
def prune_outbox_command(older_than_hours: int | None, older_than_minutes: int | None) -> None:
    """Delete outbox rows published before the cut-off and, for market commands, applied by the worker."""
    from datetime import timedelta

    from orders_app.services import utc_now
    from orders_app.services.retention import prune_outbox
    if older_than_hours is not None and older_than_minutes is not None:
        raise click.UsageError("give --older-than-hours or --older-than-minutes, not both")
    keep = timedelta(minutes=older_than_minutes) if older_than_minutes else timedelta(hours=older_than_hours or 168)
    published_before = utc_now() - keep
    deleted = prune_outbox(_ctx(), published_before)
    _echo_json({"deleted_rows": deleted, "published_before": published_before.isoformat(timespec="milliseconds")})


def register_commands(app) -> None:
    """`flask <command>` for every operator command (no group prefix)."""
    for command in commands.commands.values():
        app.cli.add_command(command)


def make_app():
    """The app for operator commands: no admin token needed, no Kafka connection (flask finds this)."""
    from orders_app import create_app
    from orders_app.config import ConfigError
    try:
        return create_app(role="cli")
    except ConfigError as error:
        raise click.ClickException(f"refusing to start: {error}") from None


cli = FlaskGroup(name="orders_app.cli", create_app=make_app, add_default_commands=False,
                 help="Operator commands of the order system.")
for _command in commands.commands.values():  # listed by --help without building the app
    cli.add_command(_command)


@cli.command("migrate", with_appcontext=False)
def migrate_command() -> None:
    """Upgrade the database (DATABASE_URL) to this code's schema: `alembic upgrade head`."""
    from alembic import command

    from orders_app.schema_version import alembic_config
    command.upgrade(alembic_config(), "head")

if __name__ == "__main__":
    cli()
