"""Unique names: tests never truncate, so each creates users and markets of its own."""
from __future__ import annotations

import uuid


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
