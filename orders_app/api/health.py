"""Liveness and readiness."""
from __future__ import annotations

from flask import Response
from flask.views import MethodView

from orders_app.api.base import Blueprint, service_context
from orders_app.errors import ServiceUnavailable
from orders_app.metrics import exposition
from orders_app.schemas import ErrorResponse, StatusResponse
from orders_app.services.health import Readiness

blp = Blueprint("health", __name__, url_prefix="", description="Health")
_readiness = Readiness()  # one per process: its answer is shared by the process's threads


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, StatusResponse)
    def get(self):
        """The process is up"""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, StatusResponse)
    @blp.alt_response(503, schema=ErrorResponse)
    def get(self):
        """The database (with a current schema) and Kafka answer"""
        problems = _readiness.problems(service_context())
        if problems:
            raise ServiceUnavailable("Not ready: " + "; ".join(problems) + ".")
        return {"status": "ok"}


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.response(200, description="Prometheus text format")
    def get(self):
        """Prometheus metrics of the API processes"""
        body, content_type = exposition()
        return Response(body, content_type=content_type)
