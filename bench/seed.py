"""What the benches write straight into PostgreSQL, faster than through the API."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url


async def connect(database_url: str) -> asyncpg.Connection:
    """A raw asyncpg connection to the database of a SQLAlchemy URL."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn)


async def roster(conn: asyncpg.Connection, reps: int, teams: int) -> None:
    """Reps ``r<i>`` in teams ``t<i % teams>``, each with the identity ``crm:u-<i>`` that the
    benches' events name; the roster version moves, as after any roster change."""
    await conn.execute(f"""
        INSERT INTO teams (id, name) SELECT 't' || t, 'Team ' || t
          FROM generate_series(0, {teams} - 1) t;
        INSERT INTO reps (id, name) SELECT 'r' || r, 'Rep ' || r
          FROM generate_series(0, {reps} - 1) r;
        INSERT INTO rep_teams (rep_id, effective_from, team_id)
          SELECT 'r' || r, 0, 't' || (r % {teams}) FROM generate_series(0, {reps} - 1) r;
        INSERT INTO identities (provider, external_id, rep_id)
          SELECT 'crm', 'u-' || r, 'r' || r FROM generate_series(0, {reps} - 1) r;
        UPDATE roster_version SET version = version + 1 WHERE id = 1""")
