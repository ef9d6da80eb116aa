"""The shared view of risk cells: cells only, small counts suppressed or merged, numbers rounded.

Rules (``k`` defaults to 3):

- only cell polygons are written: no point, no site attribute, no admin code, no exact score;
- a cell is shown on its own when its sector sites and its detections are each either 0 or at least
  ``k`` (and one of them is at least ``k``); per-sector counts under ``k`` are shown as null;
- the other cells with counts are merged per block of ``merge`` x ``merge`` cells (the union of those
  cells, so every vertex stays a grid vertex) and the block is shown when its sums meet the same rule;
  what remains is suppressed;
- cells whose band is ``not covered`` and that are not shown are dissolved into one ``not covered``
  area without any count: no data is not low risk, and not-covered areas are always shown;
- counts are rounded to the nearest ``round_to`` (never shown below ``k``), scores and contributions to
  one decimal, coverage to 0.1, coordinates to 6 decimals.

Known limit: exact counts at or above ``k`` can still be approached by differencing two shared views of
the same area made with different grids or runs; share one view per area.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from fieldtruth.maps.risk_grid import EQUAL_AREA_CRS, cell_polygons

log = logging.getLogger(__name__)

DEFAULT_K = 3
DEFAULT_MERGE = 4
DEFAULT_ROUND_TO = 5
BAND_ORDER = {"not covered": 0, "low": 1, "medium": 2, "high": 3}
NOTE = (
    "Shared risk view: counts per equal-area cell (EPSG:6933 grid); cells with fewer than k sites are "
    "merged or suppressed; numbers are rounded. Detections are unverified leads that need human "
    "verification before any action. 'not covered' means no usable imagery, not low risk."
)


def _round_count(n: np.ndarray, k: int, round_to: int) -> np.ndarray:
    rounded = np.maximum(k, np.round(n / round_to) * round_to)
    return np.where(n == 0, 0, rounded).astype(np.int64)


def _showable(sites: np.ndarray, dets: np.ndarray, k: int) -> np.ndarray:
    ok_sites = (sites == 0) | (sites >= k)
    ok_dets = (dets == 0) | (dets >= k)
    return ok_sites & ok_dets & ((sites >= k) | (dets >= k))


def _to_4326(geoms: np.ndarray) -> np.ndarray:
    series = gpd.GeoSeries(geoms, crs=EQUAL_AREA_CRS).to_crs("EPSG:4326").to_numpy()
    return shapely.transform(series, lambda c: np.round(c, 6))


def _features(rows: pd.DataFrame, geoms: np.ndarray, ids: list[str], n_cells: np.ndarray, sectors: list[str],
              k: int, round_to: int) -> list[dict[str, Any]]:
    """GeoJSON features of shown cells or blocks (``geoms`` in EPSG:6933), numbers rounded."""
    props = pd.DataFrame({
        "cell_id": ids, "cells": np.asarray(n_cells, dtype=np.int64), "band": rows["band"].to_numpy(),
        "score": np.round(rows["score"].to_numpy(dtype=float), 1),
        "coverage": np.round(rows["coverage"].to_numpy(dtype=float), 1),
        "sites": _round_count(rows["sites_total"].to_numpy(), k, round_to),
        "detections": _round_count(rows["det_count"].to_numpy(), k, round_to),
    })
    records = [_plain(r) for r in props.to_dict("records")]
    for sector in sectors:
        n = rows[f"sites_{sector}"].to_numpy()
        shown = _round_count(n, k, round_to)
        for record, count, value in zip(records, n.tolist(), shown.tolist(), strict=True):
            record[f"sites_{sector}"] = None if 0 < count < k else value
    if "explanation" in rows.columns:
        for record, text in zip(records, rows["explanation"].tolist(), strict=True):
            record["explanation"] = {t: round(v, 1) for t, v in json.loads(text).items()}
    geojson = shapely.to_geojson(_to_4326(geoms)) if len(geoms) else []
    return [
        {"type": "Feature", "properties": r, "geometry": json.loads(g)}
        for r, g in zip(records, geojson, strict=True)
    ]


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value.item() if isinstance(value, np.generic) else value for key, value in record.items()}


def _merge_blocks(
    small: pd.DataFrame, sectors: list[str], merge: int
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Sum the counts of small cells per block; band = highest band, score = highest score."""
    small = small.assign(
        bx=small["ix"] // merge, by=small["iy"] // merge, band_rank=small["band"].map(BAND_ORDER)
    )
    small = small.sort_values(["by", "bx"], kind="stable")
    grouped = small.groupby(["by", "bx"], sort=True)
    sums = grouped[["sites_total", "det_count", *[f"sites_{s}" for s in sectors]]].sum()
    sums["score"] = grouped["score"].max()
    sums["coverage"] = grouped["coverage"].mean()
    sums["band"] = grouped["band_rank"].max().map({v: b for b, v in BAND_ORDER.items()})
    sums["n_cells"] = grouped.size()
    members = np.split(small[["ix", "iy"]].to_numpy(), np.cumsum(sums["n_cells"].to_numpy())[:-1])
    return sums.reset_index(), members


def shared_view(
    cells: gpd.GeoDataFrame,
    *,
    k: int = DEFAULT_K,
    merge: int = DEFAULT_MERGE,
    round_to: int = DEFAULT_ROUND_TO,
) -> dict[str, Any]:
    """Return the shared GeoJSON FeatureCollection (EPSG:4326) of scored risk cells.

    Args:
        cells: The output of :func:`fieldtruth.maps.risk.build_risk_cells` (``ix``, ``iy``, ``cell_m``,
            ``sites_*``, ``det_count``, ``coverage``, ``score``, ``band``, ``explanation``).
        k: Smallest count shown.
        merge: Side, in cells, of the blocks that small cells are merged into.
        round_to: Counts are rounded to a multiple of this.

    Returns:
        A GeoJSON mapping with a ``note``, ``k``, ``cell_m`` and ``grid_crs`` at the top level.
    """
    if k < 1 or merge < 1 or round_to < 1:
        raise ValueError(f"expected k, merge and round_to >= 1; got {k!r}, {merge!r}, {round_to!r}")
    cell_m = float(cells["cell_m"].iloc[0]) if len(cells) else 0.0
    sectors = sorted(
        c.removeprefix("sites_") for c in cells.columns if c.startswith("sites_") and c != "sites_total"
    )
    table = pd.DataFrame(cells.drop(columns="geometry"))
    sites, dets = table["sites_total"].to_numpy(), table["det_count"].to_numpy()
    shown = _showable(sites, dets, k)
    rows = table[shown]
    squares = cell_polygons(rows["ix"].to_numpy(), rows["iy"].to_numpy(), cell_m)
    features = _features(
        rows, squares, rows["cell_id"].astype(str).tolist(), np.ones(len(rows)), sectors, k, round_to
    )
    small = table[~shown & ((sites > 0) | (dets > 0))]
    merged_keys: set[tuple[int, int]] = set()
    if len(small):
        blocks, members = _merge_blocks(small, sectors, merge)
        ok = _showable(blocks["sites_total"].to_numpy(), blocks["det_count"].to_numpy(), k)
        chosen = [m for m, good in zip(members, ok, strict=True) if good]
        for m in chosen:
            merged_keys.update(map(tuple, m.tolist()))
        unions = np.array(
            [shapely.coverage_union_all(cell_polygons(m[:, 0], m[:, 1], cell_m)) for m in chosen]
        )
        picked = blocks[ok]
        ids = [f"block_{bx}_{by}_x{merge}" for bx, by in zip(picked["bx"], picked["by"], strict=True)]
        features += _features(picked, unions, ids, picked["n_cells"].to_numpy(), sectors, k, round_to)
    uncovered = table[~shown & (table["band"] == "not covered")]
    keep = [(a, b) not in merged_keys for a, b in zip(uncovered["ix"], uncovered["iy"], strict=True)]
    uncovered = uncovered[np.array(keep, dtype=bool)] if len(uncovered) else uncovered
    if len(uncovered):
        union = shapely.coverage_union_all(
            cell_polygons(uncovered["ix"].to_numpy(), uncovered["iy"].to_numpy(), cell_m)
        )
        geometry = json.loads(shapely.to_geojson(_to_4326(np.array([union]))[0]))
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {"cell_id": "not_covered", "cells": len(uncovered), "band": "not covered"},
            }
        )
    log.info("shared view: %d feature(s) from %d cell(s), k=%d", len(features), len(cells), k)
    return {
        "type": "FeatureCollection",
        "name": "risk_shared",
        "note": NOTE,
        "k": k,
        "cell_m": cell_m,
        "grid_crs": EQUAL_AREA_CRS,
        "features": features,
    }
