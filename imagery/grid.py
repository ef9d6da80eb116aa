"""The tile grid: an AOI cut into square tiles in a metric CRS, each with a core and a halo.

Cores partition the AOI's bounding box exactly (tiles on the right and bottom edges are cut short);
halos extend each core by a margin so that a detector sees the context of objects near the core's
edge. A detection belongs to the tile whose core holds it, so each site is reported once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
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
        return (
            round((self.halo.top - self.halo.bottom) / res),
            round((self.halo.right - self.halo.left) / res),
        )

    @property
    def halo_px(self) -> int:
        """The halo margin in pixels."""
        return round((self.core.left - self.halo.left) / self.resolution)

    def in_core(self, x: float, y: float) -> bool:
        """Whether a point (in the grid CRS) belongs to this tile: inside the core, half-open on the right
        and bottom so that a point on a shared edge belongs to exactly one tile."""
        core = self.core
        return core.left <= x < core.right and core.bottom < y <= core.top


#: Tiles per side of the block a scan reads in one window: 2 x 2 tiles of 512 px decode 9 file blocks of
#: 256 px per tile instead of 16 when read alone (see benchmarks/README.md).
DEFAULT_BLOCK = 2

#: Fewest blocks for which tiles are read in blocks by default; a smaller region is read tile by tile, as
#: a few large tasks would leave workers idle (a 4-tile region would be one task).
MIN_BLOCKS = 16


@dataclass(frozen=True)
class TileBlock:
    """Neighbouring tiles of a grid read in one window: a square cell of the grid some tiles across.

    Attributes:
        window: a tile covering the whole cell (the union of its tiles' cores and of their halos); what is
            read, whichever of the cell's tiles are to be done, so that a tile's pixels never depend on
            which of its neighbours were done before.
        tiles: the cell's tiles to process, in grid order.
    """

    window: Tile
    tiles: tuple[Tile, ...]


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
            raise GridError(
                f"a tile grid needs a projected, metric CRS; got {self.crs!r} (use the UTM zone of the AOI)"
            )
        if self.resolution <= 0 or self.tile_size <= 0 or self.halo < 0:
            raise GridError(
                f"resolution, tile_size and halo must be positive; got {self.resolution!r}, "
                f"{self.tile_size!r}, {self.halo!r}"
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
        return (
            max(1, math.ceil((top - bottom - eps) / span)),
            max(1, math.ceil((right - left - eps) / span)),
        )

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

    def blocks(self, side: int, tiles: Iterable[Tile] | None = None) -> list[TileBlock]:
        """Group tiles into blocks of at most ``side`` x ``side`` neighbours, each read in one window.

        Neighbouring tiles share their halos and the file blocks under them; read together, those pixels
        are decoded once. Cells are fixed by the grid (rows and columns counted in steps of ``side``), so
        a tile falls in the same cell, and reads the same window, whichever tiles are left to do.

        Args:
            side: tiles per side of a block (1: every tile alone).
            tiles: the tiles to group (e.g. those a resumed scan has left); the whole grid when None.
        """
        if side < 1:
            raise GridError(f"a block is at least one tile across; got {side!r}")
        cells: dict[tuple[int, int], list[Tile]] = {}
        for tile in self if tiles is None else tiles:
            cells.setdefault((tile.row // side, tile.col // side), []).append(tile)
        return [
            TileBlock(self._cell_window(cell_row, cell_col, side), tuple(members))
            for (cell_row, cell_col), members in cells.items()
        ]

    def default_block(self) -> int:
        """The block side a scan of this grid uses unless told: :data:`DEFAULT_BLOCK` when that makes at least
        :data:`MIN_BLOCKS` blocks, else 1. It depends on the grid alone, so a scan, its resume and
        ``fieldtruth evaluate`` read the same windows."""
        rows, cols = self.shape
        side = DEFAULT_BLOCK
        return side if math.ceil(rows / side) * math.ceil(cols / side) >= MIN_BLOCKS else 1

    def _cell_window(self, cell_row: int, cell_col: int, side: int) -> Tile:
        rows, cols = self.shape
        first = self.tile(cell_row * side, cell_col * side)
        last = self.tile(min(rows, (cell_row + 1) * side) - 1, min(cols, (cell_col + 1) * side) - 1)
        core = BoundingBox(first.core.left, last.core.bottom, last.core.right, first.core.top)
        halo = BoundingBox(first.halo.left, last.halo.bottom, last.halo.right, first.halo.top)
        return Tile(f"{first.id}-{last.id}", first.row, first.col, core, halo, first.crs, first.resolution)
