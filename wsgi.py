"""gunicorn entrypoint: `gunicorn wsgi:app` (settings in gunicorn.conf.py)."""
from orders_app import create_app

app = create_app()
