"""The dead-letter topic as an operator reads it: what was set aside and why, and the replay of
what can be booked now (after a roster fix, a new FX rate, a corrected integration).

A dead letter carries the original body. Those that are canonical events (set aside by the KPI
service, or an item of a ``/webhooks/events`` batch) are published again to the activity topic
once they validate; the KPI service's dedupe makes a replay safe to repeat. Provider-format
bodies (a HubSpot property change, an Aircall call) stay where they are: they are listed, to be
fixed at the source.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from shared import events as ev
from shared.bus import Bus, OutgoingRecord, Record
from shared.fx import unrated_currency

_HEADERS = (("content-type", ev.CONTENT_TYPE.encode()),)


@dataclass
class Review:
    """What a pass over the dead letters found."""

    letters: int = 0
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)  # (provider, reason)
    replayable: list[OutgoingRecord] = field(default_factory=list)
    still_invalid: int = 0


def reason_kind(reason: str) -> str:
    """The reason without its details (``invalid_event: data.time: ...`` -> ``invalid_event``)."""
    return reason.split(":", 1)[0].strip()[:80]


# The KPI service set these aside because a flush failed on them alone: replaying them would
# fail the same way and write the same dead letter again, until the engine is fixed.
NOT_REPLAYED = frozenset({"engine_error"})


def replayable(letter: dict[str, Any], rates: dict[str, Decimal]) -> OutgoingRecord | None:
    """The activity record a dead letter's body makes now, or None if it still cannot be booked."""
    if letter.get("truncated") or reason_kind(str(letter.get("reason", ""))) in NOT_REPLAYED:
        return None
    try:
        body = base64.b64decode(letter.get("body_base64", ""), validate=True)
        event = ev.parse_event(body)
    except (binascii.Error, ValueError):
        return None
    if unrated_currency(event, rates) is not None:
        return None
    return OutgoingRecord(event.partition_key.encode(), event.to_json(), _HEADERS)


def review(records: list[Record], rates: dict[str, Decimal]) -> Review:
    result = Review()
    for record in records:
        try:
            letter = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            continue
        result.letters += 1
        reason = reason_kind(str(letter.get("reason", "")))
        result.by_reason[(str(letter.get("provider", "?")), reason)] += 1
        again = replayable(letter, rates)
        if again is None:
            result.still_invalid += 1
        else:
            result.replayable.append(again)
    return result


async def read_topic(bus: Bus, topic: str, group: str) -> list[Record]:
    """Every record of ``topic`` as of now, from its beginning."""
    targets = await bus.end_offsets(topic)

    async def from_start(_: str, __: list[int]) -> dict[int, int]:
        return {}

    consumer = bus.consumer(topic, group, from_start)
    await consumer.start()
    records: list[Record] = []
    reached: dict[int, int] = {}
    idle = 0
    try:
        while any(reached.get(p, 0) < end for p, end in targets.items()) and idle < 30:
            batch = await consumer.getmany(1000, 5000)
            idle = 0 if batch else idle + 1  # bounded: a topic that stops answering ends it
            for record in batch:
                reached[record.partition] = record.offset + 1
                if record.offset < targets.get(record.partition, 0):
                    records.append(record)
    finally:
        await consumer.stop()
    return records
