"""The peer a user would pick instead: Quix Streams on the same topic, doing a simpler job than
the KPI service (per actor and day: a count and the talk time), with RocksDB state and
exactly-once processing. Run in a process and an environment of its own (its Kafka client is
synchronous, and it pins pydantic below the project's): ``bench/kpi.py`` runs

    uv run --no-project --with quixstreams==3.28.1 python bench/quix_peer.py BOOTSTRAP TOPIC COUNT

and reads ``{"per_second": ..., "events": ...}`` from its last line. It imports nothing of the
project.

The rate is taken from the first message processed to the last (start-up, topic checks and
the consumer group's join are left out: the figure is Quix at its steadiest).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from typing import Any

from quixstreams import Application
from quixstreams.state import State


def count_and_talk(value: dict[str, Any], state: State) -> list[int]:
    """The actor's (the message key's) running count and talk time for the event's day."""
    day = str(value.get("time", ""))[:10]
    totals: list[int] = state.get(day, [0, 0])
    totals[0] += 1
    totals[1] += int(value.get("data", {}).get("talk_seconds", 0) or 0)
    state.set(day, totals)
    return totals


def main(servers: str, topic_name: str, count: int) -> dict[str, Any]:
    stamps: list[float] = []

    def processed(_topic: str, _partition: int, _offset: int) -> None:
        now = time.perf_counter()
        if not stamps:
            stamps.append(now)
        stamps[1:] = [now]

    with tempfile.TemporaryDirectory() as state_dir:
        app = Application(
            broker_address=servers,
            consumer_group=f"quix-peer-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            processing_guarantee="exactly-once",
            state_dir=state_dir,
            loglevel="WARNING",
            on_message_processed=processed,
        )
        topic = app.topic(topic_name, value_deserializer="json")
        app.dataframe(topic).apply(count_and_talk, stateful=True)
        app.run(count=count, timeout=300, collect=False)
    elapsed = stamps[-1] - stamps[0] if len(stamps) == 2 else float("nan")
    return {"events": count, "per_second": round(count / elapsed) if elapsed > 0 else None}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
