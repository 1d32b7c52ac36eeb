"""The architecture stays visible: views import no SQL, the matching engine imports no I/O."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "orders_app"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, set[str]]:
    found = {}
    for path in (PACKAGE / folder).rglob("*.py"):
        bad = {name for name in _imports(path) if name.split(".")[0] in forbidden or name in forbidden}
        if bad:
            found[path.name] = bad
    return found


def test_views_import_no_sqlalchemy_or_models():
    assert _offenders("api", ("sqlalchemy", "orders_app.models", "orders_app.repositories")) == {}


def test_only_the_unit_of_work_commits():
    committing = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                  if "session.commit()" in p.read_text()]
    assert committing == ["unit_of_work.py"]


def test_views_reach_the_database_only_through_services():
    assert _offenders("api", ("orders_app.unit_of_work", "orders_app.extensions")) == {}


def test_services_know_nothing_of_http():
    assert _offenders("services", ("flask", "werkzeug", "webargs", "flask_smorest", "orders_app.api")) == {}


def test_messaging_never_calls_the_services():
    assert _offenders("messaging", ("orders_app.services", "orders_app.api")) == {}


def test_only_the_composition_root_builds_the_service_context():
    building = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                if "ServiceContext(" in p.read_text() and p.name != "__init__.py"]
    assert building == ["bootstrap.py"]


def test_no_module_fetches_its_dependencies_from_the_flask_registry_by_string_key():
    fetching = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                if "extensions[" in p.read_text() or "extensions.get(" in p.read_text()]
    assert fetching == ["__init__.py"]  # runtime_of(app), the one accessor
