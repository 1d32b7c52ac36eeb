"""Process-wide extension objects, each bound to an app with `init_app(app)`.

`db` owns the engine and pool (one per process: gunicorn forks before any connection is made);
`api` is the flask-smorest `Api` that builds `/openapi.json` from the marshmallow schemas;
`publisher` hands committed outbox rows to Kafka from a background thread.
"""
from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

from orders_app.api.base import Api
from orders_app.messaging.publisher import OutboxPublisher
from orders_app.models import Base

db = SQLAlchemy(model_class=Base, disable_autonaming=True)
api = Api()
publisher = OutboxPublisher()
