"""The order system's Flask application factory: config, extensions, blueprints, error handlers."""
from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, g, request, send_from_directory

from orders_app.config import Settings

if TYPE_CHECKING:
    from orders_app.bootstrap import Runtime

__version__ = "0.2.0"

log = logging.getLogger("orders_app.http")
RUNTIME_EXTENSION = "orders"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def create_app(config: dict | Settings | None = None, *, role: str = "api") -> Flask:
    """Build the app: HTTP only, around the object graph `bootstrap` builds. `config` is a Settings, or
    overrides of environment keys (tests); `role` is "api", "worker" or "cli" (only the API needs the admin
    token and connects to Kafka at once)."""
    import swagger_ui_bundle

    from orders_app.api import admin, balances, fills, health, market, orders, page
    from orders_app.api.base import Api
    from orders_app.bootstrap import bootstrap, engine_options
    from orders_app.cli import register_commands
    from orders_app.errors import register_error_handlers
    from orders_app.extensions import db
    from orders_app.logs import configure_logging
    from orders_app.metrics import observe_request
    from orders_app.request_body import BodyDeadlines, RequestBodyGuard

    settings = (config if isinstance(config, Settings)
                else Settings.from_env(config, needs_admin_token=(role == "api")))
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config.update(settings.as_flask_config())
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings.database_url, SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings, role),
        MAX_CONTENT_LENGTH=settings.request_body_bytes_max,
        API_TITLE="Order system", API_VERSION="1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json", OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
    )
    db.init_app(app)
    api = Api(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "the admin token, or a user's API key"}}}})
    for blueprint in (orders.blp, fills.blp, balances.blp, market.blp, admin.blp, health.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(page.blp)
    register_error_handlers(app)
    register_commands(app)

    with app.app_context():
        app.extensions[RUNTIME_EXTENSION] = bootstrap(settings, role=role, engine=db.engine)

    app.wsgi_app = RequestBodyGuard(  # type: ignore[method-assign]  # Flask's documented way to add middleware
        app.wsgi_app, settings.request_body_read_timeout_ms / 1000, settings.request_drain_bytes_max, BodyDeadlines())

    assets_dir = Path(swagger_ui_bundle.swagger_ui_path)

    @app.get("/docs/assets/<path:filename>")
    def swagger_ui_assets(filename: str):
        return send_from_directory(assets_dir, filename, max_age=3600)

    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
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


def runtime_of(app: Flask) -> "Runtime":
    """The object graph `create_app` built for `app` (its service context, committer, publisher)."""
    return app.extensions[RUNTIME_EXTENSION]
