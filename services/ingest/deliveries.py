"""What each provider's deliveries became, for ``GET /v1/connections``: tallied in memory per
provider and hour (no database work on a webhook's path), and written every few seconds in one
transaction (``connection_deliveries``: counts per hour; ``connection_status``: the last
delivery and the last refusal, its reason without secrets or bodies).

A database that cannot be reached keeps the tallies for the next write: counts are never lost
while the process lives, and a write never delays a webhook.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.chunks import chunks
from shared.db.models import CONNECTION_COUNTS, ConnectionDeliveries, ConnectionStatus, table

log = logging.getLogger(__name__)
_deliveries, _status = table(ConnectionDeliveries), table(ConnectionStatus)
HOUR = 3600
COUNTS = CONNECTION_COUNTS
REASON_CHARS = 300


@dataclass(slots=True)
class Tally:
    """One provider's counts in one hour."""

    accepted: int = 0
    duplicates: int = 0
    deadlettered: int = 0
    refused: int = 0


@dataclass(slots=True)
class Last:
    """A provider's last delivery (accepted or not) and last refusal."""

    delivery_at: int | None = None
    refusal_at: int | None = None
    refusal_reason: str | None = None


@dataclass(slots=True)
class DeliveryLog:
    """The tallies not written yet (pure: the clock is given)."""

    tallies: dict[tuple[str, int], Tally] = field(default_factory=dict)
    last: dict[str, Last] = field(default_factory=dict)
    failing: bool = False  # the last write failed (said once, not every few seconds)

    def delivered(
        self, provider: str, now: float, accepted: int, duplicates: int, deadlettered: int
    ) -> None:
        tally = self._tally(provider, now)
        tally.accepted += accepted
        tally.duplicates += duplicates
        tally.deadlettered += deadlettered
        self.last.setdefault(provider, Last()).delivery_at = int(now)

    def refused(self, provider: str, now: float, slug: str, detail: str) -> None:
        """A refusal: its problem's slug and text (problem texts never hold a secret)."""
        self._tally(provider, now).refused += 1
        last = self.last.setdefault(provider, Last())
        last.delivery_at = int(now)
        last.refusal_at = int(now)
        last.refusal_reason = f"{slug}: {detail}"[:REASON_CHARS]

    def take(self) -> DeliveryLog:
        """What there is to write, leaving this log empty."""
        taken = DeliveryLog(self.tallies, self.last)
        self.tallies, self.last = {}, {}
        return taken

    def give_back(self, taken: DeliveryLog) -> None:
        """A write that failed: its tallies join those noted since."""
        for key, tally in taken.tallies.items():
            mine = self.tallies.setdefault(key, Tally())
            for name in COUNTS:
                setattr(mine, name, getattr(mine, name) + getattr(tally, name))
        for provider, last in taken.last.items():
            newer = self.last.setdefault(provider, Last())
            newer.delivery_at = newer.delivery_at or last.delivery_at
            if newer.refusal_at is None:
                newer.refusal_at, newer.refusal_reason = last.refusal_at, last.refusal_reason

    def _tally(self, provider: str, now: float) -> Tally:
        key = (provider, int(now) // HOUR * HOUR)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = Tally()
        return tally


async def write(db: AsyncEngine, taken: DeliveryLog) -> None:
    """Add the tallies to their hours and keep the latest of each provider's instants."""
    insert = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
    rows = [
        {"provider": p, "hour_start": h, **{n: getattr(t, n) for n in COUNTS}}
        for (p, h), t in sorted(taken.tallies.items())
    ]
    statuses = [
        {"provider": p, "last_delivery_at": last.delivery_at, "last_refusal_at": last.refusal_at,
         "last_refusal_reason": last.refusal_reason}
        for p, last in sorted(taken.last.items())
    ]  # fmt: skip
    async with db.begin() as conn:
        for chunk in chunks(rows, params_per_item=2 + len(COUNTS)):
            statement = insert(_deliveries).values(list(chunk))
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["provider", "hour_start"],
                    set_={n: _deliveries.c[n] + statement.excluded[n] for n in COUNTS},
                )
            )
        for chunk in chunks(statuses, params_per_item=4):
            statement = insert(_status).values(list(chunk))
            latest = {
                name: func.coalesce(statement.excluded[name], _status.c[name])
                for name in ("last_delivery_at", "last_refusal_at", "last_refusal_reason")
            }
            await conn.execute(
                statement.on_conflict_do_update(index_elements=["provider"], set_=latest)
            )


async def keep_writing(
    db: AsyncEngine, deliveries: DeliveryLog, every_s: float, stop: asyncio.Event
) -> None:
    """Write the tallies every ``every_s`` until ``stop``, and once more then."""
    while True:
        stopping = False
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            stopping = True
        except TimeoutError:
            pass
        await write_once(db, deliveries)
        if stopping:
            return


async def write_once(db: AsyncEngine, deliveries: DeliveryLog) -> None:
    taken = deliveries.take()
    if not taken.tallies and not taken.last:
        return
    try:
        await write(db, taken)
    except Exception as exc:  # the database is down: kept for the next write
        deliveries.give_back(taken)
        if not deliveries.failing:
            log.warning("could not write the connections' tallies", extra={"error": repr(exc)})
        deliveries.failing = True
    else:
        deliveries.failing = False
