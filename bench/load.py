"""A bounded HTTP load generator: pre-signed unique events, fixed concurrency, fixed count."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import orjson

from services.simulator import signed_headers
from tests.conftest import canonical


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(len(ordered) * p), len(ordered) - 1)]


def signed_requests(secret: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    bodies = [orjson.dumps(canonical("call.placed", actor=f"u-{i % 50}")) for i in range(count)]
    return [(body, signed_headers(secret, body)) for body in bodies]


def _raw_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "host: 127.0.0.1",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """One request on a kept-alive connection; returns the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def run_load(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int = 32
) -> LoadResult:
    """Keep-alive HTTP/1.1 over raw asyncio streams: a client cheap enough not to be the
    bottleneck (an httpx client saturated at about 400 requests/s on this machine)."""
    parsed = httpx.URL(url)
    raw = [_raw_request(parsed.raw_path.decode(), b, h) for b, h in requests]
    queue = iter(raw)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            for request in queue:
                started = time.perf_counter()
                status = await exchange(reader, writer, request)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += status != 202
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(len(latencies), errors, time.perf_counter() - started, latencies)
