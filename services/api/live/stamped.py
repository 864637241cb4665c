"""A cache of results computed once per stamp (a data version and a minute, ``stamp_of``),
however many readers ask: the leaderboards' and the contests' standings.

- **Single flight.** One reader computes a key's result at a time; the others wait for it.
- **At most one change old.** While a key is being recomputed, a reader that has the previous
  result gets it at once, unless it must ``wait`` for the current one (a live stream, which
  would otherwise keep the previous result for the current stamp until the next change).
- **Bounded.** At most ``capacity`` keys, the least recently computed evicted first; a key
  whose computation failed keeps no lock behind.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Generic, TypeVar

from services.api.common.freshness import DataVersion

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Stamp = tuple[DataVersion, int]  # what a result is up to date with: data version, minute


def stamp_of(version: DataVersion, now: datetime) -> Stamp:
    """A result is current for one data version and one minute: windows move with the clock."""
    return version, int(now.timestamp()) // 60


class StampedCache(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        self._results: OrderedDict[K, tuple[Stamp, V]] = OrderedDict()
        self.locks: dict[K, asyncio.Lock] = {}
        self._capacity = capacity

    async def get(
        self, key: K, stamp: Stamp, compute: Callable[[], Awaitable[V]], *, wait: bool = False
    ) -> V:
        """``key``'s result for ``stamp``: cached, or computed by ``compute`` (see the module)."""
        cached = self._results.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
        lock = self.locks.setdefault(key, asyncio.Lock())
        if lock.locked() and cached and not wait:
            return cached[1]  # being recomputed: at most one change old
        try:
            async with lock:
                cached = self._results.get(key)
                if cached and cached[0] == stamp:
                    return cached[1]
                result = await compute()
                self._remember(key, stamp, result)
                return result
        finally:
            if key not in self._results and not lock.locked():
                self.locks.pop(key, None)  # failed: no lock kept for a key never cached

    def _remember(self, key: K, stamp: Stamp, result: V) -> None:
        self._results[key] = (stamp, result)
        self._results.move_to_end(key)
        while len(self._results) > self._capacity:
            evicted, _ = self._results.popitem(last=False)
            self.locks.pop(evicted, None)
