"""The order system's Flask application factory: config, extensions, blueprints, error handlers."""
from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path

from flask import Flask, g, request, send_from_directory
from sqlalchemy.orm import sessionmaker

from orders_app.config import Settings

__version__ = "0.2.0"

log = logging.getLogger("orders_app.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def create_app(config: dict | Settings | None = None, *, role: str = "api") -> Flask:
    """Build the app. `config` is a Settings, or overrides of environment keys (tests); `role` is "api",
    "worker" or "cli" (only the API needs the admin token and connects to Kafka at once)."""
    import swagger_ui_bundle

    from orders_app.api import admin, balances, health, market, orders, page
    from orders_app.cli import register_commands
    from orders_app.errors import register_error_handlers
    from orders_app.extensions import api, db, publisher
    from orders_app.logs import configure_logging
    from orders_app.metrics import observe_request
    from orders_app.repositories.markets import load_asset_scales, load_markets
    from orders_app.schema_version import check_schema_current
    from orders_app.services import ServiceContext
    from orders_app.services.group_commit import GroupCommitter

    settings = (config if isinstance(config, Settings)
                else Settings.from_env(config, needs_admin_token=(role == "api")))
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config.update(settings.as_flask_config())
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_size": settings.db_pool_size, "max_overflow": settings.db_pool_size,
            "pool_timeout": settings.db_pool_timeout_s,
            "pool_pre_ping": True, "pool_recycle": 3600, "isolation_level": "READ COMMITTED",
            "connect_args": {"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30}},
        MAX_CONTENT_LENGTH=settings.request_body_bytes_max,
        API_TITLE="Order system", API_VERSION="1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json", OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
    )
    db.init_app(app)
    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "the admin token, or a user's API key"}}}})
    for blueprint in (orders.blp, balances.blp, market.blp, admin.blp, health.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(page.blp)
    register_error_handlers(app)
    register_commands(app)

    with app.app_context():
        if settings.check_schema_on_start:
            check_schema_current(db.engine)
        session_factory = sessionmaker(bind=db.engine, expire_on_commit=False)
        with session_factory() as session:
            markets, scales = load_markets(session), load_asset_scales(session)
        ctx = ServiceContext(settings, session_factory, markets, scales)
        app.extensions["orders_service_context"] = ctx
        if role == "api" and settings.place_batch_orders_max > 1:
            app.extensions["orders_group_committer"] = GroupCommitter(ctx, settings.place_batch_orders_max)
        if settings.outbox_publisher == "api":
            publisher.init_app(app, settings, session_factory, connect_now=(role == "api"))

    assets_dir = Path(swagger_ui_bundle.swagger_ui_path)

    @app.get("/docs/assets/<path:filename>")
    def swagger_ui_assets(filename: str):
        return send_from_directory(assets_dir, filename, max_age=3600)

    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        elapsed_s = time.perf_counter() - g.get("started", time.perf_counter())
        elapsed_ms = elapsed_s * 1000
        observe_request(request.method, request.url_rule.rule if request.url_rule else None,
                        response.status_code, elapsed_s)
        log.info("request", extra={"request_id": g.get("request_id"), "method": request.method,
                                   "path": request.path, "status": response.status_code,
                                   "duration_ms": round(elapsed_ms, 2)})
        return response

    return app
