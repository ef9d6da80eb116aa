"""Reviewers' decisions as training labels: windows of a scan's grid around the decided leads.

A scan found its leads on a tile grid (a metric CRS at the detector's pixel size); reviewers then
confirmed some and rejected others. :func:`decision_windows` reads the scanned imagery back onto that
grid, one window per grid cell holding a decision (the cell grown by half a chip on every side, so a chip
around a site near the cell's edge still fits), and turns each decision into a label there:

- ``confirmed``: a positive at the lead's position, a box of the lead's ``size_px`` (a fine-tune gives it
  the size its bundle predicts there) or else a square of ``point_size_px`` (the scan's detections carry
  no size);
- ``rejected``: a hard negative at that place (training draws chips around it, as around mined false
  detections).

Decisions are partial labels: only the pixels within :data:`NEIGHBOURHOOD_PX` of a decided lead are
supervised, and the loss ignores the rest of a window (a vessel no one reviewed, or one below the scan's
threshold, is neither taught as a vessel nor as background; whole windows taught them as background).
Together with replay of the bundle's training scenes, this is the fine-tune that did not lose F1 on
sen2ships (benchmarks/README.md, the review loop); alone it did. The windows are small (a cell of
``2 x chip`` pixels plus the margins), so memory grows with the number of decisions, not with the
region. The caller decides which decisions are trustworthy (the ledger verified,
latest decision per site); this module knows nothing of the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.coords import BoundingBox
from shapely.geometry import box

from fieldtruth.detectors.data import TrainingScene
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.labels import PixelLabel
from fieldtruth.imagery.grid import Tile, TileGrid
from fieldtruth.imagery.read import read_mosaic
from fieldtruth.ingest.scene import Scene

log = logging.getLogger(__name__)

#: The decisions that become labels; every other status (uncertain, field visit, unverified) does not.
CONFIRMED, REJECTED = "confirmed", "rejected"
#: Partial labels: the distance (pixels) from a decided lead within which a window is supervised.
NEIGHBOURHOOD_PX = 12.0


@dataclass(frozen=True)
class DecidedLead:
    """A decided lead on a scan's grid.

    Attributes:
        x: easting in the grid's CRS. y: northing in the grid's CRS.
        label: the lead's class. decision: ``confirmed`` or ``rejected``.
        size_px: (height, width) of the box a confirmed lead becomes (e.g. the size the bundle being
            fine-tuned predicts there); the window's ``point_size_px`` square when None.
    """

    x: float
    y: float
    label: str
    decision: str
    size_px: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        """Refuse a decision that is not a label."""
        if self.decision not in (CONFIRMED, REJECTED):
            raise ValueError(f"a decided lead is {CONFIRMED!r} or {REJECTED!r}, got {self.decision!r}")
        if self.size_px is not None and min(self.size_px) <= 0:
            raise ValueError(f"a decided lead's size_px is (height, width) > 0 pixels, got {self.size_px!r}")


@dataclass(frozen=True)
class DecisionWindow:
    """One window of decisions read back from the imagery.

    Attributes:
        cell: (row, col) of the grid cell the window grew from (cells of twice the chip size).
        id: the window's scene id.
        bounds: the window in the grid's CRS. resolution: its pixel size.
        data: float32 ``(bands, H, W)`` pixels. valid: bool ``(H, W)``.
        inside: every decided lead inside the window. own: the leads whose cell this is (each lead
            belongs to exactly one window).
        point_size_px: side of the square a confirmed lead becomes (when the lead has no ``size_px``).
        neighbourhood_px: partial labels: only pixels within this distance of a decided lead are
            supervised (the rest of the window is ignored by the loss, neither vessel nor background);
            the whole window is supervised (unlabelled pixels taught as background) when None.
    """

    cell: tuple[int, int]
    id: str
    bounds: BoundingBox
    resolution: float
    data: np.ndarray
    valid: np.ndarray
    inside: tuple[DecidedLead, ...]
    own: tuple[DecidedLead, ...]
    point_size_px: float
    neighbourhood_px: float | None = None

    def scene(self, hidden: frozenset[DecidedLead] = frozenset()) -> TrainingScene:
        """The window as a training scene: confirmed leads as positives, rejected ones as negatives, the
        ``hidden`` leads (held out for cross-fitting) as neither."""
        labels, negatives, places = [], [], []
        left, top = self.bounds.left, self.bounds.top
        for lead in self.inside:
            if lead in hidden:
                continue
            col, row = (lead.x - left) / self.resolution, (top - lead.y) / self.resolution
            places.append((row, col))
            if lead.decision == CONFIRMED:
                h, w = lead.size_px or (self.point_size_px, self.point_size_px)
                labels.append(PixelLabel(lead.label, box(col - w / 2, row - h / 2, col + w / 2, row + h / 2)))
            else:
                negatives.append((row, col))
        rows, cols = self.valid.shape
        supervised = None
        if self.neighbourhood_px is not None:
            r, c = np.mgrid[0:rows, 0:cols] + 0.5
            supervised = np.zeros((rows, cols), dtype=bool)
            for row, col in places:
                supervised |= (r - row) ** 2 + (c - col) ** 2 <= self.neighbourhood_px**2
        return TrainingScene(self.id, self.data, self.valid, labels, {"id": self.id, "size": [cols, rows]},
                             self.resolution, negatives, supervised)


def decision_windows(
    scenes: Sequence[Scene], grid: TileGrid, leads: Sequence[DecidedLead], bands: tuple[str, ...], *,
    chip_size: int, point_size_px: float, name: str, within: BoundingBox | None = None,
    neighbourhood_px: float | None = NEIGHBOURHOOD_PX,
) -> list[DecisionWindow]:
    """Read the windows of a grid that hold decided leads, with the leads as labels.

    Args:
        scenes: the scanned scenes (with their ``band_offsets`` when the detector asks for them), in the
            scan's mosaic order.
        grid: the scan's tile grid (its CRS, bounds and pixel size).
        leads: the decided leads, in the grid's CRS.
        bands: bands to read, in model order.
        chip_size: training chip side (pixels); cells are twice it and windows grow by half of it.
        point_size_px: side of the square a confirmed lead becomes.
        name: prefix of the windows' scene ids (e.g. the run folder's name).
        within: read nothing outside these bounds (grid CRS); the grid's bounds when None.
        neighbourhood_px: supervise only this close to decided leads (partial labels; the whole window
            when None); see :class:`DecisionWindow`.

    Returns:
        One window per cell holding a lead, in grid order; empty when there is no lead.

    Raises:
        TrainingError: the area is smaller than a chip, or a lead lies outside it.
        ImageryReadError: a band file could not be read (the message names it).
    """
    area = within or grid.bounds
    res, cell_px, margin = grid.resolution, 2 * chip_size, chip_size // 2
    width, height = round((area.right - area.left) / res), round((area.top - area.bottom) / res)
    if min(width, height) < chip_size:
        raise TrainingError(f"the scanned area {name!r} is {width} x {height} px, smaller than a training "
                            f"chip ({chip_size} px); train on a larger scan or with smaller chips")
    cells: dict[tuple[int, int], list[DecidedLead]] = {}
    for lead in leads:
        col, row = (lead.x - area.left) / res, (area.top - lead.y) / res
        if not (0 <= col < width and 0 <= row < height):
            raise TrainingError(f"a decided lead of {name!r} lies outside the scanned area; the run folder's "
                                "grid and its ledger do not agree")
        cells.setdefault((int(row // cell_px), int(col // cell_px)), []).append(lead)
    windows = []
    for (i, j), own in sorted(cells.items()):
        r0, c0 = _origin(i * cell_px - margin, height, cell_px + 2 * margin), _origin(
            j * cell_px - margin, width, cell_px + 2 * margin)
        rows, cols = min(cell_px + 2 * margin, height), min(cell_px + 2 * margin, width)
        bounds = BoundingBox(area.left + c0 * res, area.top - (r0 + rows) * res,
                             area.left + (c0 + cols) * res, area.top - r0 * res)
        tile = Tile(f"{name}-c{i}-{j}", i, j, bounds, bounds, grid.crs.to_string(), res)
        chip = read_mosaic(list(scenes), tile, bands)
        inside = tuple(lead for lead in leads if bounds.left <= lead.x < bounds.right
                       and bounds.bottom < lead.y <= bounds.top)
        windows.append(DecisionWindow((i, j), tile.id, bounds, res, chip.data, chip.valid, inside,
                                      tuple(own), point_size_px, neighbourhood_px))
    log.info("%s: %d decided lead(s) read back in %d window(s)", name, len(leads), len(windows))
    return windows


def _origin(start: int, extent: int, side: int) -> int:
    """The first pixel of a window of ``side`` pixels that starts near ``start`` and stays inside."""
    return int(min(max(start, 0), max(extent - side, 0)))


def training_scenes(
    windows: Sequence[DecisionWindow], held_out: frozenset[tuple[int, int]] = frozenset()
) -> list[TrainingScene]:
    """The windows as training scenes, with the decisions of the ``held_out`` cells left out: their
    windows are dropped and their leads are no label in the other windows (cross-fitting)."""
    hidden = frozenset(lead for w in windows if w.cell in held_out for lead in w.own)
    return [w.scene(hidden) for w in windows if w.cell not in held_out]


@dataclass(frozen=True)
class ReviewedRun:
    """The decisions of one reviewed scan, read back as windows.

    Attributes:
        name: what the card calls the run (its folder's name).
        windows: the windows of its decided leads.
        provenance: what the card records of it (run, ledger head, counts; no site id, no position).
    """

    name: str
    windows: tuple[DecisionWindow, ...]
    provenance: dict[str, Any]
