"""The tile grid: an AOI cut into square tiles in a metric CRS, each with a core and a halo.

Cores partition the AOI's bounding box exactly (tiles on the right and bottom edges are cut short);
halos extend each core by a margin so that a detector sees the context of objects near the core's
edge. A detection belongs to the tile whose core holds it, so each site is reported once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.crs import CRS

from fieldtruth.imagery.errors import GridError


@dataclass(frozen=True)
class Tile:
    """One tile of a grid.

    Attributes:
        id: stable id within the grid (``r<row>c<col>``).
        row: tile row, counted from the top.
        col: tile column, counted from the left.
        core: the part of the AOI this tile is responsible for.
        halo: the core grown by the halo margin; what is read.
        crs: CRS of both boxes (WKT or ``EPSG:n``).
        resolution: pixel size in CRS units.
    """

    id: str
    row: int
    col: int
    core: BoundingBox
    halo: BoundingBox
    crs: str
    resolution: float

    @property
    def transform(self) -> Affine:
        """Pixel -> CRS transform of the halo window."""
        return Affine(self.resolution, 0.0, self.halo.left, 0.0, -self.resolution, self.halo.top)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the halo window in pixels."""
        res = self.resolution
        return (round((self.halo.top - self.halo.bottom) / res), round((self.halo.right - self.halo.left) / res))

    @property
    def halo_px(self) -> int:
        """The halo margin in pixels."""
        return round((self.core.left - self.halo.left) / self.resolution)

    def in_core(self, x: float, y: float) -> bool:
        """Whether a point (in the grid CRS) belongs to this tile: inside the core, half-open on the right
        and bottom so that a point on a shared edge belongs to exactly one tile."""
        core = self.core
        return core.left <= x < core.right and core.bottom < y <= core.top


@dataclass(frozen=True)
class TileGrid:
    """A grid of tiles over a bounding box.

    Attributes:
        bounds: the AOI's bounding box in ``crs``; cores partition it.
        crs: a projected (metric) CRS.
        resolution: pixel size in CRS units.
        tile_size: core side in pixels.
        halo: halo margin in pixels.
    """

    bounds: BoundingBox
    crs: CRS
    resolution: float
    tile_size: int = 512
    halo: int = 32

    def __post_init__(self) -> None:
        if self.crs is None or not self.crs.is_projected:
            raise GridError(f"a tile grid needs a projected, metric CRS; got {self.crs!r} (use the UTM zone of the AOI)")
        if self.resolution <= 0 or self.tile_size <= 0 or self.halo < 0:
            raise GridError(
                f"resolution, tile_size and halo must be positive; got {self.resolution!r}, {self.tile_size!r}, {self.halo!r}"
            )
        left, bottom, right, top = self.bounds
        if not (right > left and top > bottom):
            raise GridError(f"the AOI bounds {tuple(self.bounds)!r} are empty")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of tiles."""
        span = self.tile_size * self.resolution
        left, bottom, right, top = self.bounds
        eps = 1e-9 * span
        return (max(1, math.ceil((top - bottom - eps) / span)), max(1, math.ceil((right - left - eps) / span)))

    def __len__(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def tile(self, row: int, col: int) -> Tile:
        """Return the tile at (row, col)."""
        rows, cols = self.shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise GridError(f"tile ({row}, {col}) is outside the {rows} x {cols} grid")
        span = self.tile_size * self.resolution
        margin = self.halo * self.resolution
        left, bottom, right, top = self.bounds
        core = BoundingBox(
            left + col * span,
            max(bottom, top - (row + 1) * span),
            min(right, left + (col + 1) * span),
            top - row * span,
        )
        halo = BoundingBox(core.left - margin, core.bottom - margin, core.right + margin, core.top + margin)
        return Tile(f"r{row:04d}c{col:04d}", row, col, core, halo, self.crs.to_string(), self.resolution)

    def __iter__(self) -> Iterator[Tile]:
        rows, cols = self.shape
        for row in range(rows):
            for col in range(cols):
                yield self.tile(row, col)
