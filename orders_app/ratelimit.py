"""Rate limits per key, exact across every process of one host (gunicorn's forked workers).

The token bucket is kept as GCRA (the generic cell rate algorithm): one integer per key, the "theoretical
arrival time" `tat_ns` at which its bucket would be full again. A request at `now` is allowed when
`max(tat, now) + interval - now <= burst * interval`, and then moves `tat` by one interval; otherwise it
must wait the excess. Same behaviour as a bucket of `burst` tokens refilled at `1 / interval`, without
floats or a refill step.

The table is a fixed array of (key, tat_ns) slots in an anonymous shared memory mapping (open addressing,
`PROBE_SLOTS` probes). `create_host_table()` runs in gunicorn's master (gunicorn.conf.py `on_starting`), so
every forked worker maps the same memory; without it (one process, tests) each process has its own. A
POSIX record lock (`lockf`) serialises the processes — the kernel drops it if its holder dies, so a killed
worker cannot wedge the others — and a thread lock the threads of one process. A slot whose bucket is full
again holds nothing worth keeping and is reused; if all probed slots are busy (more than ~`SLOTS` keys
active within one burst window) the one nearest to full is taken, which can only be lenient, never block.
No database, no network: one lock round trip and a few loads per request.
"""
from __future__ import annotations

import fcntl
import mmap
import struct
import tempfile
import threading
import time

from orders_app.errors import present

SLOTS = 65_536
PROBE_SLOTS = 32
_SLOT = struct.Struct("<qq")  # key (0 = empty), tat_ns
_MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing spreads consecutive user ids over the table
NS_PER_S = 1_000_000_000


class SharedRateTable:
    def __init__(self, slots: int = SLOTS):
        self.slots = slots
        self._memory = mmap.mmap(-1, slots * _SLOT.size)  # MAP_SHARED | MAP_ANONYMOUS: shared across fork
        self._lock_file = tempfile.TemporaryFile()
        self._thread_lock = threading.Lock()

    def close(self) -> None:
        """Unmap the table and drop the lock file (a table outlives no process but the tests' own)."""
        self._lock_file.close()
        self._memory.close()

    def take(self, key: int, interval_ns: int, burst: int, now_ns: int | None = None) -> int:
        """Take one request's token for `key` (> 0). Returns 0 when allowed, else the nanoseconds until
        one would be; a refused request changes nothing."""
        if key <= 0 or interval_ns <= 0 or burst <= 0:
            raise ValueError("key, interval and burst must be positive")
        tolerance_ns = burst * interval_ns
        with self._thread_lock:
            fcntl.lockf(self._lock_file, fcntl.LOCK_EX)
            try:
                now_ns = time.monotonic_ns() if now_ns is None else now_ns  # system-wide clock on Linux
                offset, tat_ns = self._find(key, now_ns)
                new_tat_ns = max(tat_ns, now_ns) + interval_ns
                excess_ns = new_tat_ns - now_ns - tolerance_ns
                if excess_ns > 0:
                    return excess_ns
                _SLOT.pack_into(self._memory, offset, key, new_tat_ns)
                return 0
            finally:
                fcntl.lockf(self._lock_file, fcntl.LOCK_UN)

    def _find(self, key: int, now_ns: int) -> tuple[int, int]:
        """(byte offset of the key's slot, its tat); a new key gets a free or stale slot with tat 0."""
        start = ((key * _MIX) & 0xFFFFFFFFFFFFFFFF) % self.slots
        reusable, nearest_full, nearest_tat = None, None, None
        for probe in range(PROBE_SLOTS):
            offset = ((start + probe) % self.slots) * _SLOT.size
            slot_key, tat_ns = _SLOT.unpack_from(self._memory, offset)
            if slot_key == key:
                return offset, tat_ns
            if reusable is None and (slot_key == 0 or tat_ns <= now_ns):
                reusable = offset
            if nearest_tat is None or tat_ns < nearest_tat:
                nearest_full, nearest_tat = offset, tat_ns
        if reusable is not None:
            return reusable, 0
        return present(nearest_full, "the probe loop saw at least one slot"), 0


_host_table: SharedRateTable | None = None
_host_table_lock = threading.Lock()


def create_host_table() -> SharedRateTable:
    """Create the table before gunicorn forks its workers, so that they all share it."""
    global _host_table
    with _host_table_lock:
        if _host_table is None:
            _host_table = SharedRateTable()
        return _host_table


def host_table() -> SharedRateTable:
    """The table shared with the other processes of this host if the master made one, else this process's."""
    return _host_table if _host_table is not None else create_host_table()
