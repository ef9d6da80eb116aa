"""Evaluation on the scan's grid: `evaluate` finds exactly what `scan` finds, also for Web-Mercator
imagery."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.labels import find_label_file, read_labels
from fieldtruth.detectors.report import evaluate_bundle
from fieldtruth.detectors.scangrid import (
    CORE_PER_HALO,
    CORE_STEP,
    MAX_WINDOW,
    MIN_CORE,
    core_for_halo,
    default_halo,
    detect_like_a_scan,
    grid_transform,
    labels_on_grid,
    scan_grid,
)
from fieldtruth.imagery.grid import TileGrid
from fieldtruth.imagery.synthetic import SyntheticScene
from fieldtruth.ingest.scene import open_scene


def web_mercator_copy(source: Path, target: Path) -> Path:
    """The scene folder re-served in EPSG:3857 at 10 m map units (as sen2ships ports are), labels copied."""
    target.mkdir(parents=True)
    for band in sorted(source.glob("B*.tif")):
        with rasterio.open(band) as src:
            transform, width, height = calculate_default_transform(
                src.crs, "EPSG:3857", src.width, src.height, *src.bounds, resolution=10.0
            )
            profile = {
                **src.profile,
                "crs": "EPSG:3857",
                "transform": transform,
                "width": width,
                "height": height,
                "nodata": 0,
            }
            with rasterio.open(target / band.name, "w", **profile) as dst:
                reproject(rasterio.band(src, 1), rasterio.band(dst, 1), resampling=Resampling.bilinear)
    shutil.copy(source / "labels.geojson", target / "labels.geojson")
    return target


@pytest.fixture(scope="module")
def mercator(small_scene: SyntheticScene, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_mercator_copy(small_scene.path, tmp_path_factory.mktemp("mercator") / "s5")


@pytest.fixture(scope="module")
def eager(trained: tuple[LoadedBundle, list[float]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick bundle with a low threshold, so a weak model still reports many points."""
    bundle, _ = trained
    path = tmp_path_factory.mktemp("eager") / "eager.safetensors"
    save_bundle(path, bundle.model, dataclasses.replace(bundle.card, threshold=0.05))
    return path


def test_a_metric_scene_keeps_its_own_pixels_and_labels(small_scene: SyntheticScene, trained) -> None:
    bundle, _ = trained
    scene = open_scene(small_scene.path)
    grid = scan_grid(bundle, scene)
    assert grid.crs == scene.crs and grid.resolution == pytest.approx(scene.resolution[0])
    assert grid.halo == default_halo(bundle) >= bundle.card.receptive_field_px // 2
    native = read_labels(find_label_file(small_scene.path), scene.crs, scene.transform)
    moved = labels_on_grid(small_scene.path, scene, grid)
    offset = (
        (scene.bounds.left - grid.bounds.left) / grid.resolution,
        (grid.bounds.top - scene.bounds.top) / grid.resolution,
    )
    assert len(moved) == len(native) > 0
    for a, b in zip(native, moved, strict=True):
        assert b.centre == pytest.approx((a.centre[0] + offset[1], a.centre[1] + offset[0]), abs=1e-6)


def test_web_mercator_labels_land_on_their_ground_position(mercator: Path, trained) -> None:
    bundle, _ = trained
    scene = open_scene(mercator)
    grid = scan_grid(bundle, scene)
    assert grid.crs != scene.crs and grid.crs.to_epsg() == 32645
    labels = gpd.read_file(mercator / "labels.geojson").to_crs(grid.crs)
    moved = labels_on_grid(mercator, scene, grid)
    to_crs = grid_transform(grid)
    for expected, label in zip(labels.geometry, moved, strict=True):
        row, col = label.centre
        x, y = to_crs * (col, row)
        # a label's centre within a fifth of a pixel of where the ground truth puts it (box corners move
        # a little under reprojection; centres barely)
        assert np.hypot(x - expected.centroid.x, y - expected.centroid.y) < 0.2 * grid.resolution


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_evaluate_on_the_scan_grid_finds_exactly_what_the_scan_finds(
    mercator: Path, eager: Path, tmp_path: Path, precision: str,
) -> None:
    from fieldtruth.pipelines.scan import ScanConfig, scan

    bundle = load_bundle(eager, precision=precision)
    scene = open_scene(mercator)
    grid = scan_grid(bundle, scene)
    found = detect_like_a_scan(bundle, scene, grid)
    scan(ScanConfig(imagery=mercator, detector=eager, out=tmp_path / "run", workers=1, precision=precision))
    scanned = gpd.read_parquet(tmp_path / "run" / "detections.parquet").to_crs(grid.crs)
    to_pixel = ~grid_transform(grid)
    scanned_px = sorted(
        (round(r, 3), round(c, 3), round(s, 5))
        for (c, r), s in zip((to_pixel * (g.x, g.y) for g in scanned.geometry), scanned["score"], strict=True)
    )
    evaluated_px = sorted((round(d.row, 3), round(d.col, 3), round(d.score, 5)) for d in found)
    assert len(found) > 5
    assert scanned_px == evaluated_px


def test_the_report_records_its_grid(small_scene: SyntheticScene, trained) -> None:
    bundle, _ = trained
    assert evaluate_bundle(bundle, [small_scene.path]).grid == "scan"
    assert evaluate_bundle(bundle, [small_scene.path], grid="native").grid == "native"
    with pytest.raises(ValueError, match="grid must be one of"):
        evaluate_bundle(bundle, [small_scene.path], grid="mercator")


def test_a_scene_without_a_band_of_the_card_is_named(
    small_scene: SyntheticScene, trained, tmp_path: Path
) -> None:
    bundle, _ = trained
    partial = shutil.copytree(small_scene.path, tmp_path / "partial")
    (partial / "B08.tif").unlink()
    with pytest.raises(TrainingError, match="partial") as info:
        evaluate_bundle(bundle, [partial])
    assert "nir" in str(info.value) or "B08" in str(info.value)


@pytest.mark.parametrize(
    ("halo", "core"),
    [
        (0, 512),
        (32, 512),
        (33, 512),
        (100, 640),
        (157, 1024),
        (200, 1024),
        (400, 640),
        (512, 512),
        (900, 512),
    ],
)
def test_the_scan_core_grows_with_the_halo_within_the_window_bound(halo: int, core: int) -> None:
    assert core_for_halo(halo) == core


def test_a_negative_halo_is_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        core_for_halo(-1)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 700))
def test_the_chosen_core_is_several_halos_or_the_window_bound(halo: int) -> None:
    core = core_for_halo(halo)
    assert core % CORE_STEP == 0 and core >= MIN_CORE
    assert core >= CORE_PER_HALO * halo or core + 2 * halo + CORE_STEP > MAX_WINDOW or core == MIN_CORE
    assert core + 2 * halo <= MAX_WINDOW or core == MIN_CORE


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 600), st.floats(0.1, 30), st.floats(0, 1), st.floats(0, 1))
def test_chosen_cores_own_every_point_once_and_their_halos_hold_its_receptive_field(
    halo: int,
    tiles_across: float,
    fx: float,
    fy: float,
) -> None:
    """A site anywhere in the region is kept by exactly one tile, which read the whole neighbourhood
    of ``halo`` pixels around it: nothing lost at a core's edge, nothing doubled."""
    core, resolution = core_for_halo(halo), 10.0
    side = max(resolution, tiles_across * core * resolution)
    grid = TileGrid(BoundingBox(0.0, 0.0, side, side * 0.7), CRS.from_epsg(32645), resolution, core, halo)
    x, y = fx * side * (1 - 1e-9), 0.7 * side * (1 - fy * (1 - 1e-9))
    owners = [t for t in grid if t.in_core(x, y)]
    assert len(owners) == 1
    reach = halo * resolution
    window = owners[0].halo
    assert window.left <= x - reach and x + reach <= window.right
    assert window.bottom <= y - reach and y + reach <= window.top
