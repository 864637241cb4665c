"""The SSRF guard: a channel reaches public ``https`` addresses only.

Guarantees, unless ``allow_private`` (``SALESPULSE_ALLOW_PRIVATE_CHANNELS=1``, dev mode):

- a URL that is not ``https``, or has no host, is refused (``url_problem``, pure);
- an address that is loopback, private, link-local, multicast, unspecified, reserved or
  otherwise not global is refused; an IPv6 address that embeds an IPv4 address is judged by
  it too: IPv4-mapped (``::ffff:10.0.0.1``), 6to4 (``2002::/16``, whose relay would carry the
  packets to the embedded address) and Teredo (``2001::/32``: its server and its client)
  (``address_problem``, pure);
- a host is refused when *any* address it resolves to is refused (``destination_problem``:
  what the API checks when a channel is saved). The refusal says only that the host "is not
  a public address": what a name resolves to is not told (an admin key would otherwise read
  the internal DNS through it); the detail goes to a debug log. An address written in the URL
  is the caller's own, and its refusal says what kind it is;
- the same check runs again when connecting (``GuardedTransport``): the host is resolved once,
  every address checked, and the connection made to a checked address, so a DNS answer that
  changes between the check and the connection (rebinding) cannot reach a private address.
  The request keeps its host name: the ``Host`` header and the TLS SNI and certificate check
  are the name's, not the address's.

A refusal is a ``DestinationRefused``: a policy, not a transient failure.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

log = logging.getLogger(__name__)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]  # (host, port) -> addresses
RESOLVE_TIMEOUT_S = 5.0


class DestinationRefused(Exception):
    """The guard refuses this destination (scheme, or an address it resolves to)."""


# --- pure ---------------------------------------------------------------------------------


def _embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries traffic to: 6to4's, Teredo's server and
    client (Python decodes the client's obfuscated address)."""
    embedded = [address.sixtofour] if address.sixtofour is not None else []
    if address.teredo is not None:
        server, client = address.teredo
        embedded += [client, server]
    return embedded


def address_problem(address: IpAddress) -> str | None:
    """Why ``address`` may not be reached, or None for a public (global) address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_problem(address.ipv4_mapped)
        for inner in _embedded(address):
            if (problem := address_problem(inner)) is not None:
                return f"{address} embeds {problem}"
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{name}"):
            return f"{address} is a {name.replace('_', '-')} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def literal_address(host: str) -> IpAddress | None:
    """``host`` as an IP address when it is one (brackets of an IPv6 URL host removed)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def url_problem(url: str, allow_private: bool) -> str | None:
    """What the URL alone refuses: not http(s), no host, not https, a refused IP literal."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a malformed port raises here
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https:// URL"
    if allow_private:
        return None
    if parts.scheme != "https":
        return "must use https (plain http is allowed only with ALLOW_PRIVATE_CHANNELS=1)"
    address = literal_address(parts.hostname)
    return address_problem(address) if address is not None else None


def addresses_problem(host: str, addresses: Iterable[str]) -> str | None:
    """``{host} is not a public address`` if any address ``host`` resolved to is refused (which
    one, and why, only in a debug log), or None if all are public."""
    for text in addresses:
        problem = address_problem(ipaddress.ip_address(text))
        if problem is not None:
            log.debug("channel host refused", extra={"host": host, "reason": problem})
            return f"{host} is not a public address"
    return None


# --- resolution ---------------------------------------------------------------------------


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (DNS, or the literal itself), in the resolver's
    order; ``OSError`` when it does not resolve."""
    loop = asyncio.get_running_loop()
    found = await asyncio.wait_for(
        loop.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
    )
    return list(dict.fromkeys(str(info[4][0]) for info in found))


async def destination_problem(
    url: str, allow_private: bool, resolver: Resolver = resolve
) -> str | None:
    """Why a channel may not point at ``url`` (the URL, then every address of its host)."""
    if problem := url_problem(url, allow_private):
        return problem
    if allow_private:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = await resolver(host, parts.port or 443)
    except (OSError, TimeoutError):
        return f"{host} does not resolve"
    if not addresses:
        return f"{host} does not resolve"
    return addresses_problem(host, addresses)


# --- connecting ---------------------------------------------------------------------------


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every address (unless ``allow_private``), connects to a checked
    address. httpcore starts TLS with the request's host name, so SNI stays the name's."""

    def __init__(self, allow_private: bool, resolver: Resolver = resolve) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private, self._resolver = allow_private, resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        if not self._allow_private and (problem := addresses_problem(host, addresses)):
            raise DestinationRefused(problem)
        last: Exception | None = None
        for address in addresses:  # each one checked above; the first that answers
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def _addresses(self, host: str, port: int, limit_s: float | None) -> list[str]:
        try:
            found = await asyncio.wait_for(self._resolver(host, port), limit_s)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
        if not found:
            raise httpcore.ConnectError(f"{host} does not resolve")
        return found

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are not a channel destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport that refuses non-https URLs and connects through ``GuardedBackend``
    (no proxy: a proxy would connect on our behalf, unchecked)."""

    def __init__(
        self,
        allow_private: bool,
        resolver: Resolver = resolve,
        verify: bool | str = True,
        max_connections: int = 100,
    ) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._allow_private = allow_private
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=GuardedBackend(allow_private, resolver),
            # at least as many as deliveries made at once: a slow receiver must not make the
            # others wait for a connection and time out
            max_connections=max_connections,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https" and not self._allow_private:
            raise DestinationRefused("must use https")
        return await super().handle_async_request(request)


def guarded_client(
    allow_private: bool,
    timeout: float = 10.0,
    resolver: Resolver = resolve,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """The client deliveries go through: guarded, no redirects followed, no proxies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private, resolver, max_connections=max_connections),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
