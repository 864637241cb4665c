"""A database written by the previous release (its own code: schema, roster, events) upgrades
in place: every KPI reads the same afterwards, and its applied event ids still deduplicate."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.api.app import create_app
from shared.db.engine import create_engine
from shared.db.migrate import current_revision, head_revision, migrate
from shared.settings import Settings
from tests.api_support import READ, book
from tests.conftest import IN_CI

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE = "50fe159"  # the last release before migrations (created its tables at start)
REPS = ("alice", "bob", "carol")

# Run by the previous release's interpreter path, in its own source tree: what it made of the
# database and what its API answered.
WRITE_WITH_PREVIOUS_RELEASE = """
import asyncio, sys, httpx, orjson
from services.api.app import create_app
from shared.db.engine import create_engine, create_schema
from shared.settings import Settings
from tests.api_support import READ, book, floor

async def main():
    url, events, reps = sys.argv[1], orjson.loads(sys.argv[2]), sys.argv[3].split(",")
    settings = Settings(database_url=url, api_keys="test-admin-key:read+admin,test-read-key:read")
    db = create_engine(url)
    await create_schema(db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(create_app(settings, db)),
                                 base_url="http://old") as api:
        await floor(api)
        await book(db, *events)
        answers = {}
        for rep in reps:
            answer = await api.get(f"/v1/reps/{rep}/kpis?window=this_year", headers=READ)
            answers[rep] = answer.json()
    await db.dispose()
    print(orjson.dumps(answers).decode())

asyncio.run(main())
"""


def previous_release(tmp_path: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", PREVIOUS_RELEASE], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        message = f"the previous release ({PREVIOUS_RELEASE}) is not in this clone's history"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    tree = tmp_path / "previous"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def activity() -> list[dict[str, Any]]:
    from tests.conftest import canonical

    return [
        canonical("call.placed", actor="u-1", talk_seconds=60),
        canonical("call.placed", actor="u-1", outcome="no_answer", talk_seconds=0),
        canonical("call.received", actor="u-2", talk_seconds=45),
        canonical("call.missed", actor="u-3"),
        canonical("deal.updated", actor="u-1", deal_id="D-1", amount="1200.00"),
        canonical("deal.updated", actor="u-2", deal_id="D-2", status="lost", amount="10.00"),
        canonical("lead.created", actor="u-3"),
    ]


async def kpis_now(settings: Settings, url: str) -> dict[str, Any]:
    db = create_engine(url)
    try:
        app = create_app(settings, db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://new"
        ) as api:
            return {
                rep: (await api.get(f"/v1/reps/{rep}/kpis?window=this_year", headers=READ)).json()
                for rep in REPS
            }
    finally:
        await db.dispose()


async def test_a_previous_release_database_upgrades_with_its_data(
    postgres_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    tree = previous_release(tmp_path)
    events = activity()
    written = subprocess.run(
        [
            sys.executable,
            "-c",
            WRITE_WITH_PREVIOUS_RELEASE,
            postgres_url,
            orjson.dumps(events),
            ",".join(REPS),
        ],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert written.returncode == 0, written.stderr[-3000:]
    before = orjson.loads(written.stdout.strip().splitlines()[-1])
    assert before["alice"]["metrics"]["calls_placed"] == 2  # the old release booked them

    db = create_engine(postgres_url)
    try:
        assert await current_revision(db) is None  # made before migrations: no version
        await migrate(db)
        assert await current_revision(db) == head_revision()
        settings = make_settings(database_url=postgres_url)
        after = await kpis_now(settings, postgres_url)
        assert _metrics(after) == _metrics(before)
        await book(db, *events)  # the same events again: their ids were applied before
        assert _metrics(await kpis_now(settings, postgres_url)) == _metrics(before)
    finally:
        await db.dispose()


def _metrics(answers: dict[str, Any]) -> dict[str, Any]:
    return {rep: answer["metrics"] for rep, answer in answers.items()}
