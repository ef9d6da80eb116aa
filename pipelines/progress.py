"""Progress of long work (a scan's tiles, training steps, evaluated scenes): a bar or periodic lines.

On a terminal (stderr is a TTY) the user sees tqdm's bar. Anywhere else (``nohup``, a scheduler, output
redirected to a log file) a bar only writes carriage returns nobody reads, so a line is written instead
every :data:`DEFAULT_INTERVAL_S` seconds (``FIELDTRUTH_PROGRESS_SECONDS`` changes it), for the first unit
done and at every tenth of the work, with the counts, the rate and an estimate of the time left::

    scan: 412/1,600 tiles (26%); failed 2; leads 37; rate 3.10 Mpx/s; 0:21:05 elapsed, about 1:00:48 left

The lines go through the ``say`` the caller gives (the command line's echo to stderr, which ``-q``
silences), else to this module's log at INFO.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from types import TracebackType

from tqdm import tqdm

from fieldtruth.imagery.grid import Tile
from fieldtruth.pipelines.tileresult import TileResult

log = logging.getLogger(__name__)

#: Seconds between progress lines when stderr is not a terminal.
DEFAULT_INTERVAL_S = 30.0
#: Environment variable that sets those seconds (e.g. 300 for a scan of several days).
INTERVAL_ENV = "FIELDTRUTH_PROGRESS_SECONDS"
#: A line is also written for the first unit done, and each time the work done passes another tenth.
STEPS = 10


def interval_from_env() -> float:
    """Seconds between progress lines: ``FIELDTRUTH_PROGRESS_SECONDS``, else :data:`DEFAULT_INTERVAL_S`.

    Raises:
        ValueError: the variable is set but is not a positive number.
    """
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{INTERVAL_ENV}={text!r} is not a number of seconds above 0; set it to e.g. 30, "
                         "or unset it")
    return seconds


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class Progress:
    """Counts units of work done and shows them: a tqdm bar on a terminal, else periodic lines.

    Args:
        what: what is counted, first word of each line (``scan``, ``train``, ``evaluate``).
        total: units in the whole work.
        unit: name of one unit (``tile``, ``step``, ``scene``).
        say: where lines go; this module's log at INFO when None.
        initial: units already done before this process (a resumed training): shown, but left out
            of the rate.
        interactive: draw a bar; when None, only when stderr is a terminal.
        interval_s: seconds between lines when not interactive; :func:`interval_from_env` when None.
    """

    def __init__(
        self, what: str, total: int, unit: str, *, say: Callable[[str], None] | None = None, initial: int = 0,
        interactive: bool | None = None, interval_s: float | None = None,
    ) -> None:
        if total < 0 or initial < 0:
            raise ValueError(f"progress needs a total and an initial count >= 0, got {total!r} and "
                             f"{initial!r}")
        self.what, self.total, self.unit, self.done = what, total, unit, initial
        self.fields: dict[str, object] = {}
        self._say = say or (lambda line: log.info("%s", line))
        self._initial, self._started = initial, time.perf_counter()
        self._interval = interval_from_env() if interval_s is None else float(interval_s)
        self._lock = threading.Lock()
        self._last_line = self._started
        self._steps_shown = self._step(initial)
        interactive = sys.stderr.isatty() if interactive is None else interactive
        self._bar = tqdm(total=total, initial=initial, unit=unit, desc=what, dynamic_ncols=True,
                         file=sys.stderr, mininterval=0.5) if interactive else None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self._bar is None and total > 0:
            self._ticker = threading.Thread(target=self._tick, name=f"progress-{what}", daemon=True)
            self._ticker.start()

    def update(self, n: int = 1, **fields: object) -> None:
        """Count ``n`` more units done, and set the fields shown beside the count (``failed=2``)."""
        with self._lock:
            self.done += n
            self.fields.update(fields)
            if self._bar is not None:
                self._bar.set_postfix({k: v for k, v in self.fields.items()}, refresh=False)
                self._bar.update(n)
                return
            step = self._step(self.done)
            due = step > self._steps_shown or self.done >= self.total or self.done - n == self._initial
            self._steps_shown = max(step, self._steps_shown)
        if due:
            self._emit()

    def line(self) -> str:
        """The progress line as it stands: counts, fields, time elapsed and an estimate of the time left."""
        elapsed = time.perf_counter() - self._started
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        parts = [f"{self.what}: {self.done:,}/{self.total:,} {self.unit}s{share}"]
        parts += [f"{key.replace('_', ' ')} {value}" for key, value in self.fields.items()]
        done_here = self.done - self._initial
        if 0 < done_here and self.done < self.total:
            left = elapsed / done_here * (self.total - self.done)
            parts.append(f"{_clock(elapsed)} elapsed, about {_clock(left)} left")
        else:
            parts.append(f"{_clock(elapsed)} elapsed")
        return "; ".join(parts)

    def close(self) -> None:
        """Stop the periodic lines and close the bar."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            self._bar.close()

    def _step(self, done: int) -> int:
        return done * STEPS // self.total if self.total else 0

    def _emit(self) -> None:
        with self._lock:
            self._last_line = time.perf_counter()
            text = self.line()
        self._say(text)

    def _tick(self) -> None:
        while not self._stop.wait(min(self._interval, 1.0)):
            if time.perf_counter() - self._last_line >= self._interval:
                self._emit()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TileProgress(Progress):
    """A scan's progress over its tiles: tiles done, failed, leads so far, megapixels per second.

    Args:
        tiles: the tiles this run does (their cores give the megapixels).
        say: where lines go (see :class:`Progress`).
        interactive: as :class:`Progress`.
        interval_s: as :class:`Progress`.
    """

    def __init__(
        self, tiles: Sequence[Tile], say: Callable[[str], None] | None = None, *,
        interactive: bool | None = None, interval_s: float | None = None,
    ) -> None:
        self._pixels = {t.id: _core_pixels(t) for t in tiles}
        self.failed = self.leads = 0
        self._megapixels = 0.0
        super().__init__("scan", len(tiles), "tile", say=say, interactive=interactive, interval_s=interval_s)

    def tile_done(self, result: TileResult) -> None:
        """Count one finished tile (failed or not) and its leads."""
        self.failed += int(not result.ok)
        self.leads += len(result.detections)
        self._megapixels += self._pixels.get(result.tile_id, 0) / 1e6
        rate = self._megapixels / max(time.perf_counter() - self._started, 1e-6)
        self.update(1, failed=self.failed, leads=self.leads, rate=f"{rate:.2f} Mpx/s")


def _core_pixels(tile: Tile) -> int:
    core, res = tile.core, tile.resolution
    return round((core.right - core.left) / res) * round((core.top - core.bottom) / res)


class TrainingProgress:
    """The progress callback of training (``progress(step, total, loss)``): steps, loss and time left.

    Training several members (an ensemble) starts the count again for each.

    Args:
        say: where lines go (see :class:`Progress`).
        interactive: as :class:`Progress`.
        interval_s: as :class:`Progress`.
    """

    def __init__(
        self, say: Callable[[str], None] | None = None, *, interactive: bool | None = None,
        interval_s: float | None = None,
    ) -> None:
        self._say, self._interactive, self._interval = say, interactive, interval_s
        self._progress: Progress | None = None
        self._last_step = 0

    def __call__(self, step: int, total: int, loss: float) -> None:
        if self._progress is None or step <= self._last_step or total != self._progress.total:
            self.close()
            self._progress = Progress("train", total, "step", say=self._say, initial=step - 1,
                                      interactive=self._interactive, interval_s=self._interval)
        self._last_step = step
        self._progress.update(1, loss=f"{loss:.4f}")

    def close(self) -> None:
        """Close the current count (its bar, its periodic lines)."""
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


#: The logger and the start of the message with which evaluation reports each scene it finished.
EVALUATION_LOGGER, EVALUATED = "fieldtruth.detectors.report", "evaluated "


@contextmanager
def evaluation_progress(
    scenes: int, say: Callable[[str], None] | None = None, *, interactive: bool | None = None,
    interval_s: float | None = None,
) -> Iterator[Progress]:
    """Count the scenes an evaluation finishes, from the line it logs for each (``evaluated <id>: ...``).

    The evaluation reports no progress of its own; its log record for each finished scene is counted
    here, whatever the log level (records below the level the user chose are still not shown).
    """
    logger = logging.getLogger(EVALUATION_LOGGER)
    shown_from, level = logger.getEffectiveLevel(), logger.level

    with Progress("evaluate", scenes, "scene", say=say, interactive=interactive,
                  interval_s=interval_s) as progress:

        def count(record: logging.LogRecord) -> bool:
            if record.getMessage().startswith(EVALUATED):
                progress.update(1, last=str(record.args[0]) if record.args else "")
            return record.levelno >= shown_from

        logger.addFilter(count)
        logger.setLevel(min(shown_from, logging.INFO))
        try:
            yield progress
        finally:
            logger.removeFilter(count)
            logger.setLevel(level)
