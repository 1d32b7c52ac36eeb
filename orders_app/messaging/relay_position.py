"""Publishing the outbox from a position (OUTBOX_PUBLISHER=relay): the relay reads rows above the highest id it
published, sends them, and keeps one number — every row at or below it is published or will never exist —
saved at most once a second, instead of stamping each row it sends (an UPDATE and a durable commit per batch,
which cost the relay and the database more than reading the rows did).

The catch is that ids are handed out at insert and become visible at commit, not in id order: a row may appear
below ids already published (another transaction committed first), and an id may never appear (its transaction
rolled back, or InnoDB reserved more ids than a multi-row insert used). Such a missing id is a gap. The relay
publishes past gaps at once and remembers them; a gap is closed when its row shows up (published then) or when
it can never show up: every transaction that had written rows when the gap was first listed has ended — the
one that took the id must be among them — and the row is still absent. However long that takes: a gap is never
closed while its owner may still commit. Reading `information_schema.INNODB_TRX` needs the PROCESS privilege;
without it a gap is closed after OUTBOX_GAP_TIMEOUT_S. That table is a cache the server refreshes on a read
only when nobody has read it for 0.1 s: a relay reading it at every 25 ms sweep would read one old listing for
ever, missing every transaction begun since. So the relay lists at most every LISTING_INTERVAL_S and uses only
a listing the server made for that very statement (outbox.running_transactions). A late row never overtakes a
row of its own market: a market's events are written under that market's lock (its sequence row for commands,
its state row for the worker's events), so they commit in id order.

On a restart (or when another relay takes over) publishing resumes from the saved position: the rows above it
are sent again — at-least-once, as everywhere in this system; consumers ignore what they have.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from orders_app.clock import utc_now
from orders_app.config import Settings
from orders_app.repositories import outbox
from orders_app.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
SAVE_INTERVAL_S = 1.0
# A gap's owner took its id before the gap was seen, but writes its row (and so is listed as a writer) a moment
# after: a gap takes its owners from a listing made at least this long after it was seen.
LISTING_LAG_S = 0.25
LISTING_INTERVAL_S = 0.2  # the server refreshes INNODB_TRX only after 0.1 s without a read


@dataclass
class Gap:
    seen_at: float  # time.monotonic()
    owners: frozenset[int] | None = None  # the writers of the first listing LISTING_LAG_S after seen_at
    reported: bool = False  # logged as held open longer than OUTBOX_GAP_TIMEOUT_S


@dataclass
class RelayPosition:
    """What the relay has published: everything up to `highest` except the open `gaps`. Pure state."""
    highest: int
    gaps: dict[int, Gap] = field(default_factory=dict)

    @property
    def through(self) -> int:
        """Every id at or below this is published or closed: the position to save."""
        return min(self.gaps) - 1 if self.gaps else self.highest

    def missing_among(self, ids: list[int]) -> list[int]:
        """The ids between `highest` and the last of `ids` (ascending, all above `highest`) that are not in it."""
        if not ids:
            return []
        present = set(ids)
        return [i for i in range(self.highest + 1, ids[-1]) if i not in present]

    def closable(self, running: frozenset[int] | None, now: float, timeout_s: float | None) -> set[int]:
        """Gaps whose row, if absent now, never will be: their owners have all ended, or (`timeout_s` given:
        transactions cannot be listed) they timed out. `running` is a fresh listing made now, or None;
        gaps old enough take it as their owners first."""
        if running is not None:
            for gap in self.gaps.values():
                if gap.owners is None and now - gap.seen_at >= LISTING_LAG_S:
                    gap.owners = running
        return {gap_id for gap_id, gap in self.gaps.items()
                if (timeout_s is not None and now - gap.seen_at >= timeout_s)
                or (gap.owners is not None and running is not None and not gap.owners & running)}

    def advance(self, published: list[int], closed: set[int], new_gaps: list[int], now: float) -> None:
        for gap_id in closed:
            self.gaps.pop(gap_id, None)
        for gap_id in new_gaps:
            self.gaps[gap_id] = Gap(now)
        if published:
            self.highest = max(self.highest, *published)


class PositionPublisher:
    """The relay's publishing loop body in relay mode: one `sweep()` per poll."""

    def __init__(self, session_factory: sessionmaker, settings: Settings):
        self._session_factory, self._settings = session_factory, settings
        with UnitOfWork(session_factory) as uow:
            self.position = RelayPosition(outbox.published_through(uow.session))
        self._saved = self.position.through
        self._saved_at = time.monotonic()
        self._sees_transactions = True
        self._listed_at = float("-inf")  # float-ok: a monotonic-clock time, never listed yet

    def sweep(self, producer) -> int:
        """Publish the next rows (and any late gap rows); returns how many were sent. Raises when Kafka
        did not take them all; the position is then unchanged."""
        position, settings = self.position, self._settings
        with UnitOfWork(self._session_factory) as uow:
            session = uow.session
            rows = outbox.rows_after(session, position.highest, settings.outbox_sweep_batch_rows_max)
            ids = [row.id for row in rows]
            new_gaps = position.missing_among(ids)
            # Transactions are listed before the gaps are read again: an owner that has ended by then has
            # either committed its row (read now) or never will.
            now = time.monotonic()
            running = self._running(session, now) if position.gaps else None
            timeout_s = None if self._sees_transactions else settings.outbox_gap_timeout_s
            closable = position.closable(running, now, timeout_s)
            if self._sees_transactions:
                self._report_held(now)
            late = outbox.rows_with_ids(session, sorted(position.gaps))
            found = {row.id for row in late}
            _send(producer, [*late, *rows], settings.kafka_request_timeout_ms / 1000)
            position.advance(ids, found | (closable - found), new_gaps, now)
            if position.through > self._saved and now - self._saved_at >= SAVE_INTERVAL_S:
                outbox.save_published_through(session, position.through, utc_now())
                uow.commit()
                self._saved, self._saved_at = position.through, now
        return len(rows) + len(late)

    def _running(self, session, now: float) -> frozenset[int] | None:
        """The writers running now, or None: no listing this sweep (too soon after the last, or the server
        answered from its cache) or none possible (no privilege)."""
        if not self._sees_transactions or now - self._listed_at < LISTING_INTERVAL_S:
            return None
        self._listed_at = now
        listing = outbox.running_transactions(session)
        if listing is None:
            self._sees_transactions = False
            log.warning("the database account cannot list transactions (PROCESS privilege): outbox gaps close "
                        "after OUTBOX_GAP_TIMEOUT_S=%s s", self._settings.outbox_gap_timeout_s)
            return None
        return listing.writers if listing.fresh else None

    def _report_held(self, now: float) -> None:
        """A gap is held while a transaction that had written rows when it was listed still runs: say so once
        it is held longer than the timeout (the saved position, and pruning, wait for it)."""
        for gap_id, gap in self.position.gaps.items():
            if not gap.reported and now - gap.seen_at >= self._settings.outbox_gap_timeout_s:
                gap.reported = True
                log.warning("outbox id %s is still missing after %s s and a transaction that may commit it still "
                            "runs: the relay's saved position waits for it", gap_id,
                            self._settings.outbox_gap_timeout_s)

def _send(producer, rows: list, timeout_s: float) -> None:
    """All or nothing: a row Kafka did not acknowledge fails the sweep, which is retried from the same
    position (the rows that did land are sent again)."""
    if not rows:
        return
    futures = [producer.send(row.topic, key=row.message_key.encode(), value=row.payload.encode()) for row in rows]
    producer.flush(timeout=timeout_s)
    for future in futures:
        if not future.succeeded():
            raise future.exception or TimeoutError("Kafka did not acknowledge in time")
