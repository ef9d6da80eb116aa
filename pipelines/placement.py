"""Which worker reads which block: each worker keeps to one band of neighbouring blocks.

Neighbouring blocks share the file blocks under their halos. When one worker reads a block and then its
neighbour, GDAL's block cache in that worker's process already holds the shared pixels; when the
scheduler hands out blocks in turn, every worker reads every other block and decodes its halos afresh
(measured on the 16x benchmark scene: 11.1 ms a tile for every other block against 8.8 ms in order,
benchmarks/README.md). So the blocks, in grid order (row by row), are cut into one contiguous band per
worker. Each worker's next block is the next of its own band; a worker whose band is done takes blocks
from the far end of the band with the most work left, so workers that are faster, or join late, share
the work.

Bands hold equal work, not equal counts: a block's work is its tiles' pixels (halos included), as the
model's time is. Tiles on the region's edge are cut short, so a band of edge tiles holds more of them
(the 3 x 3 busan mosaic's 12 tiles: the last row is a quarter as tall; cut by count, one worker got 5.5
seconds of model time and the other 6.5, benchmarks/README.md).

The assignment is a preference, not a rule: tasks are submitted with ``allow_other_workers``, so the
blocks meant for a worker that dies are done by the others.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class WorkerBands(Generic[T]):
    """Blocks in one contiguous band per worker, handed out one at a time.

    Args:
        blocks: the blocks in grid order.
        workers: worker addresses; with none known (a remote scheduler whose workers have not joined
            yet), one band of all blocks, for no worker in particular.
        work: a block's share of the work (e.g. its pixels); every block alike when None.
    """

    def __init__(self, blocks: Sequence[T], workers: Sequence[str],
                 work: Callable[[T], float] | None = None) -> None:
        owners: list[str | None] = sorted(workers) or [None]
        self._work = work or (lambda _block: 1.0)
        total = list(itertools.accumulate(self._work(block) for block in blocks))
        self._bands: dict[str | None, deque[T]] = {}
        self._left: dict[str | None, float] = {}  # each band's work not yet handed out
        start = 0
        for i, owner in enumerate(owners, start=1):
            end = max(start, _cut(total, total[-1] * i / len(owners)) if total else 0)
            self._bands[owner] = deque(blocks[start:end])
            self._left[owner] = sum(map(self._work, self._bands[owner]))
            start = end

    def __len__(self) -> int:
        return sum(len(band) for band in self._bands.values())

    def first(self, limit: int) -> list[tuple[T, str | None]]:
        """Up to ``limit`` blocks to start with: the first of each band, then the second of each, ..."""
        started: list[tuple[T, str | None]] = []
        while len(started) < limit and len(self):
            for owner in self._bands:
                if len(started) < limit and (placed := self._take_own(owner)) is not None:
                    started.append(placed)
        return started

    def next_for(self, worker: str | None) -> tuple[T, str | None] | None:
        """The next block for ``worker`` (which just finished one): the next of its band, else the last
        of the band with the most work left; None when every block has been handed out."""
        if (placed := self._take_own(worker)) is not None:
            return placed
        owner = max(self._bands, key=lambda o: (len(self._bands[o]) > 0, self._left[o]))
        if not self._bands[owner]:
            return None
        block = self._bands[owner].pop()
        self._left[owner] -= self._work(block)
        return block, worker

    def _take_own(self, worker: str | None) -> tuple[T, str | None] | None:
        band = self._bands.get(worker)
        if not band:
            return None
        block = band.popleft()
        self._left[worker] -= self._work(block)
        return block, worker


def _cut(cumulative: list[float], target: float) -> int:
    """How many of the first blocks to take so that their work (``cumulative``, a running sum) comes
    nearest ``target`` (on a tie, the more blocks)."""
    return min(range(len(cumulative) + 1),
               key=lambda n: (abs((cumulative[n - 1] if n else 0.0) - target), -n))
