"""API keys with scopes: ``Authorization: Bearer <key>``; a read key may come as ``?key=``."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request

from shared.problems import Forbidden, Unauthorized
from shared.settings import ApiKey, KeyScope


class KeyRing:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = [(k.key.get_secret_value().encode(), k.scopes) for k in keys]

    def scopes_of(self, presented: str) -> frozenset[KeyScope] | None:
        """Compare against every key in constant time (no early exit that would leak which)."""
        candidate = presented.encode()
        found: frozenset[KeyScope] | None = None
        for key, scopes in self._keys:
            if hmac.compare_digest(key, candidate):
                found = scopes
        return found


def _presented_key(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    query_key = request.query_params.get("key")
    return (query_key, True) if query_key else (None, False)


def require(scope: KeyScope) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing with 401 (no or unknown key) or 403 (key lacks ``scope``)."""

    async def check(request: Request) -> None:
        key, from_query = _presented_key(request)
        if key is None:
            raise Unauthorized(
                "an API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        ring: KeyRing = request.app.state.keyring
        scopes = ring.scopes_of(key)
        if scopes is None:
            raise Unauthorized("unknown API key", headers={"WWW-Authenticate": "Bearer"})
        if scope not in scopes or (from_query and scope is not KeyScope.read):
            raise Forbidden(
                f"this key lacks the {scope.value!r} scope"
                + (" (keys in the query string are read-only)" if from_query else "")
            )

    return check
