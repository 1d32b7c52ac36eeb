# One image for the API (gunicorn), the matching worker (orders-worker), the migration (alembic) and the
# operator CLI (orders-cli). Runtime dependencies only. Used by docker-compose.yml; not built on our machines.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
# mysqlclient (the C database driver) is compiled here: its build tools and headers leave in the same layer,
# the client library it links (libmariadb3) stays.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config libmariadb-dev libmariadb3 \
    && pip install --no-cache-dir -r requirements.txt \
    && apt-get purge -y --auto-remove gcc libc6-dev pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 orders && chown -R orders /app
USER orders
EXPOSE 3000 9100
CMD ["gunicorn", "wsgi:app"]
