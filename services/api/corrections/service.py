"""Corrections: validated, recorded, then published on the bus once recorded.

A correction is a row of ``corrections`` (who, when, why, its target as published) and a
message on the activity topic, which the KPI service applies once (``shared.corrections``).
The message leaves after the row is committed (``AfterCommit``): the KPI service marks the row
applied, so the row must exist first. A message lost after the commit (the bus down) is sent
again by the worker until the KPI service marks it applied (it claims each message once).

One open correction per event: a second one while the first stands is a 409 naming
``event_id`` and the correction in force; undo it first (an audit reads as a sequence of
corrections and undos, never one silently replacing another).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from services.api.activity.queries import ActivityQueries, Row
from services.api.corrections.repository import CorrectionsRepository
from services.api.corrections.schemas import CorrectionIn, CorrectionOut, Status
from services.api.roster.repository import RosterRepository
from shared.bus import Bus
from shared.corrections import CorrectionMessage, Target, TargetData, message_of, outgoing
from shared.events import Actor
from shared.problems import Conflict, NotFound, Problem, Unprocessable

log = logging.getLogger(__name__)
Later = Callable[[Callable[[], Awaitable[None]]], None]  # AfterCommit


def no_bus() -> Problem:
    return Problem(
        "corrections travel on the bus to the KPI service, and this API has none: run "
        "`salespulse serve`, or set SALESPULSE_KAFKA_BOOTSTRAP_SERVERS",
        status=503,
        slug="no-bus",
    )


def invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"{field}: {message}", errors=[{"field": f"body.{field}", "message": message}]
    )


class Corrections:
    def __init__(self, db_queries: ActivityQueries, repo: CorrectionsRepository,
                 roster: RosterRepository, bus: Bus | None, topic: str) -> None:  # fmt: skip
        self._activity, self._repo, self._roster = db_queries, repo, roster
        self._bus, self._topic = bus, topic

    async def make(
        self, asked: CorrectionIn, by: str, now: datetime, later: Later
    ) -> CorrectionOut:
        if self._bus is None:
            raise no_bus()
        await self._check(asked)
        target = _target(await self._event(asked.event_id))
        open_one = await self._repo.open_on(target.key)
        if open_one is not None:
            raise Conflict(
                f"event {asked.event_id!r} has correction {open_one!r} in force; undo it "
                "first (DELETE /v1/corrections/{id})",
                errors=[{"field": "body.event_id", "message": f"corrected by {open_one}"}],
            )
        message = CorrectionMessage(
            id=f"cor-{uuid.uuid4().hex[:16]}", action=asked.action, rep_id=asked.rep_id,
            target=target,
        )  # fmt: skip
        row = {
            "id": message.id, "event_id": target.id, "event_key": target.key,
            "action": message.action, "rep_id": message.rep_id, "reason": asked.reason.strip(),
            "made_by": by, "made_at": int(now.timestamp()), "bus_key": target.partition_key,
            "target": target.model_dump_json(),
        }  # fmt: skip
        await self._repo.add(row)
        later(self._publisher(message))
        log.info("correction made", extra={"correction": message.id, "action": message.action,
                                           "event_id": target.id, "by": by})  # fmt: skip
        return view(row)

    async def undo(self, correction_id: str, by: str, now: datetime, later: Later) -> CorrectionOut:
        if self._bus is None:
            raise no_bus()
        row = await self._repo.get(correction_id)
        if row is None:
            raise NotFound(f"no correction {correction_id!r}")
        if await self._repo.undo(correction_id, by, int(now.timestamp())):
            undo = message_of(row["id"], row["action"], row["rep_id"], row["target"], undo=True)
            later(self._publisher(undo))
            log.info("correction undone", extra={"correction": correction_id, "by": by})
            row = {**row, "undone_by": by, "undone_at": int(now.timestamp())}
        return view(row)

    async def _check(self, asked: CorrectionIn) -> None:
        if not asked.reason.strip():
            raise invalid("reason", "required: say why, for whoever reads the audit")
        if asked.action == "reassign":
            if not asked.rep_id:
                raise invalid("rep_id", "required to reassign: the rep who gets the event")
            if await self._roster.memberships(asked.rep_id) is None:
                raise invalid("rep_id", f"no rep {asked.rep_id!r}")
        elif asked.rep_id is not None:
            raise invalid("rep_id", "an exclusion names no rep")

    async def _event(self, event_id: str) -> list[Row]:
        rows = [r for r in await self._activity.of_event(event_id) if r.correction is None]
        if not rows:
            raise NotFound(
                f"no event {event_id!r} in the activity record (past the retention, or never "
                "booked)",
                errors=[{"field": "body.event_id", "message": "not in the activity record"}],
            )
        if len({r.event_key for r in rows}) > 1:
            raise invalid("event_id", "two sources sent an event with this id")
        return rows

    def _publisher(self, message: CorrectionMessage) -> Callable[[], Awaitable[None]]:
        bus, topic = self._bus, self._topic

        async def publish() -> None:
            assert bus is not None
            await bus.publish(topic, [outgoing(message)])

        return publish


def _target(rows: list[Row]) -> Target:
    """The event as the record holds it: what the KPI service needs to find its state."""
    first = rows[0]
    actor = None
    if first.actor:
        provider, _, external_id = first.actor.partition(":")
        actor = Actor.model_validate({"provider": provider, "external_id": external_id})
    return Target(
        id=first.event_id, source=first.source, type=first.type,
        time=datetime.fromtimestamp(first.time, UTC), actor=actor,
        data=TargetData(call_id=first.call_id, deal_id=first.deal_id),
    )  # fmt: skip


def _at(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def status(row: dict[str, Any]) -> Status:
    if row.get("undone_at") is not None:
        return "undone" if row.get("undo_applied_at") is not None else "undo_pending"
    return "applied" if row.get("applied_at") is not None else "pending"


def view(row: dict[str, Any]) -> CorrectionOut:
    return CorrectionOut(
        id=row["id"], event_id=row["event_id"], action=row["action"], rep_id=row["rep_id"],
        reason=row["reason"], made_by=row["made_by"], made_at=datetime.fromtimestamp(
            row["made_at"], UTC), status=status(row), applied_at=_at(row.get("applied_at")),
        undone_by=row.get("undone_by"), undone_at=_at(row.get("undone_at")),
        undo_applied_at=_at(row.get("undo_applied_at")),
    )  # fmt: skip
