"""The shared view of what changed in a region: counts of sites by status over time per equal-area cell.

The cells are the risk cells' fixed grid (:mod:`fieldtruth.maps.risk_grid`: squares of ``cell_m`` in
EPSG:6933 from the CRS origin), so two views of the same region on different dates use the same cells.
Rules (``k`` defaults to 3, as for the shared risk view):

- only cell squares are written, with the counts of sites ``new``, ``persistent``, ``not seen lately``
  and ``unknown``: no point, no site id, no score;
- a cell is shown only when *every* one of its counts is 0 or at least ``k`` (and one is at least
  ``k``); otherwise the whole cell is left out, so no shown count can be subtracted from another (a
  total, another status, another date) to give a count under ``k``;
- small cells are never merged into blocks: merged blocks that differ from one date to the next are the
  classic way to difference a small cell out of two releases;
- counts are rounded as in the shared risk view (to ``round_to``, never below ``k``).

Two views of different dates are computed independently from their own counts, so a suppressed cell's
count changes nothing in either view: a cell with 1 or 2 new sites gives the same bytes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import shapely

from fieldtruth.maps.risk_grid import EQUAL_AREA_CRS, cell_polygons
from fieldtruth.maps.risk_shared import DEFAULT_K, DEFAULT_ROUND_TO, _round_count, _to_4326

log = logging.getLogger(__name__)

#: The counted statuses, as columns of the cell table and properties of the shared view.
COUNT_COLUMNS = ("new", "persistent", "not_seen_lately", "unknown")
NOTE = (
    "Shared change view: counts of sites per equal-area cell (EPSG:6933 grid) by status over time; "
    "a cell is shown only when every count is 0 or at least k; numbers are rounded. Sites are "
    "unverified leads that need human verification before any action. 'unknown' means the place had "
    "no usable imagery lately, never that the site is gone."
)


def shared_change_view(cells: pd.DataFrame, *, cell_m: float, k: int = DEFAULT_K,
                       round_to: int = DEFAULT_ROUND_TO, since: str | None = None,
                       dates: list[str] | None = None) -> dict[str, Any]:
    """Return the shared GeoJSON FeatureCollection (EPSG:4326) of change counts per cell.

    Args:
        cells: One row per cell with ``ix``, ``iy`` and the :data:`COUNT_COLUMNS`.
        cell_m: The cells' side in metres.
        k: Smallest count shown.
        round_to: Counts are rounded to a multiple of this.
        since: The date "new" is counted from.
        dates: The imagery dates of the runs.

    Raises:
        ValueError: If ``k``, ``round_to`` or ``cell_m`` is not positive, or a column is missing.
    """
    if k < 1 or round_to < 1 or not cell_m > 0:
        raise ValueError(f"expected k, round_to and cell_m > 0; got {k!r}, {round_to!r}, {cell_m!r}")
    missing = [c for c in ("ix", "iy", *COUNT_COLUMNS) if c not in cells.columns]
    if missing:
        raise ValueError(f"expected columns {missing!r} in the change cells; "
                         "build them with changes.cell_counts")
    counts = cells[list(COUNT_COLUMNS)].to_numpy(dtype=np.int64).reshape(-1, len(COUNT_COLUMNS))
    fine = ((counts == 0) | (counts >= k)).all(axis=1) & (counts >= k).any(axis=1)
    shown = cells[fine]
    squares = cell_polygons(shown["ix"].to_numpy(), shown["iy"].to_numpy(), cell_m)
    geoms = [json.loads(g) for g in shapely.to_geojson(_to_4326(squares))] if len(shown) else []
    rounded = {c: _round_count(shown[c].to_numpy(dtype=np.int64), k, round_to) for c in COUNT_COLUMNS}
    features = []
    for i, (ix, iy) in enumerate(zip(shown["ix"], shown["iy"], strict=True)):
        props: dict[str, Any] = {"cell_id": f"{int(ix)}_{int(iy)}"}
        props.update({c: int(rounded[c][i]) for c in COUNT_COLUMNS})
        features.append({"type": "Feature", "properties": props, "geometry": geoms[i]})
    log.info("shared change view: %d of %d cell(s) shown, k=%d", len(features), len(cells), k)
    return {"type": "FeatureCollection", "name": "changes_shared", "note": NOTE, "k": k, "cell_m": cell_m,
            "grid_crs": EQUAL_AREA_CRS, "since": since, "dates": sorted(dates or []), "features": features}

