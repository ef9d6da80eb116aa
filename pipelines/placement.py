"""Which worker reads which block: each worker keeps to one band of neighbouring blocks.

Neighbouring blocks share the file blocks under their halos. When one worker reads a block and then its
neighbour, GDAL's block cache in that worker's process already holds the shared pixels; when the
scheduler hands out blocks in turn, every worker reads every other block and decodes its halos afresh
(measured on the 16x benchmark scene: 11.1 ms a tile for every other block against 8.8 ms in order,
benchmarks/README.md). So the blocks, in grid order (row by row), are cut into one contiguous band per
worker. Each worker's next block is the next of its own band; a worker whose band is done takes blocks
from the far end of the longest band left, so workers that are faster, or join late, share the work.

The assignment is a preference, not a rule: tasks are submitted with ``allow_other_workers``, so the
blocks meant for a worker that dies are done by the others.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class WorkerBands(Generic[T]):
    """Blocks in one contiguous band per worker, handed out one at a time.

    Args:
        blocks: the blocks in grid order.
        workers: worker addresses; with none known (a remote scheduler whose workers have not joined
            yet), one band of all blocks, for no worker in particular.
    """

    def __init__(self, blocks: Sequence[T], workers: Sequence[str]) -> None:
        owners: list[str | None] = sorted(workers) or [None]
        size, extra = divmod(len(blocks), len(owners))
        self._bands: dict[str | None, deque[T]] = {}
        start = 0
        for i, owner in enumerate(owners):
            end = start + size + (1 if i < extra else 0)
            self._bands[owner] = deque(blocks[start:end])
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
        of the longest band left; None when every block has been handed out."""
        if (placed := self._take_own(worker)) is not None:
            return placed
        longest = max(self._bands.values(), key=len, default=None)
        if not longest:
            return None
        return longest.pop(), worker

    def _take_own(self, worker: str | None) -> tuple[T, str | None] | None:
        band = self._bands.get(worker)
        return (band.popleft(), worker) if band else None
