"""Server-Sent Events: the frame of one event, the response every stream is sent as, and the
bound on how many streams are open at once.

A stream holds a connection and a task for as long as the client stays. ``StreamSlots`` caps
them: per API key (a key that opens more streams than ``per_key``: 429; one runaway wallboard
script cannot take them all) and in all (``total``: 503, so the process keeps serving its other
requests). Both answers carry ``Retry-After``; a browser's ``EventSource`` retries by itself.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from services.api.common.auth import presented_key
from shared.problems import Problem, Unavailable

RETRY_AFTER_SECONDS = "10"


def event(kind: bytes, event_id: str, payload: bytes) -> bytes:
    """One ``event: kind`` with its ``id:`` (what a reconnecting browser sends back)."""
    return b"id: " + event_id.encode() + b"\nevent: " + kind + b"\ndata: " + payload + b"\n\n"


class Slot:
    """One open stream, counted against its key and the total until ``release``d (once)."""

    def __init__(self, slots: StreamSlots, key: str) -> None:
        self._slots, self._key, self._held = slots, key, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.released(self._key)


class StreamSlots:
    """How many streams are open, per key and in all (one per app)."""

    def __init__(self, total: int, per_key: int) -> None:
        self.total, self.per_key = total, per_key
        self._open: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return sum(self._open.values())

    def take(self, key: str) -> Slot:
        """A slot for a new stream of ``key``; a problem when a bound is reached."""
        retry = {"Retry-After": RETRY_AFTER_SECONDS}
        if self._open[key] >= self.per_key:
            raise Problem(
                f"this key has {self.per_key} streams open, the most one key may hold; "
                "close one, or give each screen a key of its own",
                status=429,
                slug="too-many-streams",
                headers=retry,
            )
        if self.open >= self.total:
            raise Unavailable(
                f"{self.total} streams are open, the most this process serves; try again later",
                headers=retry,
            )
        self._open[key] += 1
        return Slot(self, key)

    def released(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]


def stream_slot(request: Request) -> Slot:
    """A slot for the stream this request opens, counted against its key (never the key
    itself: a digest)."""
    key, _ = presented_key(request)
    digest = hashlib.sha256((key or "").encode()).hexdigest()[:16]
    slots: StreamSlots = request.app.state.stream_slots
    return slots.take(digest)


async def _holding(stream: AsyncIterator[bytes], slot: Slot) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            yield chunk
    finally:
        slot.release()


def sse_response(stream: AsyncIterator[bytes], request: Request) -> StreamingResponse:
    """``stream`` as an event stream: not cached, not buffered by a proxy on the way. The
    request's slot (``stream_slot``: taken last, once every other check has passed) is given
    back when the stream ends, or when the response does (a client gone before the first
    event never starts the stream)."""
    slot = stream_slot(request)
    return StreamingResponse(
        _holding(stream, slot),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(slot.release),
    )
