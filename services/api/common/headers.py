"""Headers every answer of the API process carries.

``Referrer-Policy: no-referrer``: a wallboard's URL carries its read key (``?key=``, for TV
browsers that cannot send a header). Without this header, a link or a resource the page loads
from elsewhere would receive that URL, key included, in its ``Referer``. Sent on every answer
(pages, streams, JSON), so no page that takes ``?key=`` can forget it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


class SecurityHeaders:
    """Adds ``HEADERS`` to every HTTP answer (a pure ASGI middleware: streams pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
