"""API keys with scopes: ``Authorization: Bearer <key>``; a read key may come as ``?key=``.

The key is looked up once per request (``Caller``); each route states the scope it needs with
``READ_ACCESS`` or ``ADMIN_ACCESS``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the scopes of the key presented, and whether it came in the query."""

    scopes: frozenset[KeyScope]
    from_query: bool

    def may(self, scope: KeyScope) -> bool:
        """Keys in the query string are read-only: URLs end up in logs and browser history."""
        return scope in self.scopes and (not self.from_query or scope is KeyScope.read)


def presented_key(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    query_key = request.query_params.get("key")
    return (query_key, True) if query_key else (None, False)


async def caller(request: Request) -> Caller:
    """The caller's key and scopes; 401 when there is no key, or an unknown one."""
    key, from_query = presented_key(request)
    if key is None:
        raise Unauthorized(
            "an API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ring: KeyRing = request.app.state.keyring
    scopes = ring.scopes_of(key)
    if scopes is None:
        raise Unauthorized("unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return Caller(scopes, from_query)


CurrentCaller = Annotated[Caller, Depends(caller)]


def require(scope: KeyScope) -> Callable[[Caller], Awaitable[None]]:
    """A dependency refusing with 401 (no or unknown key) or 403 (key lacks ``scope``)."""

    async def check(who: CurrentCaller) -> None:
        if not who.may(scope):
            raise Forbidden(
                f"this key lacks the {scope.value!r} scope"
                + (" (keys in the query string are read-only)" if who.from_query else "")
            )

    return check


READ_ACCESS: list[Any] = [Depends(require(KeyScope.read))]
ADMIN_ACCESS: list[Any] = [Depends(require(KeyScope.admin))]
