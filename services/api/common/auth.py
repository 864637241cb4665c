"""API keys with scopes: ``Authorization: Bearer <key>``; a read key may come as ``?key=``.

Each route states the scope it needs with ``READ_ACCESS`` or ``ADMIN_ACCESS`` (as a route's or
a router's ``dependencies``), and nothing more: the key is looked up once per request
(``Caller``), and the same dependency declares it in the OpenAPI. They are FastAPI
``Security`` dependencies on two schemes, ``bearerAuth`` (HTTP bearer) and ``queryKey``
(``?key=``), with the scope as the requirement's role (OpenAPI 3.1 allows role names on any
scheme): a read route requires ``[{bearerAuth: [read]}, {queryKey: [read]}]`` (either one), an
admin route ``[{bearerAuth: [admin]}]``. ``scopes_in_openapi`` then shows that scope in each
operation (``x-scopes``, a line of its description, its 401 and 403 answers), so "Authorize"
and "Try it out" work and the docs say which key a route needs. A route with neither
dependency is open (health, metrics, the wallboard's page, the docs).

The schemes never refuse by themselves (``auto_error=False``): a missing or unknown key is
this module's 401 problem, a key without the scope its 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from shared.problems import Forbidden, Unauthorized
from shared.settings import ApiKey, KeyScope

BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    description="An API key: `Authorization: Bearer <key>`. Keys (`SALESPULSE_API_KEYS`) "
    "carry the scopes `read` and `admin`; each operation names the one it needs "
    "(`x-scopes`).",
    auto_error=False,
)
QUERY_KEY = APIKeyQuery(
    name="key",
    scheme_name="queryKey",
    description="A key in the URL, `?key=<key>`, for TV browsers that cannot send a header. "
    "Read-only: it is accepted by the operations that need the `read` scope only, whatever "
    "the key's scopes (URLs end up in logs and browser history).",
    auto_error=False,
)
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
QueryKey = Annotated[str | None, Depends(QUERY_KEY)]


class KeyRing:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = [(k.key.get_secret_value().encode(), k.scopes, k.name) for k in keys]

    def holder_of(self, presented: str) -> tuple[str, frozenset[KeyScope]] | None:
        """The name and scopes of the key presented, or None: compared against every key in
        constant time (no early exit that would leak which)."""
        candidate = presented.encode()
        found: tuple[str, frozenset[KeyScope]] | None = None
        for key, scopes, name in self._keys:
            if hmac.compare_digest(key, candidate):
                found = (name, scopes)
        return found


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the scopes of the key presented, whether it came in the query, and the
    key's name (``SALESPULSE_API_KEYS``: ``name@key:scopes``), which a correction records as
    who made it; never the key."""

    scopes: frozenset[KeyScope]
    from_query: bool
    name: str = ""

    def may(self, scope: KeyScope) -> bool:
        """Keys in the query string are read-only: URLs end up in logs and browser history."""
        return scope in self.scopes and (not self.from_query or scope is KeyScope.read)


def presented_key(request: Request) -> tuple[str | None, bool]:
    """The key of a request (the header's first, then the query's), and whether it came in
    the query: as the security schemes read them, for those who need it outside a route's
    dependencies (the streams count their slots per key)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    query_key = request.query_params.get("key")
    return (query_key, True) if query_key else (None, False)


def identified(
    request: Request, bearer: HTTPAuthorizationCredentials | None, query: str | None
) -> Caller:
    """The caller of the key presented (the bearer's, else the query's); 401 when there is
    none, or an unknown one."""
    key, from_query = (bearer.credentials, False) if bearer is not None else (query, True)
    if not key:
        raise Unauthorized(
            "an API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ring: KeyRing = request.app.state.keyring
    found = ring.holder_of(key)
    if found is None:
        raise Unauthorized("unknown API key", headers={"WWW-Authenticate": "Bearer"})
    name, scopes = found
    return Caller(scopes, from_query, name)


async def reader(request: Request, bearer: BearerKey, query: QueryKey) -> Caller:
    """Who asks to read: a bearer key or ``?key=`` (both schemes declared)."""
    return identified(request, bearer, query)


async def writer(request: Request, bearer: BearerKey) -> Caller:
    """Who asks to write: only ``bearerAuth`` is declared, since a key in the query cannot
    write; it is still read here, so that it is told so (403) rather than asked for a key."""
    return identified(request, bearer, request.query_params.get("key"))


CALLERS: dict[KeyScope, Callable[..., Awaitable[Caller]]] = {
    KeyScope.read: reader,
    KeyScope.admin: writer,
}


def _check_of(scope: KeyScope) -> Callable[[Caller], Awaitable[Caller]]:
    # ``Depends`` as a default, not in ``Annotated``: this module's annotations are strings,
    # evaluated later where ``scope`` is not in sight
    async def check(who: Caller = Depends(CALLERS[scope])) -> Caller:
        if not who.may(scope):
            raise Forbidden(
                f"this key lacks the {scope.value!r} scope"
                + (" (keys in the query string are read-only)" if who.from_query else "")
            )
        return who

    return check


# one check per scope: a route that both lists ``ADMIN_ACCESS`` and takes ``AdminCaller`` runs
# it once (FastAPI caches a dependency per request) and declares it once
_CHECKS = {scope: _check_of(scope) for scope in KeyScope}


def require(scope: KeyScope) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency refusing with 401 (no or unknown key) or 403 (key lacks ``scope``); it
    gives the caller to a route that takes it (``AdminCaller``)."""
    return _CHECKS[scope]


def access(scope: KeyScope) -> list[Any]:
    """What a route (or a router) lists in its ``dependencies`` to need ``scope``."""
    return [Security(require(scope), scopes=[scope.value])]


READ_ACCESS: list[Any] = access(KeyScope.read)
ADMIN_ACCESS: list[Any] = access(KeyScope.admin)
# the admin calling, for a route that records who did what (a correction's ``made_by``)
AdminCaller = Annotated[Caller, Security(require(KeyScope.admin), scopes=[KeyScope.admin.value])]


PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
WAYS = {"bearerAuth": "`Authorization: Bearer <key>`", "queryKey": "`?key=<key>`"}


def scopes_in_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (FastAPI's, changed in place) with the scope each operation needs, read from
    its security requirement, as ``x-scopes`` and as the last line of its description (Swagger
    UI and ReDoc do not show a bearer requirement's roles), and the 401 and 403 it answers."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            requirements: list[dict[str, list[str]]] = operation.get("security", [])
            scopes = sorted(
                {scope for req in requirements for roles in req.values() for scope in roles}
            )
            if not scopes:
                continue
            ways = " or ".join(WAYS.get(name, name) for req in requirements for name in req)
            needs = f"**Needs a key with the {', '.join(f'`{s}`' for s in scopes)} scope**: {ways}."
            operation["x-scopes"] = scopes
            answers = operation.setdefault("responses", {})
            answers.setdefault("401", {"description": "no key, or an unknown one", **PROBLEM})
            lacks = f"the key lacks the {' and '.join(scopes)} scope"
            answers.setdefault("403", {"description": lacks, **PROBLEM})
            operation["description"] = "\n\n".join(
                filter(None, [operation.get("description"), needs])
            )
    return schema
