"""Merging tile results into the run's GeoParquet files: detections (one row per site) and coverage."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from fieldtruth.imagery.grid import TileGrid
from fieldtruth.pipelines.tileresult import FAILED as TILE_FAILED
from fieldtruth.pipelines.tileresult import TileResult

log = logging.getLogger(__name__)

#: Coverage status of a tile from the fraction of its core that holds valid pixels.
NOT_COVERED, PARTIAL, COVERED, FAILED = "not covered", "partial", "covered", "failed"


@dataclass(frozen=True)
class DetectionContext:
    """Facts every detection of a run shares."""

    scene_id: str
    acquired: str | None
    detector: str
    bundle_sha256: str
    min_distance_m: float


def coverage_status(valid_fraction: float, failed: bool) -> str:
    """Coverage status of a tile: never 'no sites' where there was no imagery."""
    if failed:
        return FAILED
    if valid_fraction <= 0.0:
        return NOT_COVERED
    return COVERED if valid_fraction >= 0.99 else PARTIAL


def new_site_id() -> str:
    """A random site id (``S`` and 16 hex digits): nothing in it is derived from the site's place, class,
    time or run, so an id left behind by erasure (in the ledger's tombstone) cannot lead back to the site.
    """
    return "S" + secrets.token_hex(8)


def with_site_ids(result: TileResult) -> TileResult:
    """Stamp a random id on each detection of a tile result that has none, before the result is written.

    This is what makes a site id stable within a run: the id lives in the tile result, so every later
    merge (a resumed scan included) gives the site the same id; a tile is only ever redone when it has no
    result, i.e. before any of its sites was merged. Two runs over the same imagery give different ids;
    sites are linked across runs by position, never by id.
    """
    stamped = tuple(replace(d, site_id=new_site_id()) if d.site_id is None else d for d in result.detections)
    return replace(result, detections=stamped)


def suppress_duplicates(points: pd.DataFrame, min_distance: float) -> pd.DataFrame:
    """Keep the best-scoring detection among any closer than ``min_distance`` (greedy by score)."""
    if len(points) < 2 or min_distance <= 0:
        return points
    ordered = points.sort_values(["score", "x", "y"], ascending=[False, True, True]).reset_index(drop=True)
    close = cKDTree(ordered[["x", "y"]].to_numpy()).query_pairs(r=min_distance, output_type="ndarray")
    keep = np.ones(len(ordered), dtype=bool)
    # pairs (i, j), i < j, in order of i: whether i is kept is settled before its own pairs come
    for i, j in close[np.lexsort((close[:, 1], close[:, 0]))]:
        if keep[i]:
            keep[j] = False
    return ordered[keep]


def merge_detections(
    results: Iterable[TileResult], grid: TileGrid, context: DetectionContext,
) -> gpd.GeoDataFrame:
    """Merge tile detections into one GeoDataFrame of sites in EPSG:4326."""
    rows = [dict(asdict(d), tile_id=r.tile_id) for r in results if r.ok for d in r.detections]
    columns = ["site_id", "label", "score", "scene_id", "acquired", "detector", "bundle_sha256", "tile_id"]
    if not rows:
        return gpd.GeoDataFrame(columns=columns, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
    frame = suppress_duplicates(pd.DataFrame(rows), context.min_distance_m)
    frame = frame.sort_values(["tile_id", "y", "x"], ascending=[True, False, True])
    table = pd.DataFrame(
        {
            "site_id": _site_ids(frame),
            "label": frame.label.to_numpy(),
            "score": frame.score.astype("float64").to_numpy(),
            "scene_id": context.scene_id,
            "acquired": context.acquired,
            "detector": context.detector,
            "bundle_sha256": context.bundle_sha256,
            "tile_id": frame.tile_id.to_numpy(),
        }
    )
    points = gpd.GeoSeries(shapely.points(frame.x.to_numpy(), frame.y.to_numpy()), crs=grid.crs)
    return gpd.GeoDataFrame(table, geometry=points.to_crs("EPSG:4326").to_numpy(), crs="EPSG:4326")


def _site_ids(frame: pd.DataFrame) -> list[str]:
    """The ids stamped on the detections (:func:`with_site_ids`); a detection of a tile result written
    without one (by an older fieldtruth) gets a random id now, which a later merge will not repeat."""
    ids = frame["site_id"].tolist() if "site_id" in frame.columns else [None] * len(frame)
    missing = sum(1 for i in ids if not isinstance(i, str))
    if missing:
        log.warning("%d detection(s) in tile results without a site id: given random ids now", missing)
    return [i if isinstance(i, str) else new_site_id() for i in ids]


def merge_coverage(results: dict[str, TileResult], grid: TileGrid) -> gpd.GeoDataFrame:
    """One row per tile core: valid fraction and coverage status (tiles without a result are 'failed')."""
    ids, fractions, statuses, errors, polygons = [], [], [], [], []
    for tile in grid:
        result = results.get(tile.id) or TileResult(tile.id, status=TILE_FAILED, error="no result recorded")
        ids.append(tile.id)
        fractions.append(float(result.valid_fraction))
        statuses.append(coverage_status(result.valid_fraction, not result.ok))
        errors.append(result.error)
        polygons.append(shapely.segmentize(shapely.box(*tile.core), max_segment_length=tile.resolution * 64))
    table = pd.DataFrame({"tile_id": ids, "valid_fraction": fractions, "status": statuses, "error": errors})
    geometry = gpd.GeoSeries(polygons, crs=grid.crs).to_crs("EPSG:4326")
    return gpd.GeoDataFrame(table, geometry=geometry.to_numpy(), crs="EPSG:4326")
