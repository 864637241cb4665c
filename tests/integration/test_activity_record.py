"""The activity record on SQLite and PostgreSQL: the KPI flush writes what each event booked,
and the rows add up to the aggregates exactly, through calls reported several times, callbacks,
deals edited, reopened and lost, first wins of accounts, touches, unknown callers, and their
re-credit once the roster names them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from shared.db.models import activity
from shared.settings import Settings
from tests.activity_support import assert_the_record_adds_up
from tests.api_support import ADMIN, api_client, book, floor
from tests.conftest import canonical

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_the_record_adds_up_to_the_buckets_through_every_kind_of_change(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    settings = make_settings()
    async with api_client(create_app(settings, db)) as client:
        await floor(client)
        await book(
            db,
            canonical(
                "call.placed",
                actor="u-1",
                time=at(0),
                call_id="c1",
                outcome="no_answer",
                talk_seconds=0,
            ),
            canonical(
                "call.missed",
                actor="u-2",
                time=at(1),
                call_id="c2",
                counterpart="+33 6 12 34 56 78",
            ),
            canonical(
                "deal.updated",
                actor="u-1",
                time=at(2),
                deal_id="D1",
                status="won",
                amount="1000.00",
                account_id="acme",
            ),
            canonical("meeting.held", actor="u-3", time=at(3), meeting_id="M1", deal_id="D1"),
            canonical("call.placed", actor="stranger", time=at(4)),
        )
        await book(
            db,
            # the same call reported again, connected: replaces its first report
            canonical(
                "call.placed",
                actor="u-1",
                time=at(5),
                call_id="c1",
                outcome="connected",
                talk_seconds=90,
            ),
            # the missed call called back by the team (Bob's team: Alice)
            canonical(
                "call.placed", actor="u-1", time=at(20), call_id="c3", counterpart="+33612345678"
            ),
            # the deal's amount edited, then the deal reopened, then won again by Carol
            canonical(
                "deal.updated",
                actor="u-1",
                time=at(30),
                deal_id="D1",
                status="won",
                amount="1200.00",
            ),
            canonical(
                "deal.updated",
                actor="stranger",
                time=at(60),
                deal_id="D2",
                status="won",
                amount="50.00",
            ),
        )
        await book(
            db,
            canonical("deal.updated", actor="u-1", time=at(40), deal_id="D1", status="open"),
            canonical("deal.updated", actor="u-3", time=at(50), deal_id="D1", status="won"),
            canonical(
                "deal.updated",
                actor="u-2",
                time=at(70),
                deal_id="D3",
                status="lost",
                amount="10.00",
            ),
        )
        await assert_the_record_adds_up(db, settings.tz)
        # the stranger joins Bob's identities: activity and record move to him
        rep = {
            "name": "Bob",
            "team_id": "north",
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [
                {"provider": "crm", "external_id": "u-2"},
                {"provider": "crm", "external_id": "stranger"},
            ],
        }
        assert (await client.put("/v1/reps/bob", json=rep, headers=ADMIN)).status_code == 200
        await book(db, canonical("lead.created", actor="u-2", time=at(80)))  # the re-credit runs
        await assert_the_record_adds_up(db, settings.tz)
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    activity.c.event_id, activity.c.scope, activity.c.subject, activity.c.counters
                )
            )
        ).all()
    assert not [r for r in rows if r.scope == "unassigned"]
    # an event that booked nothing is recorded all the same (a call's first report here
    # books until its second replaces it: both are there)
    assert len({r.event_id for r in rows}) == 13
