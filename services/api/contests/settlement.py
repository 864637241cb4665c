"""Settling a contest: its final standings and winners stored once, with their ``contest_won``
notifications, in one transaction.

At ``ends_at`` + ``CONTEST_SETTLE_SECONDS`` (``settles_at``) a contest is due. The worker
(``services.worker``) settles the due contests on a schedule; nothing else does (a read never
writes). Settling scores the contest one last time (``standings.Scorer``), stores the standings
and the winners with a conditional write (only if it is still unsettled and defined as read),
and writes the notifications of the alerts watching it (the outbox, ``shared.alerting``
decides), all in one transaction. So any number of workers may try at once, and a worker killed
at any instant leaves either nothing (the next try settles it) or everything: a contest settles
exactly once. From then on the stored standings are served and later events change nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.api.common.database import in_transaction
from services.api.common.freshness import data_version
from services.api.contests import scoring
from services.api.contests.repository import ContestRepository, Final
from services.api.contests.schemas import ContestRow, Winner
from services.api.contests.scoring import Contest
from services.api.contests.standings import Scorer, row
from services.api.roster.service import epoch
from services.api.targets.service import TargetCache
from shared import outbox
from shared.alerting import ContestWinner, Reading, Settled, decide, of_kind
from shared.alerts import Voice
from shared.settings import Settings, voice_of

log = logging.getLogger(__name__)


class Settlement:
    """Settles the contests that are due (``settle_due``); one per worker."""

    def __init__(
        self, db: AsyncEngine, settings: Settings, targets: TargetCache | None = None
    ) -> None:
        self._db, self._settings = db, settings
        self._scorer = Scorer(targets or TargetCache(), settings)

    @property
    def settle_s(self) -> int:
        return self._settings.contest_settle_seconds

    async def settle_due(self, now: datetime) -> int:
        """Store the final standings of every contest due: how many this call settled."""
        async with self._db.connect() as conn:
            due = await ContestRepository(conn).due(epoch(now), self.settle_s)
        settled = 0
        for contest in due:
            settled += await self.settle(contest.id, epoch(now)) is not None
        return settled

    async def settle(self, contest_id: str, now: int) -> Final | None:
        """Compute and store ``contest_id``'s final standings in one transaction: None if it
        was not due, or another worker settled it first."""

        async def work(conn: AsyncConnection) -> Final | None:
            repo = ContestRepository(conn)
            found = await repo.get(contest_id)
            if found is None or not found[0].due(now, self.settle_s):
                return None
            contest = found[0]
            log.info("settling contest", extra={"contest": contest_id})
            version = await data_version(conn)
            standing, teams = await self._scorer.rank(conn, contest, version, now)
            rows = [row(contest, s, teams) for s in standing]
            won = [row(contest, s, teams) for s in scoring.winners(standing)]
            final: Final = {
                "rows": [r.model_dump(mode="json") for r in rows],
                "winners": [_winner(r).model_dump(mode="json") for r in won],
            }
            if not await repo.settle(contest, final, now):
                return None
            await repo.changed()
            await _contest_won(conn, contest, won, now, voice_of(self._settings))
            log.info(
                "contest settled",
                extra={"contest": contest_id, "winners": len(final["winners"])},
            )
            return final

        return await in_transaction(self._db, work, what=f"settle contest {contest_id}")


async def _contest_won(
    conn: AsyncConnection, contest: Contest, winners: list[ContestRow], now: int, voice: Voice
) -> int:
    """The ``contest_won`` notifications of a contest just settled, in its settlement's
    transaction (the outbox): one per alert watching it and winner (``shared.alerting``)."""
    settled = Settled(
        contest.id,
        contest.name,
        "rep" if contest.participants == "reps" else "team",
        contest.score.metric or "points",
        tuple(ContestWinner(row.rep_id or row.team_id or "", row.score) for row in winners),
    )
    reading = Reading(settled=settled)
    watching = of_kind(await outbox.enabled_alerts(conn), "contest_won")
    crossings = [crossing for alert in watching for crossing in decide(alert, reading)]
    return await outbox.write(conn, crossings, now, voice)


def _winner(row: ContestRow) -> Winner:
    return Winner(rep_id=row.rep_id, team_id=row.team_id, name=row.name)
