"""One HTTP call to a provider's REST API, as every client here makes it.

Bounded everywhere: each request has a timeout; a 429 is waited out as ``Retry-After`` (or the
provider's reset header) says, but never longer than ``Retry.max_wait`` and never more than
``Retry.attempts`` times; a 5xx or a timeout is retried the same number of times with a short
backoff. What is left becomes an error named for what failed, whose text never holds the
credentials (the provider's message is quoted, with any secret in it masked).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

Sleep = Callable[[float], Awaitable[None]]
MAX_QUOTED_CHARS = 200


class ProviderError(Exception):
    """A provider's API did not give what was asked; ``reason`` is safe to log and store."""

    def __init__(self, provider: str, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.provider = provider
        self.status = status
        self.reason = reason


class Refused(ProviderError):
    """401 (the credentials are wrong or expired), 403 (missing scope), 404 (no such object)."""


class RateLimited(ProviderError):
    """Still 429 after the bounded retries, or a wait longer than we accept."""


class Unreachable(ProviderError):
    """Timeouts, connection failures and 5xx answers, after the bounded retries."""


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 4  # tries in all, the first included
    max_wait: float = 30.0  # the longest Retry-After honoured; a longer one is a RateLimited
    backoff: float = 0.5  # first wait after a 5xx or a timeout, doubled each time


def retry_after(headers: Mapping[str, str], now: float, reset_header: str | None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or an HTTP date), else from the
    provider's reset header (an epoch time); None when neither says."""
    value = headers.get("retry-after")
    if value is not None:
        if value.strip().isdigit():
            return float(value)
        try:
            return max(email.utils.parsedate_to_datetime(value).timestamp() - now, 0.0)
        except (TypeError, ValueError):
            pass
    reset = headers.get(reset_header) if reset_header else None
    if reset is not None and reset.strip().isdigit():
        return max(float(reset) - now, 0.0)
    return None


def masked(text: str, secrets: Sequence[str]) -> str:
    """A provider's message, short, with any secret in it replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text if len(text) <= MAX_QUOTED_CHARS else f"{text[:MAX_QUOTED_CHARS]}..."


class ApiClient:
    """A provider's REST API over one ``httpx.AsyncClient`` (auth set on it by the caller)."""

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        *,
        secrets: Sequence[str] = (),
        retry: Retry = Retry(),
        reset_header: str | None = None,
        describe: Callable[[httpx.Response], str] = lambda r: r.text,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self._client = client
        self._secrets = tuple(secrets)
        self._retry = retry
        self._reset_header = reset_header
        self._describe = describe
        self._sleep = sleep
        self.waited = 0.0  # seconds spent honouring 429s and backoffs (progress reports)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Any) -> Any:
        return await self.call("POST", path, json=body)

    async def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """The decoded JSON answer; an error after the bounded retries."""
        backoff = self._retry.backoff
        for attempt in range(1, self._retry.attempts + 1):
            last = attempt == self._retry.attempts
            try:
                response = await self._client.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:  # timeouts, refused connections
                if last:
                    raise Unreachable(self.provider, None, self._failure(path, exc)) from None
                await self._wait(backoff)
                backoff *= 2
                continue
            if response.is_success:
                return response.json()
            wait = self._retry_in(response, backoff, last, path)
            await self._wait(wait)
            if response.status_code != 429:
                backoff *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _retry_in(self, response: httpx.Response, backoff: float, last: bool, path: str) -> float:
        """How long to wait before trying ``response``'s request again; raises when not to."""
        status = response.status_code
        said = masked(self._describe(response), self._secrets)
        where = f"{self.provider} {response.request.method} {path}"
        if status == 429:
            wait = retry_after(response.headers, time.time(), self._reset_header)
            wait = self._retry.backoff if wait is None else wait
            if last or wait > self._retry.max_wait:
                raise RateLimited(
                    self.provider, status, f"{where}: rate limited (429) after retries: {said}"
                )
            return wait
        if status >= 500 and not last:
            return backoff
        if status in (401, 403):
            what = "refused the credentials" if status == 401 else "refused access (scope)"
            raise Refused(self.provider, status, f"{where}: {what} ({status}): {said}")
        if status >= 500:
            raise Unreachable(self.provider, status, f"{where}: answered {status}: {said}")
        raise Refused(self.provider, status, f"{where}: answered {status}: {said}")

    def _failure(self, path: str, exc: httpx.TransportError) -> str:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
        return f"{self.provider} {path}: {kind} ({type(exc).__name__})"

    async def _wait(self, seconds: float) -> None:
        self.waited += seconds
        await self._sleep(seconds)
