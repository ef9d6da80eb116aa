"""Point labels (an inventory, a GPS list) train with a declared object size, reprojected like any label."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.warp import transform as warp_transform
from shapely.geometry import Point

from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.labels import POINT_SIZE_PX
from fieldtruth.imagery.synthetic import SyntheticScene, generate_scene

BANDS = ("blue", "green", "red", "nir")


def _warped(scene: SyntheticScene, out: Path, crs: str = "EPSG:3857") -> Path:
    """The scene's bands reprojected to ``crs`` (as sen2ships ports are served), without its labels."""
    out.mkdir()
    for path in scene.band_paths.values():
        with rasterio.open(path) as src:
            transform, width, height = calculate_default_transform(src.crs, crs, src.width, src.height,
                                                                   *src.bounds)
            profile = {**src.profile, "crs": crs, "transform": transform, "width": width, "height": height}
            with rasterio.open(out / path.name, "w", **profile) as dst:
                reproject(rasterio.band(src, 1), rasterio.band(dst, 1), resampling=Resampling.bilinear)
    meta = json.loads(scene.scene_json_path.read_text())
    meta.update(crs=crs, width=width, height=height, size=[width, height])
    (out / "scene.json").write_text(json.dumps(meta))
    return out


def _site_points(scene: SyntheticScene) -> list[tuple[str, float, float]]:
    """(class, lon, lat) of every site's centre, through rasterio (not the code under test)."""
    centres = [scene.transform * (s.centre[1], s.centre[0]) for s in scene.sites]
    lons, lats = warp_transform(scene.crs, "EPSG:4326", [x for x, _ in centres], [y for _, y in centres])
    return [(s.label, lon, lat) for s, lon, lat in zip(scene.sites, lons, lats, strict=True)]


@pytest.fixture(scope="module")
def pointed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, float, float]]]:
    """A generated scene warped to Web Mercator, labelled by points in a GeoPackage in EPSG:4326."""
    root = tmp_path_factory.mktemp("points")
    scene = generate_scene(root / "utm", seed=2, size=192)
    folder = _warped(scene, root / "mercator")
    points = _site_points(scene)
    gpd.GeoDataFrame({"class": [c for c, _, _ in points]},
                     geometry=[Point(lon, lat) for _, lon, lat in points], crs=4326).to_file(
        folder / "labels.gpkg")
    return folder, points


def test_points_land_within_a_pixel_of_their_ground_position(pointed) -> None:
    folder, points = pointed
    scene = load_training_scene(folder, BANDS, point_size_m=30.0)
    with rasterio.open(folder / "B02.tif") as src:
        xs, ys = warp_transform("EPSG:4326", src.crs, [lon for _, lon, _ in points],
                                [lat for _, _, lat in points])
        want = [~src.transform * (x, y) for x, y in zip(xs, ys, strict=True)]
    assert len(scene.labels) == len(points)
    for lab, (col, row), (cls, _, _) in zip(scene.labels, want, points, strict=True):
        got_row, got_col = lab.centre
        assert lab.label == cls and abs(got_row - row) < 1.0 and abs(got_col - col) < 1.0
    side = {round(lab.geometry.bounds[2] - lab.geometry.bounds[0], 6) for lab in scene.labels}
    assert side == {round(30.0 / scene.ground_gsd_m, 6)}  # 30 m on the ground, in this scene's pixels


def test_points_without_a_size_are_three_pixels(pointed) -> None:
    folder, _ = pointed
    scene = load_training_scene(folder, BANDS)
    sides = {round(lab.geometry.bounds[2] - lab.geometry.bounds[0], 6) for lab in scene.labels}
    assert sides == {POINT_SIZE_PX}


@pytest.mark.slow
def test_point_labels_train(pointed, tmp_path: Path) -> None:
    from fieldtruth.detectors.train import train_detector

    folder, points = pointed
    config = TrainConfig.from_mapping({
        "steps": 4, "batch_size": 4, "num_threads": 1, "point_size_m": 40.0, "classes": ["brick_kiln"],
        "architecture_args": {"width": 8, "dilations": [1, 2]}, "chips": {"size": 64, "mine_at": []},
        "validation": {"tile": 128}}, "demo")
    bundle = train_detector([folder], tmp_path / "points.safetensors", config)
    assert bundle.card.metrics.steps_run == 4 and bundle.card.classes == ("brick_kiln",)
    assert bundle.card.metrics.overall.n_labels == sum(c == "brick_kiln" for c, _, _ in points)


@pytest.mark.parametrize("size", [0.0, -5.0])
def test_a_point_size_must_be_positive(size: float) -> None:
    with pytest.raises(ValueError, match="point_size_m must be positive"):
        TrainConfig.from_mapping({"point_size_m": size})
    assert np.isfinite(TrainConfig.from_mapping({"point_size_m": 12.5}).point_size_m)
