"""docker-compose.yml and the Dockerfile cannot run here (no Docker): check what can be checked without it."""
from __future__ import annotations

import re

import yaml

from orders_app.config import ROOT_DIR

APP_SERVICES = ("migrate", "api", "worker", "stream")


def _compose() -> dict:
    return yaml.safe_load((ROOT_DIR / "docker-compose.yml").read_text())


def _documented_settings() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT_DIR / ".env.example").read_text(), re.M))


def test_compose_has_mysql_8_kafka_in_kraft_mode_a_migration_the_api_and_the_worker():
    services = _compose()["services"]
    assert set(services) == {"mysql", "kafka", *APP_SERVICES}
    assert services["mysql"]["image"].startswith("mysql:8")
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft: no ZooKeeper service
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["api"]["command"][0] == "gunicorn" and services["worker"]["command"] == ["python", "consumer.py"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["mysql"]["condition"] == "service_healthy"


def test_compose_wires_the_apps_by_documented_environment_only():
    services = _compose()["services"]
    documented = _documented_settings()
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ADMIN_TOKEN"} <= set(environment)
        assert set(environment) <= documented, set(environment) - documented
        assert "@mysql:3306/" in environment["DATABASE_URL"]
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert services["worker"]["environment"]["WORKER_METRICS_HOST"] == "0.0.0.0"
    assert services["api"]["stop_grace_period"] and services["worker"]["stop_grace_period"]


def test_dockerfile_installs_the_pinned_requirements_and_serves_the_api():
    dockerfile = (ROOT_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile  # runtime only
    assert "requirements-dev" not in dockerfile
    assert 'CMD ["gunicorn", "wsgi:app"]' in dockerfile
    # mysqlclient is compiled in the image; only the client library it links stays in it
    purged = re.search(r"apt-get purge -y --auto-remove ([^\\&]+)", dockerfile)
    assert purged and {"gcc", "pkg-config", "libmariadb-dev"} <= set(purged.group(1).split())
    assert "libmariadb3" in dockerfile and "libmariadb3" not in purged.group(1)
    ignored = (ROOT_DIR / ".dockerignore").read_text().split()
    assert {".venv", ".devstack", ".env"} <= set(ignored)  # no local secrets or stacks in the image


def test_compose_has_no_default_secret_every_password_and_token_must_be_given():
    text = (ROOT_DIR / "docker-compose.yml").read_text()
    secrets = set(re.findall(r"\$\{([A-Z0-9_]*(?:PASSWORD|TOKEN|SECRET)[A-Z0-9_]*)", text))
    assert {"MYSQL_PASSWORD", "ADMIN_TOKEN"} <= secrets
    for name in secrets:
        uses = re.findall(r"\$\{" + name + r"(:?[-?+=]?)", text)
        assert uses and set(uses) == {":?"}, f"{name} must be required (${{{name}:?...}}), found {uses}"
    services = _compose()["services"]
    for name in APP_SERVICES:
        assert "${MYSQL_PASSWORD:?" in services[name]["environment"]["DATABASE_URL"]
    mysql = services["mysql"]["environment"]
    assert mysql.get("MYSQL_RANDOM_ROOT_PASSWORD") == "yes" and "MYSQL_ROOT_PASSWORD" not in mysql


def test_every_long_running_service_restarts_and_has_a_healthcheck():
    services = yaml.safe_load((ROOT_DIR / "docker-compose.yml").read_text())["services"]
    for name in ("api", "worker", "stream"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
