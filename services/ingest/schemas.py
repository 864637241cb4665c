"""What the ingest service answers."""

from __future__ import annotations

from pydantic import BaseModel


class Accepted(BaseModel):
    """202: the events Kafka acknowledged, and what was set aside (dead-lettered) or ignored."""

    accepted: int
    duplicates: int
    ids: list[str]
    ignored: int = 0
    deadlettered: int = 0
