"""stop_all: the benchmarks' and tests' way to stop what they started, all of it, whatever fails."""
from __future__ import annotations

import pytest

from orders_app.processes import stop_all


class FakeProcess:
    def __init__(self, name: str, stopped: list[str], fails: bool = False):
        self.name, self.stopped, self.fails = name, stopped, fails

    def stop(self) -> None:
        self.stopped.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} did not stop")


def test_stop_all_stops_every_process_in_the_order_given_and_skips_those_never_started():
    stopped: list[str] = []
    stop_all(FakeProcess("stream", stopped), None, FakeProcess("api", stopped), FakeProcess("worker", stopped))
    assert stopped == ["stream", "api", "worker"]


def test_stop_all_stops_the_others_when_one_fails_to_stop_then_reports_that_failure():
    stopped: list[str] = []
    with pytest.raises(RuntimeError, match="api did not stop"):
        stop_all(FakeProcess("stream", stopped), FakeProcess("api", stopped, fails=True),
                 FakeProcess("worker", stopped))
    assert stopped == ["stream", "api", "worker"]
