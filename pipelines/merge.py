"""Merging tile results into the run's GeoParquet files: detections (one row per site) and coverage."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass

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


def site_id(label: str, crs: str, x: float, y: float) -> str:
    """A stable id for a site: the same class at the same place (to the metre) gets the same id."""
    key = f"{label}|{crs}|{round(x)}|{round(y)}"
    return "S" + hashlib.sha256(key.encode()).hexdigest()[:12]


def suppress_duplicates(points: pd.DataFrame, min_distance: float) -> pd.DataFrame:
    """Keep the best-scoring detection among any closer than ``min_distance`` (greedy by score)."""
    if len(points) < 2 or min_distance <= 0:
        return points
    ordered = points.sort_values(["score", "x", "y"], ascending=[False, True, True]).reset_index(drop=True)
    tree = cKDTree(ordered[["x", "y"]].to_numpy())
    keep = np.ones(len(ordered), dtype=bool)
    for i in range(len(ordered)):
        if keep[i]:
            for j in tree.query_ball_point(ordered.loc[i, ["x", "y"]].to_numpy(), r=min_distance):
                if j > i:
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
    crs = grid.crs.to_string()
    frame = frame.sort_values(["tile_id", "y", "x"], ascending=[True, False, True])
    table = pd.DataFrame(
        {
            "site_id": [site_id(lb, crs, x, y) for lb, x, y in zip(frame.label, frame.x, frame.y, strict=True)],
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
