"""The risk cell grid: squares of ``cell_m`` metres in EPSG:6933 (equal-area), ids from integer indices.

Cell ``(ix, iy)`` covers ``[ix * cell_m, (ix + 1) * cell_m) x [iy * cell_m, (iy + 1) * cell_m)`` in
EPSG:6933 and is named ``"{ix}_{iy}"``. The grid's origin is the CRS origin, so any run, any AOI and any
reader recomputes exactly the same cells from ``cell_m`` alone.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from fieldtruth.maps.errors import RiskConfigError, RiskInputError

log = logging.getLogger(__name__)

EQUAL_AREA_CRS = "EPSG:6933"
DEFAULT_CELL_M = 5_000.0
#: Refuse grids larger than this (choose a larger cell size).
MAX_CELLS = 4_000_000


class CellGrid(NamedTuple):
    """The cells of the grid that overlap the AOI (with area), as index arrays in row-major order (iy, then
    ix)."""

    cell_m: float
    ix: np.ndarray
    iy: np.ndarray
    aoi: BaseGeometry  # in EPSG:6933

    @property
    def ids(self) -> np.ndarray:
        """Cell ids ``"ix_iy"``."""
        return np.char.add(np.char.add(self.ix.astype(str), "_"), self.iy.astype(str))

    def polygons(self) -> np.ndarray:
        """Cell squares in EPSG:6933."""
        return cell_polygons(self.ix, self.iy, self.cell_m)

    def lookup(self, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        """Return the position of each ``(ix, iy)`` in this grid, -1 where it is not one of its cells."""
        keys = _key(self.ix, self.iy)
        order = np.argsort(keys)
        wanted = _key(ix, iy)
        pos = np.searchsorted(keys[order], wanted)
        pos = np.clip(pos, 0, len(keys) - 1)
        found = keys[order][pos] == wanted if len(keys) else np.zeros(len(wanted), dtype=bool)
        return np.where(found, order[pos] if len(keys) else -1, -1)


def _key(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    return (iy.astype(np.int64) << 32) + (ix.astype(np.int64) + (1 << 31))


def cell_polygons(ix: np.ndarray, iy: np.ndarray, cell_m: float) -> np.ndarray:
    """Squares of cells ``(ix, iy)`` in EPSG:6933."""
    return shapely.box(ix * cell_m, iy * cell_m, (ix + 1) * cell_m, (iy + 1) * cell_m)


def cell_indices(x: np.ndarray, y: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell indices of EPSG:6933 coordinates."""
    return np.floor(x / cell_m).astype(np.int64), np.floor(y / cell_m).astype(np.int64)


def build_grid(aoi: BaseGeometry, cell_m: float = DEFAULT_CELL_M) -> CellGrid:
    """Return the cells that intersect ``aoi`` (a geometry in EPSG:6933).

    Raises:
        RiskConfigError: If ``cell_m`` is not positive or the grid would exceed :data:`MAX_CELLS`.
        RiskInputError: If the AOI is empty.
    """
    if not cell_m > 0:
        raise RiskConfigError(f"expected a cell size > 0 metres; got {cell_m!r}.")
    if aoi is None or aoi.is_empty:
        raise RiskInputError("expected a non-empty AOI (the run's coverage); got an empty geometry.")
    x0, y0, x1, y1 = aoi.bounds
    ix0, iy0 = int(np.floor(x0 / cell_m)), int(np.floor(y0 / cell_m))
    ix1, iy1 = int(np.ceil(x1 / cell_m)), int(np.ceil(y1 / cell_m))
    if (ix1 - ix0) * (iy1 - iy0) > MAX_CELLS:
        raise RiskConfigError(
            f"expected at most {MAX_CELLS} candidate cells; an AOI of {x1 - x0:.0f} x {y1 - y0:.0f} m at "
            f"{cell_m:g} m gives {(ix1 - ix0) * (iy1 - iy0)}. Use a larger --cell-size."
        )
    iy, ix = np.mgrid[iy0:iy1, ix0:ix1]
    ix, iy = ix.ravel().astype(np.int64), iy.ravel().astype(np.int64)
    shapely.prepare(aoi)
    squares = cell_polygons(ix, iy, cell_m)
    hit = shapely.intersects(aoi, squares) & ~shapely.touches(aoi, squares)  # overlap with area
    log.info("grid: %d cell(s) of %g m meet the AOI", int(hit.sum()), cell_m)
    return CellGrid(float(cell_m), ix[hit], iy[hit], aoi)


def points_to_cells(grid: CellGrid, points: gpd.GeoSeries) -> np.ndarray:
    """Return the grid position of each point inside the AOI, -1 for points outside (or missing).

    A point on the AOI's boundary is outside: "inside" means in the interior, as ``contains_xy`` says.
    """
    projected = points.to_crs(EQUAL_AREA_CRS).to_numpy()
    projected = shapely.point_on_surface(projected)
    x, y = shapely.get_x(projected), shapely.get_y(projected)
    ok = np.isfinite(x) & np.isfinite(y)
    inside = np.zeros(len(x), dtype=bool)
    inside[ok] = shapely.contains_xy(grid.aoi, x[ok], y[ok])
    ix, iy = cell_indices(np.where(ok, x, 0.0), np.where(ok, y, 0.0), grid.cell_m)
    pos = grid.lookup(ix, iy)
    return np.where(inside, pos, -1)


def coverage_fraction(grid: CellGrid, tiles: gpd.GeoDataFrame) -> np.ndarray:
    """Fraction of each cell's area under tiles (EPSG:6933 polygons, assumed not to overlap), 0..1."""
    cells = grid.polygons()
    fraction = np.zeros(len(cells))
    if tiles.empty or not len(cells):
        return fraction
    tile_geoms = tiles.geometry.to_numpy()
    tree = shapely.STRtree(cells)
    tile_i, cell_i = tree.query(tile_geoms, predicate="intersects")
    areas = shapely.area(shapely.intersection(cells[cell_i], tile_geoms[tile_i]))
    np.add.at(fraction, cell_i, areas)
    return np.clip(fraction / (grid.cell_m**2), 0.0, 1.0)
