"""Seeded generator of a small run folder for the review and maps tests (no scan needed).

Writes ``detections.parquet`` (~20 points near 25.5 N 87.0 E, EPSG:4326, the run-folder contract's
columns), ``coverage.parquet`` (a 4 x 4 grid of 5 km tiles built in UTM 45N and reprojected to
EPSG:4326, with covered, partial, not covered and failed tiles) and a minimal ``run.json``.

Run ``python -m fieldtruth.tests.data.runfolder OUT_DIR`` to write one by hand.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
from shapely.geometry import Point, box

from fieldtruth.runfiles import RunFiles

HOSTILE = "<img src=x onerror=alert(1)>"
"""A string that must never reach a map unescaped."""

UTM = "EPSG:32645"
TILE_M = 5_000.0
ORIGIN = (490_000.0, 2_810_000.0)  # UTM 45N, about 25.40 N 86.90 E
STATUS_GRID = (
    ("covered", "covered", "partial", "not covered"),
    ("covered", "covered", "covered", "not covered"),
    ("covered", "failed", "covered", "covered"),
    ("partial", "covered", "covered", "covered"),
)
BUNDLE_SHA = hashlib.sha256(b"fieldtruth test bundle").hexdigest()


class RunFolder(NamedTuple):
    """What :func:`make_run_folder` wrote."""

    path: Path
    detections: gpd.GeoDataFrame
    coverage: gpd.GeoDataFrame


def make_coverage() -> gpd.GeoDataFrame:
    """Return the 4 x 4 tile grid as a GeoDataFrame in EPSG:4326."""
    rows = []
    for r, line in enumerate(STATUS_GRID):
        for c, status in enumerate(line):
            x0, y0 = ORIGIN[0] + c * TILE_M, ORIGIN[1] + (3 - r) * TILE_M
            valid = {"covered": 1.0, "partial": 0.4, "not covered": 0.0, "failed": 0.0}[status]
            rows.append(
                {
                    "tile_id": f"t{r}{c}",
                    "valid_fraction": valid,
                    "status": status,
                    "error": "read failed: synthetic" if status == "failed" else None,
                    "geometry": box(x0, y0, x0 + TILE_M, y0 + TILE_M),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM).to_crs("EPSG:4326")


def make_detections(
    coverage_utm: gpd.GeoDataFrame, n: int = 20, seed: int = 0, hostile: bool = False
) -> gpd.GeoDataFrame:
    """Return ``n`` seeded detections inside the covered/partial tiles, in EPSG:4326."""
    rng = np.random.default_rng(seed)
    usable = coverage_utm[coverage_utm["status"].isin(["covered", "partial"])].reset_index(drop=True)
    rows = []
    for i in range(n):
        tile = usable.iloc[int(rng.integers(len(usable)))]
        x0, y0, x1, y1 = tile.geometry.bounds
        x, y = rng.uniform(x0 + 200, x1 - 200), rng.uniform(y0 + 200, y1 - 200)
        label = "brick_kiln" if rng.random() < 0.7 else "fishing_camp"
        rows.append(
            {
                "site_id": f"site-{i:04d}",
                "label": label,
                "score": round(float(rng.uniform(0.5, 0.99)), 4),
                "scene_id": f"S2B_45RUJ_20260{1 + i % 3}15",
                "acquired": f"2026-0{1 + i % 3}-15",
                "detector": "kilnnet-v1",
                "bundle_sha256": BUNDLE_SHA,
                "tile_id": tile["tile_id"],
                "geometry": Point(x, y),
            }
        )
    if hostile:
        rows[0]["scene_id"] = HOSTILE
        rows[0]["detector"] = f'"</script><script>alert(2)</script>{HOSTILE}'
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM).to_crs("EPSG:4326")


def make_run_folder(out: Path, *, n: int = 20, seed: int = 0, hostile: bool = False) -> RunFolder:
    """Write a run folder with detections, coverage and run.json under ``out`` (created if needed).

    Args:
        out: The run folder to write.
        n: Number of detections.
        seed: Seed for the point positions, labels and scores.
        hostile: Put HTML/JS injection strings in the first detection's scene id and detector.

    Returns:
        The folder and the two GeoDataFrames written (EPSG:4326).
    """
    out.mkdir(parents=True, exist_ok=True)
    coverage = make_coverage()
    detections = make_detections(coverage.to_crs(UTM), n=n, seed=seed, hostile=hostile)
    files = RunFiles(out)
    coverage.to_parquet(files.coverage)
    detections.to_parquet(files.detections)
    files.run_json.write_text(json.dumps({"bundle_sha256": BUNDLE_SHA, "seed": seed, "synthetic": True}))
    return RunFolder(out, detections, coverage)


if __name__ == "__main__":
    make_run_folder(Path(sys.argv[1]))
