"""Running services in one event loop: uvicorn servers and background tasks, one stop signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Generator

import uvicorn
from fastapi import FastAPI


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the runner (several servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(app: FastAPI, host: str, port: int, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on", loop="none"
    )
    server = _Server(config)

    async def stop_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_when_asked())
    try:
        await server.serve()
        if not server.started:
            raise RuntimeError(f"server on {host}:{port} did not start (port in use?)")
    finally:
        watcher.cancel()
        stop.set()


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_all(*jobs: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run the jobs until one ends or a signal comes; then stop them all (first error raised)."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    tasks = [asyncio.create_task(_until_stopped(job, stop)) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for task in tasks:
            if not task.done():
                await asyncio.wait([task], timeout=10)
                task.cancel()


async def _until_stopped(
    job: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
) -> None:
    try:
        await job(stop)
    finally:
        stop.set()
