"""Seeded generator of one region scanned on three dates: run folders with known sites over time.

The region is the 4 x 4 grid of 5 km tiles of :mod:`fieldtruth.tests.data.runfolder` (UTM 45N). Its
truth is a list of sites, each with the dates it is present on. Date 1 and 2 cover every tile; date 3
is partly cloudy: tile ``t00`` is ``partial`` and ``t01`` ``not covered``. Each date's run folder holds
the leads of the sites present there and visible (jittered by up to :data:`JITTER_M` per axis, each with
a fresh random id, as scans without ``--previous`` give them), its coverage, a ``run.json`` with the
date and grid, and a ``model_card.json`` (10 m pixels, minimum distance 6 px: link tolerance 50 m).

Run ``python -m fieldtruth.tests.data.region OUT_DIR`` to write one by hand.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
from shapely.geometry import Point, box

from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.runfolder import BUNDLE_SHA, ORIGIN, TILE_M, UTM

DATES = ("2026-01-15", "2026-04-15", "2026-07-15")
JITTER_M = 10.0
CLOUDY = {"t00": ("partial", 0.5), "t01": ("not covered", 0.0)}
"""Tiles of the third date under cloud: status and valid fraction."""


class TruthSite(NamedTuple):
    """A site of the region's truth: its name, class, tile (row, col), offset in the tile, dates present."""

    name: str
    label: str
    tile: tuple[int, int]
    offset: tuple[float, float]
    present: tuple[str, ...]


D1, D2, D3 = DATES
TRUTH: tuple[TruthSite, ...] = (
    TruthSite("always", "brick_kiln", (1, 1), (1000, 1000), (D1, D2, D3)),
    TruthSite("always-2", "brick_kiln", (1, 1), (3000, 1200), (D1, D2, D3)),
    TruthSite("always-3", "brick_kiln", (1, 1), (2000, 3500), (D1, D2, D3)),
    TruthSite("twin-a", "brick_kiln", (2, 2), (2500, 2500), (D1, D2, D3)),
    TruthSite("twin-b", "brick_kiln", (2, 2), (2580, 2500), (D1, D2, D3)),  # 80 m from twin-a
    TruthSite("gone-d2", "brick_kiln", (1, 2), (1500, 1500), (D1,)),
    TruthSite("gone-d3", "fishing_camp", (2, 0), (1200, 3000), (D1, D2)),
    TruthSite("added-d2", "brick_kiln", (1, 2), (3500, 3500), (D2, D3)),
    TruthSite("added-d3", "brick_kiln", (3, 3), (2500, 2500), (D3,)),
    TruthSite("added-d3-b", "brick_kiln", (3, 3), (1000, 1000), (D3,)),
    TruthSite("added-d3-c", "brick_kiln", (3, 3), (4000, 4000), (D3,)),
    TruthSite("under-cloud", "brick_kiln", (0, 0), (2500, 2500), (D1, D2, D3)),
    TruthSite("hidden-d3", "fishing_camp", (0, 1), (2500, 1000), (D1, D2, D3)),
    TruthSite("camp-kiln", "fishing_camp", (2, 1), (2000, 2000), (D1, D2, D3)),
)
"""The region's sites. ``under-cloud`` (t00, partial) and ``hidden-d3`` (t01, not covered) are present on
date 3 but not visible: both must be ``unknown``, never ``not seen lately``."""



def tile_id(row: int, col: int) -> str:
    """The tile id of a grid cell (row 0 is the northern row)."""
    return f"t{row}{col}"


def site_xy(site: TruthSite) -> tuple[float, float]:
    """UTM position of a site."""
    row, col = site.tile
    return ORIGIN[0] + col * TILE_M + site.offset[0], ORIGIN[1] + (3 - row) * TILE_M + site.offset[1]


def visible(site: TruthSite, date: str) -> bool:
    """Whether the site is present on the date and its tile fully covered."""
    return date in site.present and not (date == D3 and tile_id(*site.tile) in CLOUDY)


def coverage_on(date: str) -> gpd.GeoDataFrame:
    """The coverage of the region on a date (EPSG:4326)."""
    rows = []
    for r in range(4):
        for c in range(4):
            status, valid = CLOUDY.get(tile_id(r, c), ("covered", 1.0)) if date == D3 else ("covered", 1.0)
            x0, y0 = ORIGIN[0] + c * TILE_M, ORIGIN[1] + (3 - r) * TILE_M
            rows.append({"tile_id": tile_id(r, c), "valid_fraction": valid, "status": status, "error": None,
                         "geometry": box(x0, y0, x0 + TILE_M, y0 + TILE_M)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM).to_crs("EPSG:4326")


def detections_on(date: str, seed: int, truth: tuple[TruthSite, ...] = TRUTH) -> gpd.GeoDataFrame:
    """The leads of the visible sites on a date, jittered, each with a fresh random id (EPSG:4326)."""
    rng = np.random.default_rng(seed)
    rows = []
    for site in truth:
        if not visible(site, date):
            continue
        x, y = site_xy(site)
        dx, dy = rng.uniform(-JITTER_M, JITTER_M, size=2)
        rows.append({"site_id": "S" + secrets.token_hex(8), "label": site.label,
                     "score": round(float(rng.uniform(0.5, 0.8)), 4), "scene_id": f"synthetic-{date}",
                     "acquired": date, "detector": "kilnnet-v1", "bundle_sha256": BUNDLE_SHA,
                     "tile_id": tile_id(*site.tile), "truth": site.name,
                     "geometry": Point(x + dx, y + dy)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM).to_crs("EPSG:4326")


def write_run(out: Path, date: str, seed: int, truth: tuple[TruthSite, ...] = TRUTH) -> gpd.GeoDataFrame:
    """Write one date's run folder; return its detections (with the ``truth`` name, not written)."""
    files = RunFiles(out)
    out.mkdir(parents=True, exist_ok=True)
    detections = detections_on(date, seed, truth)
    detections.drop(columns="truth").to_parquet(files.detections)
    coverage_on(date).to_parquet(files.coverage)
    files.run_json.write_text(json.dumps({
        "imagery_dates": date, "synthetic": True,
        "grid": {"crs": UTM, "resolution": 10.0, "tile_size": 500, "bounds": [ORIGIN[0], ORIGIN[1],
                 ORIGIN[0] + 4 * TILE_M, ORIGIN[1] + 4 * TILE_M]},
    }), encoding="utf-8")
    files.model_card.write_text(json.dumps({"gsd_m": 10.0, "min_distance_px": 6}), encoding="utf-8")
    return detections


def write_region(
    out: Path, seed: int = 0, truth: tuple[TruthSite, ...] = TRUTH,
) -> dict[str, gpd.GeoDataFrame]:
    """Write the three dates' run folders ``out/<date>``; return date -> its detections (with truth)."""
    return {date: write_run(out / date, date, seed + i, truth) for i, date in enumerate(DATES)}


if __name__ == "__main__":
    write_region(Path(sys.argv[1]))
