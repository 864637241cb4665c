"""Processes the benches start: a free port, a service run until the block ends, readiness."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY, WEBHOOK_SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(
    args: list[str], env: dict[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` running until the block ends (SIGTERM, then SIGKILL after 20 s); its output
    to ``log`` if given."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log is not None:
            out.close()  # type: ignore[union-attr]


async def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code in (200, 404, 405):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def base_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SALESPULSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SALESPULSE_API_KEYS": f"{ADMIN_KEY}:read+admin",
        "SALESPULSE_LOG_LEVEL": "WARNING",
        **extra,
    }
