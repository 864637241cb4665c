"""The worker's jobs (``services.worker.jobs``): what ``/readyz`` says of a job as it starts,
succeeds and fails, and a failed run tried again sooner than the job's interval."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from services.worker.jobs import START_GRACE_S, JobHealth, Periodic


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_job_is_ready_while_it_starts_then_as_its_last_run_ended() -> None:
    clock = Clock()
    health = JobHealth(60, clock)
    clock.now += 60 + START_GRACE_S - 1
    assert health.ready()  # its first run may still be under way
    clock.now += 2
    assert not health.ready()  # no run finished in its first interval: stuck
    health.start()
    assert health.ready()  # the worker began it only now (it waited for the schema)
    health.failed()
    assert not health.ready()
    health.failed()
    assert (health.ready(), health.failures) == (False, 2)
    health.succeeded()
    clock.now += 3600  # however long since
    assert (health.ready(), health.failures) == (True, 0)


async def test_a_failed_run_is_tried_again_soon_and_the_job_is_not_ready_until_one_succeeds(
    db: AsyncEngine,
) -> None:
    runs: list[bool] = []
    seen: list[bool] = []

    async def step() -> None:
        seen.append(job.health.ready())
        runs.append(len(runs) >= 2)  # the first two fail
        if not runs[-1]:
            raise RuntimeError("not yet")

    job = Periodic("flaky", 60, step, db, retry_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(job.run(stop))
    for _ in range(200):
        if job.health.last_ok:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the next run is a minute away
    stop.set()
    await asyncio.wait_for(task, 5)
    assert runs == [False, False, True]  # retried within moments, not after 60 s
    assert seen == [True, False, False]  # not ready after the first failure
    assert job.health.ready()
