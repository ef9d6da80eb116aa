"""What a scan gives the tools analysts use: progress lines in a log, STAC Items, the heatmap as a COG.

One scan through the command line (stderr not a terminal, as under nohup or with output to a file) of
a generated region whose AOI reaches past the imagery on the east, so some tiles are not covered.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from shapely.geometry import box

from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.model import output_stride
from fieldtruth.imagery.grid import TileGrid
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines.cli import cli
from fieldtruth.pipelines.forget import forget_everywhere
from fieldtruth.pipelines.heatmap import NODATA
from fieldtruth.pipelines.progress import INTERVAL_ENV
from fieldtruth.tests.data.cog import cog_layout_errors
from fieldtruth.tests.data.stacschemas import validate_offline

pytestmark = pytest.mark.slow

TILE = 256
EAST_PX = 200  # AOI columns past the imagery's east edge


@pytest.fixture(scope="module")
def aoi(small_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    scene = open_scene(small_scene)
    left, bottom, right, top = scene.bounds
    path = tmp_path_factory.mktemp("aoi") / "aoi.gpkg"
    gpd.GeoDataFrame(geometry=[box(left, bottom, right + EAST_PX * 10.0, top)], crs=scene.crs).to_file(path)
    return path


def _scan(imagery: Path, bundle: Path, out: Path, aoi: Path, *extra: str) -> tuple[int, str]:
    args = ["scan", "--imagery", str(imagery), "--detector", str(bundle), "--out", str(out),
            "--aoi", str(aoi), "--tile-size", str(TILE), "--workers", "1", "--heatmap", *extra]
    result = CliRunner().invoke(cli, args, obj={}, env={INTERVAL_ENV: "0.5"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def scanned(small_scene: Path, quick_bundle: Path, aoi: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("outputs") / "run"
    code, output = _scan(small_scene, quick_bundle, out, aoi)
    assert code == 0, output
    return out, output


def _grid(run: Path) -> TileGrid:
    grid = json.loads((run / "run.json").read_text())["grid"]
    return TileGrid(rasterio.coords.BoundingBox(*grid["bounds"]),
                    rasterio.crs.CRS.from_user_input(grid["crs"]), grid["resolution"], grid["tile_size"],
                    grid["halo"])


def test_without_a_terminal_the_scan_prints_progress_lines_with_counts(scanned) -> None:
    run, output = scanned
    lines = [line for line in output.splitlines() if re.match(r"scan: \d+/\d+ tiles", line)]
    total = len(_grid(run))
    assert lines[-1].startswith(f"scan: {total}/{total} tiles (100%); failed 0; leads ")
    assert any(line.startswith(f"scan: 1/{total} tiles") for line in lines), "the first tile is reported"
    last = re.search(r"leads (\d+); rate ([\d.]+) Mpx/s", lines[-1])
    assert last and int(last.group(1)) >= 0 and float(last.group(2)) > 0
    assert any("about" in line and "left" in line for line in lines[:-1]), "an estimate of the time left"
    assert "\r" not in output, "no progress bar in a log file"


def test_the_heatmap_is_a_valid_cog_aligned_with_the_scan_grid(scanned, quick_bundle: Path) -> None:
    run, _ = scanned
    assert cog_layout_errors(run / "heatmap.tif") == []
    grid, stride = _grid(run), output_stride(load_bundle(quick_bundle).model)
    with rasterio.open(run / "heatmap.tif") as src:
        assert src.crs == grid.crs and src.nodata == NODATA and src.count == 1 and src.dtypes[0] == "float32"
        assert (src.transform.c, src.transform.f) == (grid.bounds.left, grid.bounds.top)
        assert src.res == (grid.resolution * stride, grid.resolution * stride)
        width_px = round((grid.bounds.right - grid.bounds.left) / grid.resolution)
        assert src.width == math.ceil(width_px / stride)
        assert src.overviews(1), "overviews"
        scores, transform = src.read(1), src.transform
    covered = scores[scores != NODATA]
    assert covered.size and covered.min() >= 0.0 and covered.max() <= 1.0
    # the AOI's columns past the imagery are not covered: nodata there, never a score of 0
    imagery = Path(json.loads((run / "run.json").read_text())["config"]["imagery"])
    scene_right = open_scene(imagery).bounds.right
    first_outside = math.ceil((~transform * (scene_right, grid.bounds.top))[0]) + 1
    assert (scores[:, first_outside:] == NODATA).all() and first_outside < scores.shape[1]


def test_each_lead_sits_on_its_score_in_the_heatmap(scanned) -> None:
    run, _ = scanned
    detections = gpd.read_parquet(run / "detections.parquet")
    assert len(detections) > 0, "the quick detector finds sites in this region"
    with rasterio.open(run / "heatmap.tif") as src:
        points = detections.to_crs(src.crs)
        scores, inverse = src.read(1), ~src.transform
    for point, score in zip(points.geometry, points.score, strict=True):
        col, row = (int(v) for v in inverse * (point.x, point.y))
        around = scores[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
        assert abs(around.max() - score) < 1e-4, (point, score, around)


def test_the_run_items_validate_and_describe_the_heatmap_and_the_detector(scanned) -> None:
    run, _ = scanned
    item = json.loads((run / "run.stac.json").read_text())
    validate_offline(item)
    heat = item["assets"]["heatmap"]
    with rasterio.open(run / "heatmap.tif") as src:
        assert heat["proj:shape"] == [src.height, src.width] and heat["proj:code"] == src.crs.to_string()
        assert heat["proj:transform"] == list(src.transform)[:6]
    assert heat["fieldtruth:access"] == "restricted"
    assert [link["href"] for link in item["links"] if link["rel"] == "derived_from"] == ["model.stac.json"]
    model = json.loads((run / "model.stac.json").read_text())
    validate_offline(model)
    assert model["id"].removeprefix("fieldtruth-model-") in item["properties"]["fieldtruth:detector_sha256"]
    shared = (run / "run-shared.stac.json").read_text()
    validate_offline(json.loads(shared))
    assert "heatmap" not in shared and "model.stac.json" not in shared


def test_a_resumed_scan_keeps_the_heatmap_and_refuses_to_drop_it(
    scanned, small_scene: Path, quick_bundle: Path, aoi: Path, tmp_path: Path,
) -> None:
    run, _ = scanned
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with rasterio.open(run / "heatmap.tif") as src:
        before = src.read(1)
    for name in ("r0001c0001.json", "r0001c0001.heat.npy"):
        (copy / "tiles" / name).unlink()
    (copy / "heatmap.tif").unlink()
    code, output = _scan(small_scene, quick_bundle, copy, aoi, "--resume")
    assert code == 0, output
    with rasterio.open(copy / "heatmap.tif") as src:
        np.testing.assert_allclose(src.read(1), before, atol=1e-6)
    args = ["scan", "--imagery", str(small_scene), "--detector", str(quick_bundle), "--out", str(copy),
            "--aoi", str(aoi), "--tile-size", str(TILE), "--workers", "1", "--resume"]
    result = CliRunner().invoke(cli, args, obj={})
    assert result.exit_code == 1 and "heatmap" in result.output and "--heatmap" in result.output


def test_forgetting_a_site_blanks_the_heatmap_around_it(scanned, tmp_path: Path) -> None:
    run, _ = scanned
    detections = gpd.read_parquet(run / "detections.parquet")
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    site = detections.sort_values("score", ascending=False).iloc[0]
    forget_everywhere(copy, str(site.site_id), "test of erasure")
    assert cog_layout_errors(copy / "heatmap.tif") == []
    with rasterio.open(copy / "heatmap.tif") as src:
        point = gpd.GeoSeries([site.geometry], crs=4326).to_crs(src.crs).iloc[0]
        col, row = (int(v) for v in ~src.transform * (point.x, point.y))
        assert (src.read(1)[row - 2:row + 3, col - 2:col + 3] == NODATA).all()
    tile_scores = np.load(copy / "tiles" / f"{site.tile_id}.heat.npy")
    kept_before = np.load(run / "tiles" / f"{site.tile_id}.heat.npy")
    assert (tile_scores == NODATA).sum() > (kept_before == NODATA).sum()
