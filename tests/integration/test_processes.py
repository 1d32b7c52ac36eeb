"""The launcher of the service's processes (tests and benchmarks): a process that does not become ready is
reported with its log file and not left running."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from orders_app.processes import ApiServer

pytestmark = pytest.mark.slow

NEVER_READY_APP = '''
def app(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"never ready"]
'''


def test_a_server_that_never_becomes_healthy_is_stopped_and_the_error_names_its_log(tmp_path):
    (tmp_path / "never_ready.py").write_text(NEVER_READY_APP)
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(f"pythonpath = {str(tmp_path)!r}\n")
    log_path = tmp_path / "api-never-ready.log"
    with pytest.raises(RuntimeError, match=rf"gunicorn not healthy after 8s; see {re.escape(str(log_path))}$"):
        ApiServer("api-never-ready", workers=1, threads=1, app="never_ready:app", config=config, log_dir=tmp_path,
                  ready_timeout_s=8)  # time to boot its worker
    log = log_path.read_text()
    pids = re.findall(r"Listening at: \S+ \((\d+)\)", log) + re.findall(r"Booting worker with pid: (\d+)", log)
    assert len(pids) >= 2, log  # the master and its worker did start
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == [], "a process of the server is still running"
