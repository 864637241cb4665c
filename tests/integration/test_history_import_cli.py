"""``salespulse import`` as a user runs it, on a SQLite file (``salespulse serve``'s database):
a CSV saved by French Excel imports, a bad line is reported with its number and never stops
the import, and the exit code says when nothing could be read."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from services.kpi.app import build_kpi_service
from shared.bus.log import LogBus
from shared.db.engine import create_engine
from shared.db.models import kpi_rollups
from shared.settings import Settings

SALESPULSE = Path(sys.executable).with_name("salespulse")
FRENCH = (
    "type;time;actor_provider;actor_id;email;id;call_id;outcome;talk_seconds;deal_id;status;"
    "amount;currency;stage\r\n"
    "call.placed;03/05/2026 14:22;aircall;42;Léa@exemple.fr;a-1;c-1;connected;125;;;;;\r\n"
    "deal.updated;04/05/2026 10:00;crm;u-1;;a-2;;;;D-9;won;1 234,50;EUR;Signé\r\n"
    "call.placed;pas une date;crm;u-1;;a-3;c-2;connected;10;;;;;\r\n"
    "deal.updated;05/05/2026 11:30;crm;u-1;;a-4;;;;D-10;won;99,5;EUR;Signé\r\n"
)


def salespulse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SALESPULSE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SALESPULSE_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [str(SALESPULSE), *args], env=env, capture_output=True, text=True, timeout=120
    )


async def unassigned_revenue(tmp_path: Path) -> dict[str, int]:
    """Drain the log with the KPI consumer; the revenue each unassigned identity booked."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'serve.db'}")
    db = create_engine(settings.database_url)
    bus = LogBus(db)
    await bus.start()
    try:
        until = await bus.end_offsets(settings.activity_topic)
        await build_kpi_service(settings, bus, db).consumer.run(asyncio.Event(), until=until)
        query = select(kpi_rollups.c.subject_id, kpi_rollups.c.revenue_cents).where(
            kpi_rollups.c.grain == "month", kpi_rollups.c.scope == "unassigned"
        )
        async with db.connect() as conn:
            return {s: int(v) for s, v in (await conn.execute(query)).all() if v}
    finally:
        await bus.stop()
        await db.dispose()


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig"])
def test_a_csv_saved_by_french_excel_imports_and_names_its_bad_line(
    tmp_path: Path, encoding: str
) -> None:
    assert salespulse(tmp_path, "migrate").returncode == 0
    path = tmp_path / "historique.csv"
    path.write_bytes(FRENCH.encode(encoding))

    done = salespulse(tmp_path, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert "published                3 events" in done.stdout
    assert "bad lines                1" in done.stdout
    assert "line 4: time: " in done.stdout  # the header is line 1
    assert asyncio.run(unassigned_revenue(tmp_path)) == {"crm:u-1": 123450 + 9950}

    again = salespulse(tmp_path, "import", str(path))
    assert again.returncode == 0
    assert "3 events already published by earlier runs were skipped" in again.stdout


def test_nothing_readable_is_a_failure(tmp_path: Path) -> None:
    assert salespulse(tmp_path, "migrate").returncode == 0
    missing = salespulse(tmp_path, "import", str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode == 1
    assert "import failed" in missing.stderr

    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"specversion": "1.0"}\n{oops\n')
    failed = salespulse(tmp_path, "import", str(junk))
    assert failed.returncode == 1
    assert "line 1: " in failed.stdout
    assert "line 2: not JSON" in failed.stdout
    assert "nothing could be imported" in failed.stderr

    header = tmp_path / "wrong.csv"
    header.write_text("type,time,who,id\ncall.placed,2026-05-04,u-1,x\n")
    refused = salespulse(tmp_path, "import", str(header))
    assert refused.returncode == 1
    assert "actor_provider" in refused.stderr
