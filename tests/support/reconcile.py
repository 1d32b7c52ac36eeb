"""The reconciliation as an operator runs it."""
from __future__ import annotations

import os
import subprocess
import sys

from orders_app.processes import ROOT_DIR


def reconcile_cli(database_url: str, **settings: str) -> str:
    """`python -m orders_app.reconcile` against `database_url` (other `settings` where the environment lacks
    them); asserts exit 0 and returns its report."""
    env = {**os.environ, **settings, "DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, "-m", "orders_app.reconcile"], cwd=ROOT_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"reconcile exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "reconciliation: OK" in result.stdout, result.stdout
    return result.stdout
