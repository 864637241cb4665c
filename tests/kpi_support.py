"""Running a KPI service inside a test until what it booked is visible."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.kpi.service import KpiService


async def run_kpi_until(
    service: KpiService,
    done: Callable[[], Awaitable[bool]],
    seconds: float = 30,
    settle: float = 0.0,
) -> None:
    """Run ``service`` until ``done()`` holds (failing after ``seconds``), then ``settle`` more
    seconds, so that anything still to come (a double count, say) would land before it stops."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while not await done():
            assert not task.done(), task.exception()
            assert asyncio.get_running_loop().time() < deadline, "KPI never caught up"
            await asyncio.sleep(0.1)
        await asyncio.sleep(settle)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
