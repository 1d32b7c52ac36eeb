"""Who an API key belongs to, cached per process without letting a revoked key live on.

A lookup is trusted for up to API_KEY_CACHE_SECONDS, and only while the database's key generation stays
where it was: a rotation bumps it in the transaction that revokes the old key, and each process reads it
at most once per `GENERATION_CHECK_INTERVAL_S`, dropping every cached key when it moved. A rotation thus
takes effect in every process within about a second, for one small query per process per second rather
than one per request. Unknown keys are never cached.
"""
from __future__ import annotations

import math
import threading
import time
from typing import NamedTuple

from orders_app.messages import Principal
from orders_app.repositories import users
from orders_app.services import ServiceContext
from orders_app.services.queries import principal_for_api_key

GENERATION_CHECK_INTERVAL_S = 1.0
ENTRIES_MAX = 10_000


class _Entry(NamedTuple):
    principal: Principal
    expires_at: float


class ApiKeyCache:
    """key hash -> principal for one process (shared by its threads)."""

    def __init__(self):
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # guards _entries and _generation together
        self._generation: int | None = None
        self._checked_at = -math.inf
        self._check_lock = threading.Lock()  # one generation query at a time

    def principal(self, key_hash: str, ctx: ServiceContext) -> Principal | None:
        """The key's principal, or None for an unknown or revoked key."""
        ttl_s = ctx.settings.api_key_cache_seconds
        if not ttl_s:
            return principal_for_api_key(key_hash, ctx)
        self._follow_generation(ctx)
        generation = self._generation
        entry = self._entries.get(key_hash)
        if entry is not None and entry.expires_at >= time.monotonic():
            return entry.principal
        principal = principal_for_api_key(key_hash, ctx)
        if principal is not None:
            self._put(key_hash, _Entry(principal, time.monotonic() + ttl_s), generation)
        return principal

    def _put(self, key_hash: str, entry: _Entry, read_under_generation: int | None) -> None:
        with self._lock:
            # A lookup that started before a rotation was noticed may have read the old key: not kept.
            if read_under_generation != self._generation:
                return
            if len(self._entries) >= ENTRIES_MAX:
                self._entries.clear()
            self._entries[key_hash] = entry

    def _follow_generation(self, ctx: ServiceContext) -> None:
        if time.monotonic() - self._checked_at < GENERATION_CHECK_INTERVAL_S:
            return
        with self._check_lock:
            if time.monotonic() - self._checked_at < GENERATION_CHECK_INTERVAL_S:
                return  # another thread checked while this one waited
            with ctx.uow() as uow:
                generation = users.key_generation(uow.session)
            with self._lock:
                if generation != self._generation:
                    self._entries.clear()
                    self._generation = generation
            self._checked_at = time.monotonic()
