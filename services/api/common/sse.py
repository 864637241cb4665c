"""Server-Sent Events: the frame of one event, and the response every stream is sent as."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse


def event(kind: bytes, event_id: str, payload: bytes) -> bytes:
    """One ``event: kind`` with its ``id:`` (what a reconnecting browser sends back)."""
    return b"id: " + event_id.encode() + b"\nevent: " + kind + b"\ndata: " + payload + b"\n\n"


def sse_response(stream: AsyncIterator[bytes]) -> StreamingResponse:
    """``stream`` as an event stream: not cached, not buffered by a proxy on the way."""
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
