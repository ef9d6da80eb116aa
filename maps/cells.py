"""Aggregate exact lead locations to equal-area square cells, suppressing small counts.

Shared outputs never carry exact site locations: only the number of leads per cell of a fixed grid
in an equal-area CRS (EPSG:6933 by default), and only where that number reaches ``min_count``. This
is a first version; disclosure risk (differencing across runs, neighbouring cells) is not yet handled.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
from shapely.geometry import box

from fieldtruth.maps.errors import MapInputError

log = logging.getLogger(__name__)

EQUAL_AREA_CRS = "EPSG:6933"
DEFAULT_CELL_M = 5_000.0
DEFAULT_MIN_COUNT = 3


def aggregate_cells(
    points: gpd.GeoDataFrame,
    *,
    cell_m: float = DEFAULT_CELL_M,
    min_count: int = DEFAULT_MIN_COUNT,
    crs: str = EQUAL_AREA_CRS,
) -> gpd.GeoDataFrame:
    """Count points per square cell of an equal-area grid and drop cells with fewer than ``min_count``.

    Args:
        points: Point geometries with a CRS.
        cell_m: Cell side in metres of ``crs``.
        min_count: Cells with fewer points than this are suppressed (not returned).
        crs: An equal-area projected CRS in metres.

    Returns:
        Cells as polygons in EPSG:4326 with columns ``cell_id`` (``"ix_iy"``) and ``count``; no column
        derived from the exact positions other than the cell itself.

    Raises:
        MapInputError: If the points have no CRS, or ``cell_m``/``min_count`` are not positive.
    """
    if points.crs is None:
        raise MapInputError("expected points with a CRS; got none. Write detections with crs='EPSG:4326'.")
    if not cell_m > 0 or min_count < 1:
        raise MapInputError(f"expected cell_m > 0 and min_count >= 1; got {cell_m!r} and {min_count!r}.")
    empty = gpd.GeoDataFrame({"cell_id": [], "count": []}, geometry=[], crs="EPSG:4326")
    if points.empty:
        return empty
    projected = points.geometry.to_crs(crs)
    ix = np.floor(projected.x.to_numpy() / cell_m).astype(np.int64)
    iy = np.floor(projected.y.to_numpy() / cell_m).astype(np.int64)
    keys, counts = np.unique(np.stack([iy, ix], axis=1), axis=0, return_counts=True)  # sorted by iy, ix
    keep = counts >= min_count
    log.info(
        "aggregated %d point(s) to %d cell(s); %d cell(s) under %d suppressed",
        len(points),
        int(keep.sum()),
        int((~keep).sum()),
        min_count,
    )
    if not keep.any():
        return empty
    cells_ij = [(int(i), int(j)) for j, i in keys[keep]]
    geometry = [box(i * cell_m, j * cell_m, (i + 1) * cell_m, (j + 1) * cell_m) for i, j in cells_ij]
    cells = gpd.GeoDataFrame(
        {"cell_id": [f"{i}_{j}" for i, j in cells_ij], "count": counts[keep].astype(int)},
        geometry=geometry,
        crs=crs,
    )
    return cells.to_crs("EPSG:4326")
