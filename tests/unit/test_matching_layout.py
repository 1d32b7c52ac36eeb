"""The matching engine stays pure: no web, database, clock, randomness or I/O imports."""
import ast
import pathlib

import orders_app.matching

MATCHING_DIR = pathlib.Path(orders_app.matching.__file__).parent
FORBIDDEN_MODULES = {"flask", "sqlalchemy", "time", "random", "datetime", "decimal", "logging", "os", "socket",
                     "threading", "kafka", "pymysql", "io", "secrets", "uuid"}


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            yield "orders_app." + (node.module or "")  # reaches out of matching/


def test_matching_package_imports_no_io_clock_or_randomness():
    sources = sorted(MATCHING_DIR.glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "book.py", "matcher.py"}
    for path in sources:
        for module in imported_modules(path):
            assert module.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {module}"


def test_matching_package_imports_nothing_else_from_the_app():
    for path in sorted(MATCHING_DIR.glob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith("orders_app"), f"{path.name} imports {module}: matching/ stands alone"


def test_matching_modules_stay_small():
    for path in sorted(MATCHING_DIR.glob("*.py")):
        assert len(path.read_text().splitlines()) < 300, f"{path.name} should be split along a concept"
