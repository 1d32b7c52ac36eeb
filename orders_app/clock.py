"""The one clock: naive UTC with millisecond precision, as stored in DATETIME(3) columns."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
