"""Seeded run folder for the map tests and the benchmark: scene bands, risk cells, sectors, hostile strings.

Builds on :func:`fieldtruth.tests.data.runfolder.make_run_folder` (detections and coverage near
25.5 N 87.0 E) and adds: an RGB+NIR scene at 40 m in UTM 45N whose ``run.json`` entry matches
``Scene.describe()``, ``model_card.json`` with held-out metrics, ``risk.parquet`` (2.5 km cells),
``risk_shared.geojson`` (the cells a partner may see) and ``sectors.parquet``. With ``hostile=True``
every string column carries an injection attempt. No test lives here.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, box

from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.runfolder import HOSTILE, ORIGIN, TILE_M, UTM, RunFolder, make_run_folder

HOSTILE_JS = "`${alert(3)}` </script><script>alert(4)</script>"
PIXEL_M = 40.0
SIZE_PX = int(4 * TILE_M / PIXEL_M)


def write_scene(out: Path, detections_utm: gpd.GeoDataFrame, seed: int = 0) -> dict:
    """Write B04/B03/B02/B08 GeoTIFFs over the 4 x 4 tile grid, bright rings at the sites; return
    describe()."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    west, north = ORIGIN[0], ORIGIN[1] + 4 * TILE_M
    transform = from_origin(west, north, PIXEL_M, PIXEL_M)
    yy, xx = np.mgrid[0:SIZE_PX, 0:SIZE_PX]
    base = 900 + 300 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + rng.normal(0, 60, (SIZE_PX, SIZE_PX))
    sites = np.zeros((SIZE_PX, SIZE_PX))
    for p in detections_utm.geometry:
        col, row = (p.x - west) / PIXEL_M, (north - p.y) / PIXEL_M
        d = np.hypot(xx - col, yy - row)
        sites += (np.abs(d - 3) < 1.2) * 1500.0
    bands = {}
    for name, file, gain in (
        ("red", "B04", 1.3),
        ("green", "B03", 1.0),
        ("blue", "B02", 0.8),
        ("nir", "B08", 1.6),
    ):
        data = np.clip(base * gain + sites * (1.4 if name == "red" else 0.6), 1, 10000).astype("uint16")
        data[: SIZE_PX // 8, -SIZE_PX // 4 :] = 0  # a nodata corner
        path = out / f"{file}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=SIZE_PX,
            height=SIZE_PX,
            count=1,
            dtype="uint16",
            crs=UTM,
            transform=transform,
            nodata=0,
        ) as dst:
            dst.write(data, 1)
        bands[name] = {"href": str(path), "index": 1}
    return {
        "id": "S2B_45RUJ_20260115",
        "crs": UTM,
        "bounds": [west, north - SIZE_PX * PIXEL_M, west + SIZE_PX * PIXEL_M, north],
        "resolution": [PIXEL_M, PIXEL_M],
        "size": [SIZE_PX, SIZE_PX],
        "acquired": "2026-01-15",
        "bands": bands,
    }


def _risk_cells(coverage: gpd.GeoDataFrame, hostile: bool) -> gpd.GeoDataFrame:
    cov = coverage.to_crs(UTM)
    step = TILE_M / 2
    rows = []
    for i in range(8):
        for j in range(8):
            cell = box(
                ORIGIN[0] + i * step,
                ORIGIN[1] + j * step,
                ORIGIN[0] + (i + 1) * step,
                ORIGIN[1] + (j + 1) * step,
            )
            status = cov[cov.contains(cell.centroid)]["status"].iloc[0]
            score = round(((i * 7 + j * 3) % 10) / 10, 2)
            band = (
                "not covered"
                if status in ("not covered", "failed")
                else ("low", "medium", "high")[min(int(score * 3), 2)]
            )
            rows.append(
                {
                    "cell_id": f"c{i}{j}",
                    "score": None if band == "not covered" else score,
                    "band": band,
                    "explanation": f"kiln density {score:.1f}; sector share",
                    "geometry": cell,
                }
            )
    cells = gpd.GeoDataFrame(rows, crs=UTM).to_crs("EPSG:4326")
    if hostile:
        cells.loc[0, "explanation"] = HOSTILE + HOSTILE_JS
        cells.loc[1, "cell_id"] = HOSTILE_JS
    return cells


def make_map_run(out: Path, *, n: int = 20, seed: int = 1, hostile: bool = False) -> RunFolder:
    """Write the full map fixture under ``out``; return the run folder (detections and coverage EPSG:4326)."""
    run, files = make_run_folder(out, n=n, seed=seed, hostile=hostile), RunFiles(out)
    detections = run.detections
    if hostile:
        detections.loc[1, "label"] = HOSTILE_JS
        detections.loc[1, "acquired"] = HOSTILE
        detections.loc[2, "tile_id"] = HOSTILE_JS
        detections.loc[2, "site_id"] = "site-0002" + HOSTILE
        detections.to_parquet(files.detections)
    scene = write_scene(out / "scene", detections.to_crs(UTM), seed=seed)
    files.run_json.write_text(
        json.dumps({"imagery_dates": "2026-01-15/2026-03-15", "inputs": {"scenes": [scene]}})
    )
    card = {
        "architecture": "kilnnet" + (HOSTILE if hostile else ""),
        "intended_use": HOSTILE_JS if hostile else "leads",
        "metrics": {
            "overall": {"precision": 0.81, "recall": 0.74, "f1": 0.77},
            "threshold": 0.5,
            "per_class": {"brick_kiln": {"precision": 0.86, "recall": 0.79}},
        },
    }
    files.model_card.write_text(json.dumps(card))
    cells = _risk_cells(run.coverage, hostile)
    cells.to_parquet(files.risk)
    shared = cells[cells["band"] != "low"]
    shared.to_file(files.risk_shared, driver="GeoJSON")
    sectors = gpd.GeoDataFrame(
        {
            "name": [HOSTILE if hostile else "kiln A", "kiln B", HOSTILE_JS if hostile else "kiln C"],
            "sector": ["brick kiln"] * 3,
        },
        geometry=[Point(87.0, 25.45), Point(87.05, 25.5), Point(87.02, 25.55)],
        crs="EPSG:4326",
    )
    sectors.to_parquet(files.sectors)
    return RunFolder(out, detections, run.coverage)
