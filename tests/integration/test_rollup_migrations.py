"""Revisions 0004 and 0005 upgrade a database with its data: counters pivoted into wide rows,
month rows made from the day rows (in the organisation's time zone, across a DST switch), and
applied event ids turned into the keys the KPI service computes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.migrate import migrate
from shared.db.models import AppliedEvent, event_key, kpi_rollups, table

PARIS = ZoneInfo("Europe/Paris")  # the settings' default time zone


def midnight(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=PARIS).timestamp())


DAYS = [  # (day start, calls_placed, talk_seconds): the last day of March starts in summer time
    (midnight(2026, 3, 1), 2, 60),
    (midnight(2026, 3, 31), 3, 90),
    (midnight(2026, 4, 1), 5, 0),
]


async def test_counters_become_wide_rows_with_months_made_from_the_days(db: AsyncEngine) -> None:
    async with db.begin() as conn:  # the fixture's database is at head: start it again at 0003
        for name in await conn.run_sync(lambda sync: inspect(sync).get_table_names()):
            await conn.execute(text(f"DROP TABLE {name}"))
    await migrate(db, "0003")
    rows = [
        ("day", start, m, v)
        for start, *values in DAYS
        for m, v in zip(("calls_placed", "talk_seconds"), values, strict=True)
    ] + [("minute", midnight(2026, 4, 1) + 60, "calls_missed", 1)]
    async with db.begin() as conn:
        for grain, start, metric, value in rows:
            await conn.execute(
                text(
                    "INSERT INTO kpi_buckets (scope, metric, grain, bucket_start, subject_id, "
                    "value) VALUES ('rep', :m, :g, :b, 'alice', :v)"
                ),
                {"m": metric, "g": grain, "b": start, "v": value},
            )
        await conn.execute(
            text("INSERT INTO applied_events (source, id, applied_at) VALUES ('crm://x', 'e-1', 7)")
        )
    await migrate(db)
    columns = (kpi_rollups.c.calls_placed, kpi_rollups.c.talk_seconds, kpi_rollups.c.calls_missed)
    async with db.connect() as conn:
        found = {
            (g, b): tuple(values)
            for g, b, *values in await conn.execute(
                select(kpi_rollups.c.grain, kpi_rollups.c.bucket_start, *columns)
            )
        }
        keys = (await conn.execute(select(table(AppliedEvent).c.key))).scalars().all()
    assert found == {
        ("day", midnight(2026, 3, 1)): (2, 60, 0),
        ("day", midnight(2026, 3, 31)): (3, 90, 0),
        ("day", midnight(2026, 4, 1)): (5, 0, 0),
        ("minute", midnight(2026, 4, 1) + 60): (0, 0, 1),
        ("month", midnight(2026, 3, 1)): (5, 150, 0),
        ("month", midnight(2026, 4, 1)): (5, 0, 0),
    }
    assert [bytes(k) for k in keys] == [event_key("crm://x", "e-1")]
