"""CPU time of the processes a benchmark involves, from /proc (Linux): robust to a busy machine, where
wall-clock figures are not — CPU seconds per order tell what each component costs."""
from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def child_pids() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its live descendants, plus what their reaped children used."""
    children, total, todo = child_pids(), 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields:
            total += sum(int(value) for value in fields[11:15]) / CLOCK_TICKS  # utime stime cutime cstime
        todo.extend(children.get(current, []))
    return total


def cpu_seconds_by_name(processes: dict[str, int]) -> dict[str, float]:
    """`tree_cpu_seconds` of each named process: taken before and after a load, the difference is what it cost."""
    return {name: tree_cpu_seconds(pid) for name, pid in processes.items()}


def cpu_used_since(before: dict[str, float], processes: dict[str, int]) -> dict[str, float]:
    return {name: used - before[name] for name, used in cpu_seconds_by_name(processes).items()}


def find_pid(executable_part: str, argument_part: str) -> int | None:
    """A process whose command line names `executable_part` and contains `argument_part` (e.g. a port)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        command = command_line(int(entry.name))
        if command and executable_part in command.split(" ", 1)[0] and argument_part in command:
            return int(entry.name)
    return None


def command_line(pid: int) -> str:
    """The process's arguments joined by spaces; "" for a process gone (or a kernel thread)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
