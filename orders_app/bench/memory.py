"""Resident memory of the benchmark's processes, from /proc (Linux), and its drift over a long run.

The parsing and the drift are pure functions of text and numbers so that they are unit-tested; reading
/proc is the thin rest."""
from __future__ import annotations

from pathlib import Path

from orders_app.bench.cpu import child_pids, command_line

WINDOW_FRACTION = 0.1


def parse_vm_rss_kib(status_text: str) -> int | None:
    """VmRSS of a /proc/<pid>/status text in KiB; None for a process without one (a zombie, a kernel thread)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def rss_mib(pid: int) -> float | None:
    try:
        kib = parse_vm_rss_kib(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return kib / 1024 if kib is not None else None


def named_processes(roles: list[tuple[str, int, str | None]]) -> dict[str, int]:
    """Each (name, pid, children's name) with its live children added under the children's name, numbered
    in pid order when there are several: gunicorn's workers under its master, the relay under the worker.
    multiprocessing's resource tracker (a child of a process that spawned one) is named as such."""
    children = child_pids()
    named = {}
    for name, pid, child_name in roles:
        named[name] = pid
        found = sorted(children.get(pid, [])) if child_name is not None else []
        trackers = [child for child in found if "resource_tracker" in command_line(child)]
        found = [child for child in found if child not in trackers]
        for number, child in enumerate(found, start=1):
            named[f"{child_name}" if len(found) == 1 else f"{child_name} {number}"] = child
        for tracker in trackers:
            named[f"{name}: resource tracker"] = tracker
    return named


def drift(values: list[float], fraction: float = WINDOW_FRACTION) -> dict | None:
    """How far a series of samples moved after warm-up: the mean of the last `fraction` of the samples
    ("end") against the mean of the samples from `fraction` to 2 × `fraction` of the run ("after
    warm-up"; the first tenth is start-up: imports, caches, pools, buffers filling). None for fewer than
    three samples or a zero baseline."""
    count = len(values)
    if count < 3:
        return None
    window = max(1, int(count * fraction))
    baseline_values = values[window:2 * window]
    end_values = values[count - window:]
    baseline = sum(baseline_values) / len(baseline_values)
    end = sum(end_values) / len(end_values)
    if baseline == 0:
        return None
    return {"after_warm_up": round(baseline, 1), "end": round(end, 1),
            "drift_percent": round(100 * (end - baseline) / baseline, 1)}
