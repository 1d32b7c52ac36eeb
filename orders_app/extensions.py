"""The Flask extension of the HTTP side: `db` (Flask-SQLAlchemy) owns the API process's engine and pool,
built from `bootstrap.engine_options` (one per process: gunicorn forks before any connection is made)."""
from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

from orders_app.models import Base

db = SQLAlchemy(model_class=Base, disable_autonaming=True)
