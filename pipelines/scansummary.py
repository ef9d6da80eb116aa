"""What a scan did: tiles done, skipped and failed, scenes left out, leads found, and where the time went."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FailedTile:
    """A tile whose pixels could not be read; the rest of the scan went on without it."""

    tile_id: str
    error: str


@dataclass(frozen=True)
class SceneLeftOut:
    """A scene left out of a scan because the water-level offsets its detector asks for could not be read."""

    scene_id: str
    error: str


@dataclass(frozen=True)
class ScanSummary:
    """What a scan did (also recorded in the run folder's ``run.json``).

    Attributes:
        run_dir: the run folder.
        tiles: tiles of the grid.
        done: tiles with a result (this run's or, on resume, an earlier one's).
        skipped: tiles a resumed scan found done and did not redo.
        failed: tiles whose pixels could not be read.
        scenes_left_out: scenes left out (see :class:`SceneLeftOut`).
        detections: leads found (sites, after merging the tiles).
        seconds: wall-clock seconds of the whole scan.
        timings: wall-clock seconds by phase (``startup``, ``tiles``, ``merge``).
        tile_work: seconds summed over tiles (``read``, ``wait``, ``model``): worker time, not wall time;
            reads longer than the model mean a read-bound scan.
        device: where the model ran (``cpu`` or ``cuda``; ``--device auto`` resolved).
        precision: its arithmetic (``float32`` or ``bfloat16``; ``--precision auto`` resolved).
    """

    run_dir: Path
    tiles: int
    done: int = 0
    skipped: int = 0
    failed: tuple[FailedTile, ...] = ()
    scenes_left_out: tuple[SceneLeftOut, ...] = ()
    detections: int = 0
    seconds: float = 0.0
    timings: Mapping[str, float] = field(default_factory=dict)
    tile_work: Mapping[str, float] = field(default_factory=dict)
    device: str = "cpu"
    precision: str = "float32"

    @property
    def complete(self) -> bool:
        """True when no tile failed and no scene was left out."""
        return not self.failed and not self.scenes_left_out
