"""Reps matched by email, on SQLite and PostgreSQL: an actor whose identity nobody has, but
whose event carries a rep's email, is that rep's; the identity is learnt (shown as learnt in the
roster), later events match it directly, and what it did before, unassigned, is re-credited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.roster.repository import RosterRepository
from services.api.roster.service import rep
from shared.db.models import Identity, table
from tests.activity_support import assert_the_record_adds_up
from tests.api_support import book
from tests.conftest import canonical
from tests.integration.test_corrections_flush import TZ, MakeFloor, new_floor  # noqa: F401
from tests.kpi_rig import day_totals

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


def call(user: str, minutes: int, email: str | None = None) -> dict[str, Any]:
    body = canonical(
        "call.placed", actor=user, provider="aircall", time=T0 + timedelta(minutes=minutes)
    )
    if email is not None:
        body["data"]["actor"]["email"] = email
    return body


async def calls_of(db: AsyncEngine) -> dict[tuple[str, str], int]:
    return {
        (scope, subject): value
        for (scope, subject, counter), value in (await day_totals(db)).items()
        if counter == "calls_placed"
    }


async def test_an_unknown_actor_with_a_reps_email_is_hers_before_and_after(
    new_floor: MakeFloor,  # noqa: F811
) -> None:
    floor = await new_floor()
    async with floor.db.begin() as conn:
        await conn.exec_driver_sql("UPDATE reps SET email = 'carol@example.com' WHERE id = 'carol'")
    await book(floor.db, call("4242", 1))  # no email: nobody's
    assert await calls_of(floor.db) == {("unassigned", "aircall:4242"): 1}

    await book(floor.db, call("4242", 2, email="Carol@Example.COM"), call("77", 3, "x@nowhere.io"))
    await book(floor.db, call("4242", 4))  # no email again: the learnt identity is hers
    assert await calls_of(floor.db) == {
        ("rep", "carol"): 3,
        ("team", "south"): 3,
        ("unassigned", "aircall:77"): 1,  # an email that is no rep's teaches nothing
    }
    await assert_the_record_adds_up(floor.db, TZ)

    identities = table(Identity)
    async with floor.db.connect() as conn:
        learnt = (
            await conn.execute(
                select(identities.c.rep_id, identities.c.learned_from).where(
                    identities.c.provider == "aircall"
                )
            )
        ).all()
        shown = await rep(RosterRepository(conn), "carol", datetime.now(UTC))
    assert learnt == [("carol", "email")]
    [aircall] = [i for i in shown.identities if i.provider == "aircall"]
    assert (aircall.external_id, aircall.learned_from) == ("4242", "email")
    assert aircall.learned_at is not None
