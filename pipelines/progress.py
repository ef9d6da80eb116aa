"""Progress of long work: a bar with tiles done, failed and remaining, and throughput."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class TileProgress:
    """A progress bar over tiles, written to stderr, that counts failures separately.

    Args:
        total: tiles to process in this run.
        disable: hide the bar (e.g. ``-q``); None hides it when stderr is not a terminal and shows
            periodic lines instead.
    """

    def __init__(self, total: int, disable: bool | None = None) -> None:
        self.failed = 0
        interactive = sys.stderr.isatty()
        self._bar = tqdm(
            total=total, unit="tile", desc="tiles", disable=disable,
            mininterval=0.5 if interactive else 5.0, dynamic_ncols=True, file=sys.stderr,
        )

    def update(self, *, failed: bool = False) -> None:
        """Record one finished tile."""
        self.failed += int(failed)
        self._bar.set_postfix(failed=self.failed, remaining=self._bar.total - self._bar.n - 1, refresh=False)
        self._bar.update(1)

    def __enter__(self) -> TileProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.close()
